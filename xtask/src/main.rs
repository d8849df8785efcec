//! `cargo xtask`: set-up, tests, demo, lab, load generator and benchmarks.
fn main() {}
