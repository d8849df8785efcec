//! The real `dhcp6d serve` under load in the namespace lab: kill -9 rounds
//! (`store_crash`, `cargo xtask crash` runs it longer) and the load
//! generator checked against dhcp6d's allocation (`loadgen_dhcp6d`).
//! Needs root and iproute2.

#[path = "../core_harness/mod.rs"]
mod core_harness;
#[path = "../dataplane_common/mod.rs"]
mod dataplane_common;

mod loadgen_dhcp6d;
mod store_crash;
