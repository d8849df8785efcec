//! The protocol core beyond single RFC sections: allocation properties,
//! no allocation per packet, pool use against a simulated clock, a reload
//! under load.

#[path = "../core_harness/mod.rs"]
mod core_harness;

mod journal_order;
mod limits;
mod no_alloc;
mod pathological_pools;
mod properties;
mod rate_limit;
mod reload_under_load;
mod usage_at_expiry;
