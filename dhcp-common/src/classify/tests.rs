//! Host tests of the shared classifier: the same code the XDP program runs.
extern crate std;
use std::vec::Vec;

use super::*;

/// Builds an Ethernet frame: `tags` are (TPID, TCI) pairs, `ext` are
/// (next-header code of this ext header, total length in bytes) pairs.
fn frame(tags: &[(u16, u16)], ext: &[(u8, usize)], transport: u8, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x33, 0x33, 0, 1, 0, 2]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let first_nh = ext.first().map_or(transport, |e| e.0);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, first_nh, 1]);
    f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    for (i, &(_, len)) in ext.iter().enumerate() {
        let nh = ext.get(i + 1).map_or(transport, |e| e.0);
        let mut h = std::vec![0u8; len];
        h[0] = nh;
        h[1] = (len / 8 - 1) as u8;
        f.extend_from_slice(&h);
    }
    f.extend_from_slice(&546u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 12, 0, 0]);
    f.extend_from_slice(&[1, 0xaa, 0xbb, 0xcc]);
    f
}

#[test]
fn untagged_udp_547_is_ours_with_offsets() {
    let f = frame(&[], &[], NH_UDP, 547);
    let got = classify(f.as_slice()).unwrap();
    assert_eq!((got.ipv6_off, got.udp_off, got.payload_off), (14, 54, 62));
    assert_eq!(got.vlan_count, 0);
    assert_eq!(&f[usize::from(got.payload_off)..], &[1, 0xaa, 0xbb, 0xcc]);
}

#[test]
fn dot1q_and_qinq_tags_are_looked_through() {
    let one = frame(&[(ETHERTYPE_VLAN, 0x2064)], &[], NH_UDP, 547);
    let got = classify(one.as_slice()).unwrap();
    assert_eq!(
        (got.vlan_count, got.vlan_tci[0], got.ipv6_off),
        (1, 0x2064, 18)
    );
    for outer in [ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD] {
        let two = frame(&[(outer, 10), (ETHERTYPE_VLAN, 20)], &[], NH_UDP, 547);
        let got = classify(two.as_slice()).unwrap();
        assert_eq!(
            (got.vlan_count, got.vlan_tci, got.ipv6_off),
            (2, [10, 20], 22)
        );
    }
    let three = frame(
        &[
            (ETHERTYPE_QINQ, 1),
            (ETHERTYPE_VLAN, 2),
            (ETHERTYPE_VLAN, 3),
        ],
        &[],
        NH_UDP,
        547,
    );
    assert_eq!(classify(three.as_slice()), Err(Reject::TooManyVlanTags));
}

#[test]
fn extension_headers_are_walked() {
    // RFC 8200 §4.1 order: hop-by-hop, destination options, routing, destination options.
    let ext = [
        (NH_HOP_BY_HOP, 8),
        (NH_DEST_OPTS, 16),
        (NH_ROUTING, 24),
        (NH_DEST_OPTS, 8),
    ];
    let f = frame(&[(ETHERTYPE_VLAN, 5)], &ext, NH_UDP, 547);
    let got = classify(f.as_slice()).unwrap();
    assert_eq!(got.udp_off, 18 + 40 + 56);
    let too_many = [(NH_DEST_OPTS, 8); MAX_EXT_HEADERS + 1];
    let f = frame(&[], &too_many, NH_UDP, 547);
    assert_eq!(classify(f.as_slice()), Err(Reject::TooManyExtHeaders));
    let f = frame(&[], &[(NH_HOP_BY_HOP, 8), (NH_FRAGMENT, 8)], NH_UDP, 547);
    assert_eq!(classify(f.as_slice()), Err(Reject::Fragment));
}

#[test]
fn other_traffic_is_not_ours() {
    // Client port (546), ICMPv6 (ND/RA), and an IPv4 EtherType must all pass.
    let f = frame(&[], &[], NH_UDP, 546);
    assert_eq!(classify(f.as_slice()), Err(Reject::NotServerPort));
    let f = frame(&[], &[], 58, 547);
    assert_eq!(classify(f.as_slice()), Err(Reject::NotUdp));
    let mut f = frame(&[], &[], NH_UDP, 547);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    assert_eq!(classify(f.as_slice()), Err(Reject::NotIpv6));
    let mut f = frame(&[], &[], NH_UDP, 547);
    f[14] = 0x45;
    assert_eq!(classify(f.as_slice()), Err(Reject::BadIpVersion));
}

#[test]
fn truncated_at_every_byte_is_rejected_not_panicking() {
    let f = frame(
        &[(ETHERTYPE_QINQ, 1), (ETHERTYPE_VLAN, 2)],
        &[(NH_HOP_BY_HOP, 8), (NH_ROUTING, 16)],
        NH_UDP,
        547,
    );
    let full = classify(f.as_slice()).unwrap();
    for cut in 0..usize::from(full.payload_off) {
        assert_eq!(classify(&f[..cut]), Err(Reject::Truncated), "cut at {cut}");
        assert!(Reject::Truncated.is_malformed());
    }
    // The payload itself is the worker's business: an empty one still classifies.
    assert!(classify(&f[..usize::from(full.payload_off)]).is_ok());
}

proptest::proptest! {
    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = classify(bytes.as_slice());
    }

    #[test]
    fn never_panics_behind_valid_ethernet_ipv6_prefix(
        tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        nh in proptest::num::u8::ANY,
    ) {
        let mut f = frame(&[], &[], nh, 547);
        f.truncate(54);
        f.extend_from_slice(&tail);
        if let Ok(got) = classify(f.as_slice()) {
            // Whatever is accepted has its UDP header inside the frame.
            proptest::prop_assert!(usize::from(got.payload_off) <= f.len());
        }
    }
}
