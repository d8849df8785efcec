//! The fuzz targets' properties, run briefly in the normal test suite
//! (the long runs are `cargo fuzz run decode|roundtrip|relay_nesting`):
//! decoding never panics, and whatever decodes re-encodes byte for byte and
//! decodes to an equal message.

use std::net::Ipv6Addr;

use dhcp6d::wire::{code, AnyMessage, Encoder, MessageType, WireError, Xid, HOP_COUNT_LIMIT};
use proptest::prelude::*;

/// decode → encode → decode: same bytes, equal typed views.
fn check_round_trip(data: &[u8]) -> Result<(), TestCaseError> {
    let Ok(first) = AnyMessage::decode(data) else {
        return Ok(());
    };
    let mut out = vec![0u8; data.len()];
    let n = first
        .encode_to(&mut out)
        .map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
    prop_assert_eq!(&out[..n], data);
    let second = AnyMessage::decode(&out[..n])
        .map_err(|e| TestCaseError::fail(format!("re-decode: {e}")))?;
    prop_assert_eq!(first, second);
    Ok(())
}

/// One option the generator can write through the typed encoder API.
#[derive(Clone, Debug)]
enum Op {
    ClientId(Vec<u8>),
    IaNa(u32, Vec<(u128, u32, u32, Option<u16>)>),
    IaPd(u32, Vec<(u8, u128)>),
    Oro(Vec<u16>),
    Elapsed(u16),
    Rapid,
    Dns(Vec<u128>),
    Search(Vec<String>),
    Fqdn(u8, String),
    Status(u16, String),
    SolMaxRt(u32),
    LinkLayer(Vec<u8>),
    LqQuery(u8, u128, u128),
    ClientData(Vec<u8>, u32),
    Unknown(u16, Vec<u8>),
}

fn write(enc: &mut Encoder<'_>, op: &Op) -> Result<(), WireError> {
    match op {
        Op::ClientId(d) => enc.client_id(&[&[0, 3, 0, 1][..], d].concat()),
        Op::IaNa(iaid, addrs) => {
            let m = enc.begin_ia_na(*iaid, 1, 2)?;
            for &(a, p, v, st) in addrs {
                let am = enc.begin_ia_addr(Ipv6Addr::from(a), p, v)?;
                if let Some(s) = st {
                    enc.status_code(s, "x")?;
                }
                enc.end_option(am)?;
            }
            enc.end_option(m)
        }
        Op::IaPd(iaid, pfx) => {
            let m = enc.begin_ia_pd(*iaid, 1, 2)?;
            for &(len, p) in pfx {
                enc.ia_prefix(3, 4, len, Ipv6Addr::from(p))?;
            }
            enc.end_option(m)
        }
        Op::Oro(c) => enc.oro(c),
        Op::Elapsed(t) => enc.elapsed_time(*t),
        Op::Rapid => enc.rapid_commit(),
        Op::Dns(l) => enc.dns_servers(&l.iter().map(|&a| Ipv6Addr::from(a)).collect::<Vec<_>>()),
        Op::Search(n) => enc.domain_list(&n.iter().map(String::as_str).collect::<Vec<_>>()),
        Op::Fqdn(f, n) => enc.client_fqdn(*f, n),
        Op::Status(c, m) => enc.status_code(*c, m),
        Op::SolMaxRt(v) => enc.sol_max_rt(*v),
        Op::LinkLayer(a) => enc.client_linklayer_addr(1, a),
        Op::LqQuery(t, link, addr) => {
            let m = enc.begin_lq_query(*t, Ipv6Addr::from(*link))?;
            enc.ia_addr(Ipv6Addr::from(*addr), 0, 0)?;
            enc.end_option(m)
        }
        Op::ClientData(mac, clt) => {
            let m = enc.begin_client_data()?;
            enc.client_id(&[&[0, 3, 0, 1][..], mac].concat())?;
            enc.clt_time(*clt)?;
            enc.end_option(m)
        }
        Op::Unknown(c, d) => enc.option(*c, d),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let name = prop::collection::vec("[a-z0-9]{1,12}", 1..4).prop_map(|l| l.join("."));
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Op::ClientId),
        (
            any::<u32>(),
            prop::collection::vec(
                (
                    any::<u128>(),
                    any::<u32>(),
                    any::<u32>(),
                    prop::option::of(0u16..12)
                ),
                0..3
            )
        )
            .prop_map(|(i, a)| Op::IaNa(i, a)),
        (
            any::<u32>(),
            prop::collection::vec((0u8..=128, any::<u128>()), 0..3)
        )
            .prop_map(|(i, p)| Op::IaPd(i, p)),
        prop::collection::vec(any::<u16>(), 0..5).prop_map(Op::Oro),
        any::<u16>().prop_map(Op::Elapsed),
        Just(Op::Rapid),
        prop::collection::vec(any::<u128>(), 1..3).prop_map(Op::Dns),
        prop::collection::vec(name.clone(), 1..3).prop_map(Op::Search),
        (0u8..8, prop_oneof![Just(String::new()), name]).prop_map(|(f, n)| Op::Fqdn(f, n)),
        (any::<u16>(), "[ -~]{0,16}").prop_map(|(c, m)| Op::Status(c, m)),
        any::<u32>().prop_map(Op::SolMaxRt),
        prop::collection::vec(any::<u8>(), 1..8).prop_map(Op::LinkLayer),
        (1u8..6, any::<u128>(), any::<u128>()).prop_map(|(t, l, a)| Op::LqQuery(t, l, a)),
        (prop::collection::vec(any::<u8>(), 1..8), any::<u32>())
            .prop_map(|(m, c)| Op::ClientData(m, c)),
        (400u16..500, prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(c, d)| Op::Unknown(c, d)),
    ]
}

fn message(t: u8, ops: &[Op], relays: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut enc = Encoder::new(&mut buf);
    let mut marks = Vec::new();
    for hop in 0..relays {
        enc.relay_header(
            MessageType::RelayForw,
            hop as u8,
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
        )
        .unwrap();
        enc.interface_id(&[hop as u8 + 1]).unwrap();
        marks.push(enc.begin_relay_msg().unwrap());
    }
    enc.message_header(MessageType::from_code(t), Xid::new(0x123456))
        .unwrap();
    for o in ops {
        write(&mut enc, o).unwrap();
    }
    while let Some(m) = marks.pop() {
        enc.end_option(m).unwrap();
    }
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

proptest! {
    // Failures persist next to this file (`fuzz_smoke.proptest-regressions`):
    // proptest's default, inside a `tests/NAME/main.rs` binary, is a
    // `proptest-regressions/` directory beside the binary's directory.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(2000)
    })]

    /// Arbitrary bytes: no panic; anything accepted round-trips.
    #[test]
    fn decode_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        check_round_trip(&data)?;
    }

    /// Valid messages built with the encoder decode, round-trip, and keep doing
    /// so (or fail cleanly) after random corruption.
    #[test]
    fn valid_then_mutated(
        t in (1u8..=17).prop_filter("not relay", |t| *t != 12 && *t != 13),
        ops in prop::collection::vec(op(), 0..10),
        relays in 0usize..3,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let msg = message(t, &ops, relays);
        prop_assert!(AnyMessage::decode(&msg).is_ok(), "valid message refused: {:?}", AnyMessage::decode(&msg));
        check_round_trip(&msg)?;
        let mut bad = msg.clone();
        for (i, v) in &flips {
            let at = i.index(bad.len());
            bad[at] ^= v;
        }
        check_round_trip(&bad)?;
        check_round_trip(&msg[..cut.index(msg.len() + 1)])?;
    }

    /// RFC 9915 §7.6: relays nest up to HOP_COUNT_LIMIT, deeper is refused.
    #[test]
    fn relay_nesting(depth in 0usize..40, ops in prop::collection::vec(op(), 0..3)) {
        let msg = message(1, &ops, depth);
        match AnyMessage::decode(&msg) {
            Ok(AnyMessage::Relay(r)) => {
                prop_assert!((1..=HOP_COUNT_LIMIT).contains(&depth));
                prop_assert_eq!(r.chain().count(), depth);
                let inner = r.innermost().unwrap();
                prop_assert_eq!(inner.msg_type, MessageType::Solicit);
                prop_assert_eq!(inner.options.raw().filter(|o| o.code != code::RELAY_MSG).count(), ops.len());
            }
            Ok(AnyMessage::Message(_)) => prop_assert_eq!(depth, 0),
            Err(e) => {
                prop_assert!(depth > HOP_COUNT_LIMIT, "depth {} refused: {}", depth, e);
                prop_assert_eq!(e, WireError::RelayTooDeep { limit: HOP_COUNT_LIMIT });
            }
        }
        check_round_trip(&msg)?;
    }
}

/// Found by `cargo fuzz run roundtrip`: a Client FQDN whose partial name's
/// last label ends in a zero octet was re-encoded as fully qualified.
#[test]
fn regression_fqdn_label_ending_in_zero_is_not_root() {
    let crash = [
        0x01, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x2a, 0xbb, 0xcc,
        0xdd, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0xff,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x00, 0x13, 0x01, 0x04, b'h',
        b'o', b's', b't', 0x0c, b'e', b'p', b'a', b'm', b'p', b'l', b'e', 0x03, b'n', b'e', b't',
        0x00,
    ];
    assert!(AnyMessage::decode(&crash).is_ok());
    check_round_trip(&crash).unwrap();
}
