//! Frame parsing and in-place reply building for the AF_XDP path.
//!
//! The request frame's Ethernet header and VLAN tags stay where they are; the
//! reply's IPv6 and UDP headers are rewritten after them (extension headers of
//! the request are dropped) and the DHCPv6 payload follows. Checksums are
//! always computed here: veth hands AF_XDP frames with partial checksums from
//! offloading senders, so a received checksum is never trusted or reused.

use std::net::Ipv6Addr;

use dhcp_common::{classify, DhcpFrame, SERVER_PORT};

use crate::protocol::Reply;

const IPV6_HLEN: usize = 40;
const UDP_HLEN: usize = 8;
/// Hop limit of replies (RFC 9915 does not fix one; 64 is the common default).
const HOP_LIMIT: u8 = 64;

/// What a worker needs from a received DHCPv6-to-server frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestView {
    /// Offsets from the shared classifier.
    pub layout: DhcpFrame,
    /// Ethernet source (the client or relay's MAC, or the last router's).
    pub src_mac: [u8; 6],
    /// IPv6 source: the client's link-local address, or the relay agent's.
    pub src: Ipv6Addr,
    /// IPv6 destination: a DHCP multicast group or one of our own addresses.
    pub dst: Ipv6Addr,
    /// UDP source port.
    pub src_port: u16,
    /// Start of the DHCPv6 message in the frame (just past the UDP header).
    pub payload_start: usize,
    /// End of the DHCPv6 message (exclusive): the UDP length, not the frame length,
    /// so Ethernet padding is left out.
    pub payload_end: usize,
}

fn addr_at(frame: &[u8], off: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&frame[off..off + 16]);
    Ipv6Addr::from(a)
}

/// Parse and sanity-check a received frame. `None` means malformed (or not a
/// DHCPv6-to-server frame at all, which the XDP program should not have sent).
pub fn parse_request(frame: &[u8]) -> Option<RequestView> {
    let layout = classify(frame).ok()?;
    let ip = usize::from(layout.ipv6_off);
    let udp = usize::from(layout.udp_off);
    let ip_end = ip + IPV6_HLEN + usize::from(u16::from_be_bytes([frame[ip + 4], frame[ip + 5]]));
    // Ethernet may pad short frames, so the frame can be longer than IPv6 says.
    if ip_end > frame.len() || udp + UDP_HLEN > ip_end {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([frame[udp + 4], frame[udp + 5]]));
    if udp_len < UDP_HLEN || udp + udp_len > ip_end {
        return None;
    }
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&frame[6..12]);
    Some(RequestView {
        layout,
        src_mac,
        src: addr_at(frame, ip + 8),
        dst: addr_at(frame, ip + 24),
        src_port: u16::from_be_bytes([frame[udp], frame[udp + 1]]),
        payload_start: usize::from(layout.payload_off),
        payload_end: udp + udp_len,
    })
}

/// Room left for a reply payload in a frame buffer of `capacity` bytes.
pub fn reply_room(req: &RequestView, capacity: usize) -> usize {
    capacity.saturating_sub(usize::from(req.layout.ipv6_off) + IPV6_HLEN + UDP_HLEN)
}

/// Rewrite `frame` (which holds the request) into the reply: MACs reflected
/// (our MAC as source), VLAN tags kept, fresh IPv6 + UDP headers, `payload`
/// copied in, UDP checksum computed. Returns the frame length, or `None` when
/// the reply does not fit in `frame`.
pub fn write_reply(
    frame: &mut [u8],
    req: &RequestView,
    our_mac: [u8; 6],
    src: Ipv6Addr,
    reply: &Reply,
    payload: &[u8],
) -> Option<usize> {
    let ip = usize::from(req.layout.ipv6_off);
    let total = ip + IPV6_HLEN + UDP_HLEN + payload.len();
    if total > frame.len() || payload.len() + UDP_HLEN > usize::from(u16::MAX) {
        return None;
    }
    frame[0..6].copy_from_slice(&req.src_mac);
    frame[6..12].copy_from_slice(&our_mac);
    write_ipv6_udp(
        &mut frame[ip..total],
        src,
        reply.to,
        SERVER_PORT,
        reply.port,
        payload,
    );
    Some(total)
}

/// Write an IPv6 header, a UDP header and `payload` into `out` (exactly
/// 48 + payload bytes), with the UDP checksum filled in.
pub fn write_ipv6_udp(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) {
    let udp_len = (UDP_HLEN + payload.len()) as u16;
    out[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    out[4..6].copy_from_slice(&udp_len.to_be_bytes());
    out[6] = 17;
    out[7] = HOP_LIMIT;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
    let udp = &mut out[IPV6_HLEN..];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    udp[UDP_HLEN..UDP_HLEN + payload.len()].copy_from_slice(payload);
    let sum = udp6_checksum(src, dst, &udp[..usize::from(udp_len)]);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
}

/// Build a whole Ethernet frame (for tests and the echo benchmark's sender):
/// `vlans` are (TPID, TCI) pairs, outermost first. Returns its length.
/// Panics when `buf` is too small (test and benchmark helper).
#[allow(clippy::too_many_arguments)]
pub fn build_udp6_frame(
    buf: &mut [u8],
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlans: &[(u16, u16)],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> usize {
    buf[0..6].copy_from_slice(&dst_mac);
    buf[6..12].copy_from_slice(&src_mac);
    let mut off = 12;
    for (tpid, tci) in vlans {
        buf[off..off + 2].copy_from_slice(&tpid.to_be_bytes());
        buf[off + 2..off + 4].copy_from_slice(&tci.to_be_bytes());
        off += 4;
    }
    buf[off..off + 2].copy_from_slice(&0x86DDu16.to_be_bytes());
    off += 2;
    let end = off + IPV6_HLEN + UDP_HLEN + payload.len();
    write_ipv6_udp(&mut buf[off..end], src, dst, sport, dport, payload);
    end
}

/// The UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and `segment`
/// (UDP header with a zero checksum field, plus payload). Never returns 0:
/// RFC 8200 says a computed 0 is sent as 0xffff.
pub fn udp6_checksum(src: Ipv6Addr, dst: Ipv6Addr, segment: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for half in [src.octets(), dst.octets()] {
        for pair in half.chunks_exact(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
    }
    sum += segment.len() as u64;
    sum += 17;
    let mut chunks = segment.chunks_exact(2);
    for pair in &mut chunks {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}

#[cfg(test)]
mod tests;
