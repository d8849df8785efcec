//! The "is this frame DHCPv6 for a server" decision, shared by the XDP program
//! and user space.
//!
//! The classifier reads a frame through [`FrameBytes`], so the same code runs
//! over a byte slice (host tests, fuzzing, AF_XDP workers) and over the XDP
//! context in the kernel (where each read is a bounds-checked
//! `bpf_xdp_load_bytes` call, which keeps the verifier happy and also works on
//! multi-buffer jumbo frames). Every loop is bounded by a constant and every
//! read is checked: any byte string yields `Ok` or a [`Reject`], never a panic.

use crate::SERVER_PORT;

/// Most VLAN tags we look through (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN_TAGS: usize = 2;
/// Most IPv6 extension headers we walk before giving up on a frame.
pub const MAX_EXT_HEADERS: usize = 6;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;

const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
/// Pre-standard QinQ outer tag still found on some access gear.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

const NH_HOP_BY_HOP: u8 = 0;
const NH_UDP: u8 = 17;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_DEST_OPTS: u8 = 60;

/// Read access to a frame's bytes.
pub trait FrameBytes {
    /// The `N` bytes at `off`, or `None` when the frame is shorter than `off + N`.
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]>;
}

impl FrameBytes for [u8] {
    #[inline]
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        let bytes = self.get(off..end)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Some(out)
    }
}

/// Where the parts of a DHCPv6-to-server frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhcpFrame {
    /// VLAN TCIs (priority, DEI and VLAN id), outermost first; `vlan_count` are valid.
    pub vlan_tci: [u16; MAX_VLAN_TAGS],
    /// Number of VLAN tags in front of the IPv6 header (0..=2).
    pub vlan_count: u8,
    /// Offset of the IPv6 header.
    pub ipv6_off: u16,
    /// Offset of the UDP header.
    pub udp_off: u16,
    /// Offset of the UDP payload (the DHCPv6 message).
    pub payload_off: u16,
}

/// Why a frame is not a DHCPv6-to-server frame. The XDP program passes all of
/// these to the kernel; [`Reject::is_malformed`] ones are counted as malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reject {
    /// The frame ends inside a header.
    Truncated,
    /// The EtherType after the VLAN tags is not IPv6.
    NotIpv6,
    /// More VLAN tags than [`MAX_VLAN_TAGS`].
    TooManyVlanTags,
    /// The IPv6 version field is not 6.
    BadIpVersion,
    /// The datagram is a fragment (we never reassemble in the data plane).
    Fragment,
    /// More extension headers than [`MAX_EXT_HEADERS`].
    TooManyExtHeaders,
    /// The transport is not UDP (ICMPv6, TCP, ESP, no next header, ...).
    NotUdp,
    /// UDP, but not to the DHCPv6 server port.
    NotServerPort,
}

impl Reject {
    /// Whether the frame is broken (as opposed to well-formed but not ours).
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            Reject::Truncated | Reject::BadIpVersion | Reject::TooManyExtHeaders
        )
    }
}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Classify one Ethernet frame.
#[inline(always)]
pub fn classify<F: FrameBytes + ?Sized>(frame: &F) -> Result<DhcpFrame, Reject> {
    let mut off = ETH_HLEN - 2;
    let mut ethertype = be16(frame.load::<2>(off).ok_or(Reject::Truncated)?);
    off += 2;
    let mut vlan_tci = [0u16; MAX_VLAN_TAGS];
    let mut vlan_count = 0u8;
    // Unrolled on purpose: two tags at most, and a constant trip count is the
    // cheapest thing for the verifier.
    for slot in vlan_tci.iter_mut() {
        if !matches!(
            ethertype,
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
        ) {
            break;
        }
        let tag = frame.load::<4>(off).ok_or(Reject::Truncated)?;
        *slot = be16([tag[0], tag[1]]);
        ethertype = be16([tag[2], tag[3]]);
        vlan_count += 1;
        off += VLAN_HLEN;
    }
    if matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        return Err(Reject::TooManyVlanTags);
    }
    if ethertype != ETHERTYPE_IPV6 {
        return Err(Reject::NotIpv6);
    }
    let ipv6_off = off;
    let first = frame.load::<1>(ipv6_off).ok_or(Reject::Truncated)?;
    if first[0] >> 4 != 6 {
        return Err(Reject::BadIpVersion);
    }
    let next = frame.load::<1>(ipv6_off + 6).ok_or(Reject::Truncated)?;
    // The whole fixed header must be there even if we only read a few fields.
    frame
        .load::<1>(ipv6_off + IPV6_HLEN - 1)
        .ok_or(Reject::Truncated)?;
    let mut next_header = next[0];
    off = ipv6_off + IPV6_HLEN;
    let mut ext_headers = 0usize;
    while next_header != NH_UDP {
        match next_header {
            NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS => {}
            NH_FRAGMENT => return Err(Reject::Fragment),
            _ => return Err(Reject::NotUdp),
        }
        if ext_headers == MAX_EXT_HEADERS {
            return Err(Reject::TooManyExtHeaders);
        }
        ext_headers += 1;
        let hdr = frame.load::<2>(off).ok_or(Reject::Truncated)?;
        next_header = hdr[0];
        // RFC 8200 §4.3: length in 8-octet units, not counting the first 8.
        off += (usize::from(hdr[1]) + 1) * 8;
    }
    let udp_off = off;
    let udp = frame.load::<UDP_HLEN>(udp_off).ok_or(Reject::Truncated)?;
    if be16([udp[2], udp[3]]) != SERVER_PORT {
        return Err(Reject::NotServerPort);
    }
    let payload_off = udp_off + UDP_HLEN;
    // Offsets fit in u16: at most 14 + 8 + 40 + 6 * 2048 + 8 bytes.
    Ok(DhcpFrame {
        vlan_tci,
        vlan_count,
        ipv6_off: ipv6_off as u16,
        udp_off: udp_off as u16,
        payload_off: payload_off as u16,
    })
}

#[cfg(test)]
mod tests;
