//! The data plane (XDP program, AF_XDP and socket workers) in network
//! namespaces with the test doubles of `dhcp6d::dataplane::testing` as
//! handler and journal. Needs root and iproute2.

#[path = "../dataplane_common/mod.rs"]
mod dataplane_common;

mod bad_input;
mod fallback;
mod idle;
mod rate_limit;
mod socket;
mod stale;
mod supervision;
mod vlan;
mod xdp;
mod xdp_prog;
