//! RFC 9915 conformance through the public API of the core (no network):
//! one module per section of the RFC, as `section_<number>`. One test
//! binary, so the library is linked once for all of them.

#[path = "../core_harness/mod.rs"]
mod core_harness;

mod section_16;
mod section_18_3_1;
mod section_18_3_2;
mod section_18_3_3;
mod section_18_3_7;
mod section_19;
mod section_21_23_25;
