//! The protocol core beyond single RFC sections: allocation properties,
//! no allocation per packet, pool use against a simulated clock.

#[path = "../core_harness/mod.rs"]
mod core_harness;

mod no_alloc;
mod properties;
mod usage_at_expiry;
