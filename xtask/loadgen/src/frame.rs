//! Ethernet/IPv6/UDP frames for the packet-socket path: built in place in
//! front of a DHCPv6 message, checksum included, and read back.

use std::net::Ipv6Addr;

/// Ethernet + IPv6 + UDP.
pub const HEADERS: usize = 14 + 40 + 8;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// Ethernet/IPv6/UDP in front of a `len`-byte payload already at `f[HEADERS..]`; returns the frame length.
#[expect(clippy::too_many_arguments, reason = "the header fields, each once")]
pub fn write_headers(
    f: &mut [u8],
    src_mac: &[u8; 6],
    dst_mac: &[u8; 6],
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    sport: u16,
    dport: u16,
    len: usize,
) -> usize {
    let udp_len = (8 + len) as u16;
    f[0..6].copy_from_slice(dst_mac);
    f[6..12].copy_from_slice(src_mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip = &mut f[14..54];
    ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
    ip[6] = libc::IPPROTO_UDP as u8;
    // Link-local scope: a client's messages never cross a router (RFC 9915 §13.1).
    ip[7] = if dst.is_multicast() { 1 } else { 64 };
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    let udp = &mut f[54..62];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    let sum = udp_checksum(src, dst, &f[54..HEADERS + len]);
    f[60..62].copy_from_slice(&sum.to_be_bytes());
    HEADERS + len
}

/// RFC 8200 §8.1: the UDP checksum over the IPv6 pseudo-header and the datagram
/// (whose checksum field is zero); a computed 0 is sent as 0xffff.
pub fn udp_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |b: &[u8]| {
        let mut chunks = b.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(*last) << 8;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(udp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, libc::IPPROTO_UDP as u8]);
    add(udp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        s => s,
    }
}

/// What [`parse_frame`] reads from a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub src_mac: [u8; 6],
    pub src: Ipv6Addr,
    pub src_port: u16,
    /// Where the UDP payload is in the frame.
    pub payload: std::ops::Range<usize>,
}

/// The sender and the UDP payload of an Ethernet/IPv6/UDP frame to `port`;
/// None for anything else.
pub fn parse_frame(f: &[u8], port: u16) -> Option<FrameInfo> {
    if f.len() < HEADERS
        || f[12..14] != ETH_P_IPV6.to_be_bytes()
        || f[20] != libc::IPPROTO_UDP as u8
    {
        return None;
    }
    if u16::from_be_bytes([f[56], f[57]]) != port {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([f[58], f[59]]));
    if udp_len < 8 || 54 + udp_len > f.len() {
        return None;
    }
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&f[6..12]);
    let src: [u8; 16] = f[22..38].try_into().ok()?;
    Some(FrameInfo {
        src_mac,
        src: Ipv6Addr::from(src),
        src_port: u16::from_be_bytes([f[54], f[55]]),
        payload: HEADERS..54 + udp_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8200 §8.1 (upper-layer checksums): a frame this module builds is
    /// read back by etherparse, an independent parser, whose own UDP checksum
    /// over the IPv6 pseudo-header must equal the one we wrote.
    #[test]
    fn rfc8200_section_8_1_built_frames_read_back_by_etherparse() {
        use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        for (dst, payload_len) in [("ff02::1:2", 11usize), ("2001:db8::5", 120), ("::1", 1)] {
            let dst: Ipv6Addr = dst.parse().unwrap();
            let mut f = [0u8; 300];
            for (i, b) in f[HEADERS..HEADERS + payload_len].iter_mut().enumerate() {
                *b = (i * 37 + 1) as u8;
            }
            let src_mac = [2, 0, 0, 0, 0, 1];
            let dst_mac = [0x33, 0x33, 0, 1, 0, 2];
            let n = write_headers(
                &mut f,
                &src_mac,
                &dst_mac,
                &src,
                &dst,
                546,
                547,
                payload_len,
            );
            assert_eq!(n, HEADERS + payload_len);
            let h =
                PacketHeaders::from_ethernet_slice(&f[..n]).expect("etherparse reads our frame");
            let eth = h
                .link
                .clone()
                .and_then(|l| l.ethernet2())
                .expect("Ethernet II");
            assert_eq!((eth.source, eth.destination), (src_mac, dst_mac));
            let Some(NetHeaders::Ipv6(ip, _)) = &h.net else {
                panic!("not IPv6: {:?}", h.net);
            };
            assert_eq!((ip.source, ip.destination), (src.octets(), dst.octets()));
            assert_eq!(usize::from(ip.payload_length), 8 + payload_len);
            let Some(TransportHeader::Udp(udp)) = &h.transport else {
                panic!("not UDP: {:?}", h.transport);
            };
            let payload = h.payload.slice();
            assert_eq!(payload, &f[HEADERS..n]);
            assert_eq!((udp.source_port, udp.destination_port), (546, 547));
            assert_eq!(udp.checksum, udp.calc_checksum_ipv6(ip, payload).unwrap());
            let info = parse_frame(&f[..n], 547).expect("our own frame parses");
            assert_eq!((info.src_mac, info.src, info.src_port), (src_mac, src, 546));
            assert_eq!(info.payload, HEADERS..n);
            assert!(parse_frame(&f[..n], 546).is_none(), "other port");
            assert!(parse_frame(&f[..n - 1], 547).is_none(), "truncated");
        }
    }
}
