//! RFC 6853 (DHCPv6 redundancy deployment models): §6 through two
//! independent cores (`section_6`), the namespace harness checked against
//! Kea (`harness_kea`), and each §6 model end to end with the real binary,
//! real clients and relays (`e2e_*`, scenarios in `e2e/`). The `e2e_*` and
//! `harness_kea` modules need root and the packages of `cargo xtask setup`.

#[path = "../core_harness/mod.rs"]
mod core_harness;
mod e2e;

mod e2e_identical_prefix;
mod e2e_split_prefix;
mod e2e_unique_prefix;
mod harness_kea;
mod section_6;
