//! Reply frames checked against etherparse as an independent oracle.
use super::*;
use crate::wire::{MessageType, ALL_DHCP_RELAY_AGENTS_AND_SERVERS, CLIENT_PORT, SERVER_PORT};

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xc1];
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x51];

fn request(vlans: &[(u16, u16)]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let len = build_udp6_frame(
        &mut buf,
        [0x33, 0x33, 0, 1, 0, 2],
        CLIENT_MAC,
        vlans,
        "fe80::c1".parse().unwrap(),
        ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
        CLIENT_PORT,
        SERVER_PORT,
        &[1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 0],
    );
    buf.truncate(len);
    buf
}

#[test]
fn request_parses_and_payload_is_the_dhcp_message() {
    let f = request(&[(0x88a8, 7), (0x8100, 100)]);
    let req = parse_request(&f).unwrap();
    assert_eq!(req.src, "fe80::c1".parse::<Ipv6Addr>().unwrap());
    assert_eq!(req.src_port, CLIENT_PORT);
    assert_eq!(
        &f[req.payload_start..req.payload_end],
        &[1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 0]
    );
    // A UDP length pointing past the IPv6 payload is malformed, not a panic.
    let mut bad = f.clone();
    let udp = usize::from(req.layout.udp_off);
    bad[udp + 4..udp + 6].copy_from_slice(&500u16.to_be_bytes());
    assert_eq!(parse_request(&bad), None);
    for cut in 0..f.len() {
        assert_eq!(parse_request(&f[..cut]), None, "cut {cut}");
    }
}

#[test]
fn reply_keeps_vlan_tags_reflects_macs_and_has_a_valid_checksum() {
    let mut f = request(&[(0x8100, 100)]);
    f.resize(2048, 0);
    let req = parse_request(&f).unwrap();
    let reply = Reply {
        len: 5,
        to: req.src,
        port: 546,
        sent: MessageType::Advertise,
        needs_durable: false,
    };
    let src: Ipv6Addr = "fe80::51".parse().unwrap();
    let n = write_reply(
        &mut f,
        &req,
        OUR_MAC,
        src,
        &reply,
        &[2, 0xaa, 0xbb, 0xcc, 9],
    )
    .unwrap();
    let parsed = etherparse::SlicedPacket::from_ethernet(&f[..n]).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = parsed.link else {
        panic!("no ethernet")
    };
    assert_eq!((eth.destination(), eth.source()), (CLIENT_MAC, OUR_MAC));
    assert_eq!(f[12..16], [0x81, 0x00, 0, 100]);
    let Some(etherparse::NetSlice::Ipv6(ip)) = parsed.net else {
        panic!("no ipv6")
    };
    assert_eq!(ip.header().source_addr(), src);
    assert_eq!(ip.header().destination_addr(), req.src);
    let Some(etherparse::TransportSlice::Udp(udp)) = parsed.transport else {
        panic!("no udp")
    };
    assert_eq!(
        (udp.source_port(), udp.destination_port()),
        (SERVER_PORT, CLIENT_PORT)
    );
    assert_eq!(udp.payload(), &[2, 0xaa, 0xbb, 0xcc, 9]);
    let expect = udp
        .to_header()
        .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
        .unwrap();
    assert_eq!(udp.checksum(), expect);
}

#[test]
fn checksum_of_a_known_segment() {
    // The sum is the one's complement of the one's-complement sum (RFC 768);
    // checked by summing again: a correct checksum makes the total 0xffff.
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut seg = vec![0x02, 0x23, 0x02, 0x22, 0, 11, 0, 0, 7, 8, 9];
    let c = udp6_checksum(src, dst, &seg);
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(udp6_checksum(src, dst, &seg), 0xffff);
}
