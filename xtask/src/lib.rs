//! The reusable half of `cargo xtask`: the namespace lab, the load generator and
//! the Kea head-to-head benchmark. The binary (`main.rs`) wires these to
//! subcommands; tests and the demo use [`lab::Lab`] directly.

pub mod bench_echo;
pub mod bench_kea;
pub mod lab;
pub mod loadgen;
