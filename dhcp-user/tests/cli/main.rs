//! The `dhcp6d` binary's commands: `check-config`, `plan`, the control
//! socket, and `serve` in network namespaces (`serve`, `stats_load`: need
//! root and iproute2).

#[path = "../../../tests/tests/core_harness/mod.rs"]
mod core_harness;
#[path = "../../../tests/tests/dataplane_common/mod.rs"]
mod dataplane_common;
mod serve_common;

mod check_config;
mod control;
mod plan;
mod rate_limit;
mod serve;
mod stats_load;
mod supervision;
