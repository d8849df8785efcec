//! Unit tests of the less common options, each citing the RFC text it checks.

use std::net::Ipv6Addr;

use super::QUERY_BY_ADDRESS;
use crate::wire::*;

fn reply(build: impl FnOnce(&mut Encoder<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Reply, Xid::new(9)).unwrap();
    build(&mut enc);
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

fn one_option(code: u16, data: &[u8]) -> Result<AnyMessage<'static>, WireError> {
    let mut m = vec![7u8, 0, 0, 1];
    m.extend(code.to_be_bytes());
    m.extend(u16::try_from(data.len()).unwrap().to_be_bytes());
    m.extend(data);
    AnyMessage::decode(Box::leak(m.into_boxed_slice()))
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// RFC 5007 §4.1.2.1: LQ_QUERY = query-type, link-address, query-options.
#[test]
fn rfc5007_4_1_2_1_lq_query() {
    let bytes = reply(|e| {
        let q = e
            .begin_lq_query(QUERY_BY_ADDRESS, a("2001:db8:1::"))
            .unwrap();
        e.ia_addr(a("2001:db8:1::5"), 0, 0).unwrap();
        e.end_option(q).unwrap();
    });
    let m = AnyMessage::decode(&bytes).unwrap();
    let q = m.options().lq_query().unwrap();
    assert_eq!(q.query_type, 1);
    assert_eq!(q.link_address, a("2001:db8:1::"));
    assert_eq!(
        q.options.ia_addrs().next().unwrap().addr,
        a("2001:db8:1::5")
    );
    assert_eq!(
        one_option(code::LQ_QUERY, &[1; 16]),
        Err(WireError::BadOptionLength { code: 44, len: 16 })
    );
}

/// RFC 5007 §4.1.2.2–§4.1.2.5: CLIENT_DATA holds the client's options,
/// CLT_TIME is 4 octets, LQ_RELAY_DATA = peer-address + relay message,
/// LQ_CLIENT_LINK is a list of addresses.
#[test]
fn rfc5007_4_1_2_client_data_clt_time_relay_data_client_link() {
    let relay_forw = {
        let mut b = vec![0u8; 128];
        let mut e = Encoder::new(&mut b);
        e.relay_header(MessageType::RelayForw, 0, a("2001:db8:1::1"), a("fe80::9"))
            .unwrap();
        e.option(code::RELAY_MSG, &[1, 0, 0, 2]).unwrap();
        let n = e.finish().unwrap();
        b.truncate(n);
        b
    };
    let bytes = reply(|e| {
        let cd = e.begin_client_data().unwrap();
        e.client_id(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]).unwrap();
        e.clt_time(600).unwrap();
        let rd = e.begin_lq_relay_data(a("fe80::9")).unwrap();
        e.put_slice(&relay_forw).unwrap();
        e.end_option(rd).unwrap();
        e.end_option(cd).unwrap();
        e.lq_client_link(&[a("2001:db8:1::"), a("2001:db8:2::")])
            .unwrap();
    });
    let m = AnyMessage::decode(&bytes).unwrap();
    let cd = m.options().client_data().next().unwrap();
    assert_eq!(cd.clt_time(), Some(600));
    assert!(cd.client_id().is_some());
    let rd = cd.lq_relay_data().unwrap();
    assert_eq!(rd.peer_address, a("fe80::9"));
    let AnyMessage::Relay(r) = rd.message else {
        panic!("relay data is not a relay message")
    };
    assert_eq!(r.innermost().unwrap().xid.get(), 2);
    let links: Vec<_> = m.options().lq_client_link().unwrap().iter().collect();
    assert_eq!(links, [a("2001:db8:1::"), a("2001:db8:2::")]);
    assert_eq!(
        one_option(code::CLT_TIME, &[0, 1]),
        Err(WireError::BadOptionLength { code: 46, len: 2 })
    );
    // An invalid relay message inside LQ_RELAY_DATA is refused at decode.
    let mut bad = vec![0u8; 16];
    bad.extend([12, 0]);
    bad.extend([0u8; 32]);
    assert_eq!(
        one_option(code::LQ_RELAY_DATA, &bad),
        Err(WireError::MissingRelayMessage)
    );
}

/// RFC 5460 §5.4.1: Relay-ID carries a DUID.
#[test]
fn rfc5460_5_4_1_relay_id() {
    let bytes = reply(|e| e.relay_id(&[0, 2, 0, 0, 0x0c, 0x9c, 1]).unwrap());
    let m = AnyMessage::decode(&bytes).unwrap();
    assert_eq!(
        m.options().relay_id().unwrap().kind(),
        DuidKind::En {
            enterprise: 3228,
            id: &[1]
        }
    );
    assert_eq!(
        one_option(code::RELAY_ID, &[0, 2]),
        Err(WireError::DuidTooShort { len: 2 })
    );
}

/// RFC 6939 §4: link-layer type (2 octets) then the link-layer address.
#[test]
fn rfc6939_4_client_link_layer_address() {
    let bytes = reply(|e| e.client_linklayer_addr(1, &[2, 0, 0, 0, 0, 7]).unwrap());
    let l = AnyMessage::decode(&bytes)
        .unwrap()
        .options()
        .client_linklayer_addr()
        .unwrap();
    assert_eq!((l.hw_type, l.addr), (1, &[2u8, 0, 0, 0, 0, 7][..]));
    assert_eq!(
        one_option(code::CLIENT_LINKLAYER_ADDR, &[0, 1]),
        Err(WireError::BadOptionLength { code: 79, len: 2 })
    );
}

/// RFC 9915 §21.23–§21.25: Information Refresh Time, SOL_MAX_RT, INF_MAX_RT are 4 octets.
#[test]
fn rfc9915_21_23_to_25_timers() {
    let bytes = reply(|e| {
        e.information_refresh_time(86400).unwrap();
        e.sol_max_rt(3600).unwrap();
        e.inf_max_rt(7200).unwrap();
    });
    let o = AnyMessage::decode(&bytes).unwrap().options();
    assert_eq!(o.information_refresh_time(), Some(86400));
    assert_eq!(o.sol_max_rt(), Some(3600));
    assert_eq!(o.inf_max_rt(), Some(7200));
}

/// RFC 9915 §21.11: Authentication = protocol, algorithm, RDM, 8-octet replay
/// detection, then authentication information (carried, not checked).
#[test]
fn rfc9915_21_11_auth_is_carried() {
    let mut data = vec![3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    data.extend(b"key");
    let m = one_option(code::AUTH, &data).unwrap();
    let auth = m.options().auth().unwrap();
    assert_eq!((auth.protocol, auth.algorithm, auth.rdm), (3, 1, 0));
    assert_eq!(auth.replay_detection, 5);
    assert_eq!(auth.info, b"key");
    assert_eq!(
        one_option(code::AUTH, &data[..10]),
        Err(WireError::BadOptionLength { code: 11, len: 10 })
    );
}

/// RFC 8415 §21.5 (IA_TA) and §21.12 (Server Unicast): obsolete in RFC 9915,
/// still decoded so that a server can ignore them.
#[test]
fn rfc8415_obsolete_ia_ta_and_unicast_decoded() {
    let m = one_option(code::IA_TA, &[0, 0, 0, 4]).unwrap();
    assert_eq!(m.options().ia_tas().next().unwrap().iaid, 4);
    let m = one_option(code::UNICAST, &a("2001:db8::1").octets()).unwrap();
    assert_eq!(m.options().unicast(), Some(a("2001:db8::1")));
}

/// RFC 9915 §21.15–§21.17: User Class and Vendor Class items are
/// length-prefixed; Vendor-specific sub-options use option framing.
#[test]
fn rfc9915_21_15_to_17_class_and_vendor_options() {
    let bytes = reply(|e| {
        e.user_class(&[b"a", b"bc"]).unwrap();
        e.vendor_class(4491, &[b"docsis3.0"]).unwrap();
        let v = e.begin_vendor_opts(4491).unwrap();
        e.option(32, b"box").unwrap();
        e.end_option(v).unwrap();
    });
    let o = AnyMessage::decode(&bytes).unwrap().options();
    let items: Vec<&[u8]> = o.user_class().unwrap().iter().collect();
    assert_eq!(items, [&b"a"[..], b"bc"]);
    let vc = o.vendor_classes().next().unwrap();
    assert_eq!(vc.enterprise, 4491);
    let vo = o.vendor_opts().next().unwrap();
    let sub = vo.sub_options().next().unwrap();
    assert_eq!((sub.code, sub.data), (32, &b"box"[..]));
    // A class item that runs past the option.
    assert_eq!(
        one_option(code::USER_CLASS, &[0, 5, 1]),
        Err(WireError::BadOptionLength { code: 15, len: 3 })
    );
    // A vendor sub-option that runs past the option.
    assert!(matches!(
        one_option(code::VENDOR_OPTS, &[0, 0, 0x11, 0x8b, 0, 1, 0, 9]),
        Err(WireError::OptionOverrun { code: 1, .. })
    ));
}

/// RFC 9915 §21.18–§21.20: Interface-Id is opaque (refused empty here),
/// Reconfigure Message is one octet, Reconfigure Accept is empty.
#[test]
fn rfc9915_21_18_to_20_interface_id_and_reconfigure() {
    assert_eq!(
        one_option(code::INTERFACE_ID, &[]),
        Err(WireError::ZeroLength { code: 18 })
    );
    let m = one_option(code::RECONF_MSG, &[5]).unwrap();
    assert_eq!(m.options().reconf_msg(), Some(MessageType::Renew));
    assert!(one_option(code::RECONF_ACCEPT, &[])
        .unwrap()
        .options()
        .reconf_accept());
}

/// RFC 9915 §21.7: ORO option-len is twice the number of codes.
#[test]
fn rfc9915_21_7_oro_even_length() {
    assert_eq!(
        one_option(code::ORO, &[0, 23, 0]),
        Err(WireError::BadOptionLength { code: 6, len: 3 })
    );
}
