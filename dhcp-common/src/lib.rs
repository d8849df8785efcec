//! Types and logic shared by the XDP program (`dhcp-ebpf`) and user space.
//!
//! Everything here is `no_std`, allocation-free and panic-free so that the same
//! code runs in the kernel verifier's world, in host unit tests and in fuzzers.
#![no_std]

pub mod classify;
pub mod counters;

pub use classify::{classify, DhcpFrame, FrameBytes, Reject};

use core::net::Ipv6Addr;

/// UDP port DHCPv6 servers and relay agents listen on (RFC 9915 §7.2).
pub const SERVER_PORT: u16 = 547;
/// UDP port DHCPv6 clients listen on (RFC 9915 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// All_DHCP_Relay_Agents_and_Servers, ff02::1:2 (RFC 9915 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// All_DHCP_Servers, ff05::1:3 (RFC 9915 §7.1).
pub const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 1, 3);

/// Longest DUID identifier, not counting the 2-octet type code (RFC 9915 §11.1).
pub const MAX_DUID_IDENTIFIER_LEN: usize = 128;
/// Longest DUID in wire form, type code included.
pub const MAX_DUID_LEN: usize = 2 + MAX_DUID_IDENTIFIER_LEN;

/// Most RX queues per interface the XDP program steers: the size of its
/// [`XSKS_MAP`], whose slot N holds the AF_XDP socket of RX queue N.
pub const MAX_QUEUES: u32 = 64;
/// Name of the XDP program function in `dhcp-ebpf` (what user space loads).
pub const PROGRAM_NAME: &str = "dhcp6_xdp";
/// Name of the program's XskMap (AF_XDP sockets by RX queue).
pub const XSKS_MAP: &str = "XSKS";
/// Name of the program's per-CPU counter array ([`counters::XdpCounter`]).
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the program's one-slot array holding the interface's MAC
/// ([`LocalMac`]); the program is loaded once per interface.
pub const LOCAL_MAC_MAP: &str = "LOCAL_MAC";
/// Name of the program's hash of the interface's IPv6 addresses (key: the
/// 16 address bytes, value: unused `u8`).
pub const LOCAL_ADDRS_MAP: &str = "LOCAL_ADDRS";
/// Most IPv6 addresses of one interface the program recognises as ours.
pub const MAX_LOCAL_ADDRS: u32 = 64;

/// The interface's MAC as the XDP program reads it: `set` is 1 once user
/// space filled it; until then no unicast MAC is ours.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalMac {
    pub mac: [u8; 6],
    pub set: u8,
    pub _pad: u8,
}

#[cfg(feature = "user")]
// SAFETY: `LocalMac` is `repr(C)`, 8 bytes with no padding, any bit pattern is valid.
unsafe impl aya::Pod for LocalMac {}

/// 33:33:00:01:00:02 and 33:33:00:01:00:03 (RFC 2464 §7 mapping of
/// ff02::1:2 and ff05::1:3).
pub fn is_dhcp_group_mac(mac: [u8; 6]) -> bool {
    matches!(mac, [0x33, 0x33, 0, 1, 0, 2] | [0x33, 0x33, 0, 1, 0, 3])
}

/// ff02::1:2 or ff05::1:3.
pub fn is_dhcp_group(addr: [u8; 16]) -> bool {
    addr == ALL_DHCP_RELAY_AGENTS_AND_SERVERS.octets() || addr == ALL_DHCP_SERVERS.octets()
}
