//! Unit tests of messages, relays and options, each citing the RFC text it checks.

use std::net::Ipv6Addr;

use super::*;

const DUID_LL: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa];

fn addr(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Builds a Solicit with Client ID, IA_NA, IA_PD, ORO, Elapsed Time, Rapid Commit.
fn solicit(buf: &mut [u8]) -> usize {
    let mut enc = Encoder::new(buf);
    enc.message_header(MessageType::Solicit, Xid::new(0xabcdef))
        .unwrap();
    enc.client_id(&DUID_LL).unwrap();
    let ia = enc.begin_ia_na(7, 0, 0).unwrap();
    enc.end_option(ia).unwrap();
    let pd = enc.begin_ia_pd(8, 0, 0).unwrap();
    enc.ia_prefix(0, 0, 56, Ipv6Addr::UNSPECIFIED).unwrap();
    enc.end_option(pd).unwrap();
    enc.oro(&[code::DNS_SERVERS, code::DOMAIN_LIST]).unwrap();
    enc.elapsed_time(150).unwrap();
    enc.rapid_commit().unwrap();
    enc.finish().unwrap()
}

/// RFC 9915 §8: msg-type (1 octet), transaction-id (3 octets), options.
#[test]
fn rfc9915_8_client_server_message_format() {
    let mut buf = [0u8; 256];
    let n = solicit(&mut buf);
    assert_eq!(&buf[..4], &[1, 0xab, 0xcd, 0xef]);
    let m = Message::decode(&buf[..n]).unwrap();
    assert_eq!(m.msg_type, MessageType::Solicit);
    assert_eq!(m.xid.get(), 0xabcdef);
    assert_eq!(m.options.client_id().unwrap().as_bytes(), DUID_LL);
    let ia = m.options.ia_nas().next().unwrap();
    assert_eq!((ia.iaid, ia.t1, ia.t2), (7, 0, 0));
    let pd = m.options.ia_pds().next().unwrap();
    assert_eq!(pd.iaid, 8);
    assert_eq!(pd.prefixes().next().unwrap().prefix_len, 56);
    let oro: Vec<u16> = m.options.oro().unwrap().iter().collect();
    assert_eq!(oro, [23, 24]);
    assert_eq!(m.options.elapsed_time(), Some(150));
    assert!(m.options.rapid_commit());
    assert!(m.options.server_id().is_none());
}

/// RFC 9915 §7.3: message types 1–13; RFC 5007 §4.2 and RFC 5460 §5.1: 14–17.
#[test]
fn rfc9915_7_3_message_type_codes() {
    for c in 0..=255u8 {
        assert_eq!(MessageType::from_code(c).code(), c);
    }
    assert_eq!(MessageType::from_code(11), MessageType::InformationRequest);
    assert_eq!(MessageType::from_code(17), MessageType::LeasequeryData);
    assert!(MessageType::from_code(12).is_relay() && MessageType::from_code(13).is_relay());
    assert_eq!(MessageType::from_code(18), MessageType::Other(18));
}

/// RFC 9915 §8: a message shorter than its 4-octet header is malformed.
#[test]
fn rfc9915_8_truncated_header() {
    assert_eq!(
        AnyMessage::decode(&[1, 2, 3]),
        Err(WireError::Truncated { len: 3, needed: 4 })
    );
    assert_eq!(
        AnyMessage::decode(&[12; 20]),
        Err(WireError::Truncated {
            len: 20,
            needed: 34
        })
    );
}

/// RFC 9915 §21.1: option-len is the length of option-data; an option that
/// runs past the message, or a partial header, is refused.
#[test]
fn rfc9915_21_1_option_framing() {
    assert_eq!(
        AnyMessage::decode(&[1, 0, 0, 0, 0, 99, 0, 5, 1, 2]),
        Err(WireError::OptionOverrun {
            code: 99,
            len: 5,
            available: 2
        })
    );
    assert_eq!(
        AnyMessage::decode(&[1, 0, 0, 0, 0, 99, 0]),
        Err(WireError::OptionHeaderTruncated { remaining: 3 })
    );
}

/// RFC 9915 §21.4: an IAADDR whose length overruns its IA_NA is malformed.
#[test]
fn rfc9915_21_4_suboption_overruns_parent() {
    let mut m = vec![1, 0, 0, 1, 0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend([0, 5, 0, 24]); // IAADDR claims 24 bytes, none inside IA_NA
    m.extend([0u8; 24]); // ... that follow IA_NA, in the message
    m[7] = 16; // IA_NA length covers only the IAADDR header
    assert_eq!(
        AnyMessage::decode(&m),
        Err(WireError::OptionOverrun {
            code: 5,
            len: 24,
            available: 0
        })
    );
}

/// Unknown options are kept and written back unchanged.
#[test]
fn unknown_option_is_kept_and_reencoded() {
    let m = [11, 0, 0, 9, 0x12, 0x34, 0, 3, 9, 8, 7];
    let d = AnyMessage::decode(&m).unwrap();
    assert_eq!(
        d.options().iter().next(),
        Some(DhcpOption::Unknown {
            code: 0x1234,
            data: &[9, 8, 7]
        })
    );
    let mut out = [0u8; 32];
    let mut enc = Encoder::new(&mut out);
    d.encode(&mut enc).unwrap();
    let n = enc.finish().unwrap();
    assert_eq!(&out[..n], &m);
}

/// RFC 9915 §21.8 (Preference, 1 octet), §21.9 (Elapsed Time, 2), §21.14 (Rapid Commit, 0).
#[test]
fn rfc9915_21_fixed_lengths_enforced() {
    for (code, len) in [
        (7u16, 2u8),
        (8, 1),
        (14, 1),
        (20, 1),
        (82, 3),
        (83, 5),
        (32, 2),
        (12, 4),
    ] {
        let mut m = vec![1, 0, 0, 0, 0, code as u8, 0, len];
        m.extend(std::iter::repeat_n(0u8, usize::from(len)));
        assert_eq!(
            AnyMessage::decode(&m),
            Err(WireError::BadOptionLength {
                code,
                len: u16::from(len)
            }),
            "option {code}"
        );
    }
}

/// RFC 9915 §21.13: Status Code = 2-octet code + UTF-8 message.
#[test]
fn rfc9915_21_13_status_code() {
    let mut buf = [0u8; 64];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Reply, Xid::new(1)).unwrap();
    enc.status_code(status::NO_ADDRS_AVAIL, "none left")
        .unwrap();
    let n = enc.finish().unwrap();
    let m = Message::decode(&buf[..n]).unwrap();
    let s = m.options.status_code().unwrap();
    assert_eq!(s.code, 2);
    assert_eq!(s.message_str(), Some("none left"));
    assert_eq!(
        AnyMessage::decode(&[7, 0, 0, 0, 0, 13, 0, 1, 0]),
        Err(WireError::BadOptionLength { code: 13, len: 1 })
    );
}

/// RFC 9915 §21.22: prefix-length above 128 is malformed.
#[test]
fn rfc9915_21_22_prefix_length() {
    let mut m = vec![1, 0, 0, 0, 0, 26, 0, 25, 0, 0, 0, 0, 0, 0, 0, 0, 129];
    m.extend([0u8; 16]);
    assert_eq!(AnyMessage::decode(&m), Err(WireError::BadPrefixLength(129)));
    let mut buf = [0u8; 64];
    let mut enc = Encoder::new(&mut buf);
    assert_eq!(
        enc.ia_prefix(1, 2, 129, Ipv6Addr::UNSPECIFIED),
        Err(WireError::BadPrefixLength(129))
    );
}

/// RFC 3646 §3: DNS servers option length is a multiple of 16; empty makes no sense.
#[test]
fn rfc3646_3_dns_servers() {
    let mut buf = [0u8; 128];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Reply, Xid::new(1)).unwrap();
    enc.dns_servers(&[addr("2001:db8::53"), addr("2001:db8::54")])
        .unwrap();
    enc.domain_list(&["example.net", "corp.example"]).unwrap();
    let n = enc.finish().unwrap();
    let m = Message::decode(&buf[..n]).unwrap();
    let dns: Vec<_> = m.options.dns_servers().unwrap().iter().collect();
    assert_eq!(dns, [addr("2001:db8::53"), addr("2001:db8::54")]);
    let names: Vec<String> = m
        .options
        .domain_list()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["example.net", "corp.example"]);
    assert_eq!(
        AnyMessage::decode(&[7, 0, 0, 0, 0, 23, 0, 0]),
        Err(WireError::ZeroLength { code: 23 })
    );
    assert_eq!(
        AnyMessage::decode(&[7, 0, 0, 0, 0, 23, 0, 3, 1, 2, 3]),
        Err(WireError::BadOptionLength { code: 23, len: 3 })
    );
}

/// RFC 4704 §4: flags octet then a domain name; the name may be empty.
#[test]
fn rfc4704_4_client_fqdn() {
    let mut buf = [0u8; 64];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Reply, Xid::new(1)).unwrap();
    enc.client_fqdn(ClientFqdnFlags::S, "host.example.net")
        .unwrap();
    let n = enc.finish().unwrap();
    let f = Message::decode(&buf[..n])
        .unwrap()
        .options
        .client_fqdn()
        .unwrap();
    assert_eq!(f.flags, 1);
    assert!(f.name.is_fully_qualified());
    assert_eq!(f.name.to_string(), "host.example.net");
    let empty = AnyMessage::decode(&[7, 0, 0, 0, 0, 39, 0, 1, 4]).unwrap();
    assert_eq!(
        empty.options().client_fqdn().unwrap().name.labels().count(),
        0
    );
}

struct ClientFqdnFlags;
impl ClientFqdnFlags {
    const S: u8 = options::ClientFqdn::FLAG_S;
}

/// Wraps `inner` in `levels` Relay-forw headers, each with an Interface-ID.
fn relay_wrap(inner: &[u8], levels: usize) -> Vec<u8> {
    let mut msg = inner.to_vec();
    for hop in 0..levels {
        let mut buf = vec![0u8; msg.len() + 64];
        let mut enc = Encoder::new(&mut buf);
        enc.relay_header(
            MessageType::RelayForw,
            hop as u8,
            addr("2001:db8:1::1"),
            addr("fe80::1"),
        )
        .unwrap();
        enc.interface_id(&[b'i', hop as u8]).unwrap();
        enc.option(code::RELAY_MSG, &msg).unwrap();
        let n = enc.finish().unwrap();
        buf.truncate(n);
        msg = buf;
    }
    msg
}

/// RFC 9915 §9: Relay-forw = msg-type, hop-count, link-address, peer-address, options.
#[test]
fn rfc9915_9_relay_message_format() {
    let mut buf = [0u8; 256];
    let n = solicit(&mut buf);
    let relayed = relay_wrap(&buf[..n], 2);
    let AnyMessage::Relay(outer) = AnyMessage::decode(&relayed).unwrap() else {
        panic!("not a relay message")
    };
    assert_eq!(outer.msg_type, MessageType::RelayForw);
    assert_eq!(outer.hop_count, 1);
    assert_eq!(outer.link_address, addr("2001:db8:1::1"));
    assert_eq!(outer.peer_address, addr("fe80::1"));
    assert_eq!(outer.interface_id(), Some(&b"i\x01"[..]));
    let hops: Vec<u8> = outer.chain().map(|r| r.hop_count).collect();
    assert_eq!(hops, [1, 0]);
    let inner = outer.innermost().unwrap();
    assert_eq!(inner.msg_type, MessageType::Solicit);
    assert_eq!(inner.options.client_id().unwrap().as_bytes(), DUID_LL);
}

/// RFC 9915 §7.6 HOP_COUNT_LIMIT = 32: 32 nested relays decode, 33 do not.
#[test]
fn rfc9915_7_6_hop_count_limit() {
    let inner = [1u8, 0, 0, 1];
    assert!(AnyMessage::decode(&relay_wrap(&inner, HOP_COUNT_LIMIT)).is_ok());
    assert_eq!(
        AnyMessage::decode(&relay_wrap(&inner, HOP_COUNT_LIMIT + 1)),
        Err(WireError::RelayTooDeep { limit: 32 })
    );
}

/// RFC 9915 §9.1: a Relay-forw "MUST include a Relay Message option".
#[test]
fn rfc9915_9_1_relay_message_option_required() {
    let mut r = vec![12u8, 0];
    r.extend([0u8; 32]);
    r.extend([0, 18, 0, 1, 7]); // only an Interface-ID
    assert_eq!(AnyMessage::decode(&r), Err(WireError::MissingRelayMessage));
}

/// RFC 9915 §19.3: the server's Relay-repl carries the reply in a Relay Message
/// option and echoes the Interface-ID; written outside-in without allocation.
#[test]
fn rfc9915_19_3_relay_repl_encoding() {
    let mut buf = [0u8; 512];
    let mut enc = Encoder::new(&mut buf);
    enc.relay_header(
        MessageType::RelayRepl,
        0,
        addr("2001:db8:1::1"),
        addr("fe80::2"),
    )
    .unwrap();
    enc.interface_id(b"eth7").unwrap();
    let rm = enc.begin_relay_msg().unwrap();
    enc.message_header(MessageType::Reply, Xid::new(42))
        .unwrap();
    enc.server_id(&SERVER_DUID).unwrap();
    let ia = enc.begin_ia_na(7, 100, 200).unwrap();
    enc.ia_addr(addr("2001:db8:1::99"), 300, 400).unwrap();
    enc.end_option(ia).unwrap();
    enc.end_option(rm).unwrap();
    let n = enc.finish().unwrap();
    let AnyMessage::Relay(r) = AnyMessage::decode(&buf[..n]).unwrap() else {
        panic!("not a relay message")
    };
    assert_eq!(r.msg_type, MessageType::RelayRepl);
    assert_eq!(r.interface_id(), Some(&b"eth7"[..]));
    let reply = r.innermost().unwrap();
    assert_eq!(reply.xid.get(), 42);
    assert_eq!(reply.options.server_id().unwrap().as_bytes(), SERVER_DUID);
    let a = reply
        .options
        .ia_nas()
        .next()
        .unwrap()
        .addrs()
        .next()
        .unwrap();
    assert_eq!(
        (a.addr, a.preferred, a.valid),
        (addr("2001:db8:1::99"), 300, 400)
    );
}

/// Options nested without end (IA_NA inside IA_NA ...) are bounded, not recursed forever.
#[test]
fn nesting_is_bounded() {
    let mut body: Vec<u8> = Vec::new();
    for _ in 0..200 {
        let mut o = vec![0, 3];
        o.extend(u16::try_from(body.len() + 12).unwrap().to_be_bytes());
        o.extend([0u8; 12]);
        o.extend(&body);
        body = o;
    }
    let mut m = vec![1, 0, 0, 0];
    m.extend(body);
    assert_eq!(
        AnyMessage::decode(&m),
        Err(WireError::NestingTooDeep {
            limit: options::MAX_NESTING
        })
    );
}
