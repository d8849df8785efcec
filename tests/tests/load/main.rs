//! The real `dhcp6d serve` under load in a namespace lab: kill -9 rounds
//! (`store_crash`; `cargo xtask crash` runs it longer). The load generator's
//! own check against dhcp6d's allocation lives with it
//! (`xtask/loadgen/tests/dhcp6d.rs`). Needs root and iproute2.

#[path = "../core_harness/mod.rs"]
mod core_harness;
#[path = "../dataplane_common/mod.rs"]
mod dataplane_common;

mod store_crash;
