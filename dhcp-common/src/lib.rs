//! Types and logic shared by the XDP program (`dhcp-ebpf`) and user space.
//!
//! Everything here is `no_std`, allocation-free and panic-free so that the same
//! code runs in the kernel verifier's world, in host unit tests and in fuzzers.
#![no_std]

pub mod classify;
pub mod counters;

pub use classify::{classify, DhcpFrame, FrameBytes, Reject};

/// UDP port DHCPv6 servers and relay agents listen on (RFC 9915 §7.2).
pub const SERVER_PORT: u16 = 547;
/// UDP port DHCPv6 clients listen on (RFC 9915 §7.2).
pub const CLIENT_PORT: u16 = 546;
