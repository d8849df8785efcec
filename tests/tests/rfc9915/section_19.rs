//! RFC 9915 §19 (relay agent behaviour as seen by the server): §19.3 Relay-reply
//! construction and the choice of subnet from the innermost link-address (§13.1).
use crate::core_harness::*;

use dhcp6d::protocol::DropReason;
use dhcp6d::protocol::Ingress;
use dhcp6d::wire::{AnyMessage, Encoder, MessageType, Xid};
use std::net::Ipv6Addr;

struct Hop {
    hop_count: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<&'static [u8]>,
}

/// Wrap a client Solicit in Relay-forw levels, outermost first.
fn relayed_solicit(n: u32, hops: &[Hop]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut enc = Encoder::new(&mut buf);
    let mut marks = Vec::new();
    for h in hops {
        enc.relay_header(MessageType::RelayForw, h.hop_count, h.link, h.peer)
            .unwrap();
        if let Some(id) = h.interface_id {
            enc.interface_id(id).unwrap();
        }
        marks.push(enc.begin_relay_msg().unwrap());
    }
    enc.message_header(MessageType::Solicit, Xid::new(0x77))
        .unwrap();
    enc.client_id(&client_duid(n)).unwrap();
    ia_na(&mut enc, 1, &[]).unwrap();
    while let Some(m) = marks.pop() {
        enc.end_option(m).unwrap();
    }
    let len = enc.finish().unwrap();
    buf.truncate(len);
    buf
}

fn from_relay() -> Ingress {
    Ingress {
        ifindex: 99, // not a subnet interface: relayed traffic is placed by link-address
        src: "2001:db8:ffff::1".parse().unwrap(),
        src_port: 547,
        dst_multicast: false, // relays unicast to the server: not client unicast
    }
}

#[test]
fn reply_is_rewrapped_through_every_level() {
    // §19.3: the server "constructs a Relay-reply message ... the server copies the
    // hop-count, link-address, peer-address ... and the Interface-Id option" of each Relay-forw.
    let s = server(BASE);
    let hops = [
        Hop {
            hop_count: 1,
            link: Ipv6Addr::UNSPECIFIED,
            peer: "2001:db8:ffff::2".parse().unwrap(),
            interface_id: Some(b"outer-if"),
        },
        Hop {
            hop_count: 0,
            link: "2001:db8:2:2::1".parse().unwrap(),
            peer: "fe80::abcd".parse().unwrap(),
            interface_id: Some(b"ge-0/0/1.100"),
        },
    ];
    let out = send(&s, &from_relay(), &relayed_solicit(1, &hops), T0);
    let reply = out.handled.result.unwrap();
    assert_eq!(
        (reply.to, reply.port, reply.sent),
        (from_relay().src, 547, MessageType::RelayRepl)
    );
    assert!(out.handled.relayed);
    assert_eq!(out.handled.received, Some(MessageType::Solicit));
    let AnyMessage::Relay(outer) = out.reply() else {
        panic!("expected Relay-repl")
    };
    let levels: Vec<_> = outer.chain().collect();
    assert_eq!(levels.len(), 2);
    for (got, want) in levels.iter().zip(&hops) {
        assert_eq!(got.msg_type, MessageType::RelayRepl);
        assert_eq!(
            (got.hop_count, got.link_address, got.peer_address),
            (want.hop_count, want.link, want.peer)
        );
        assert_eq!(got.interface_id(), want.interface_id);
    }
    let inner = outer.innermost().unwrap();
    assert_eq!(inner.msg_type, MessageType::Advertise);
    assert_eq!(inner.xid.get(), 0x77);
    // The subnet is the one holding the innermost link-address: 2001:db8:2:2::/64, pool ::100-::1ff.
    let (addr, ..) = first_addr(&inner).unwrap();
    let a = u128::from(addr);
    assert!(a >= u128::from("2001:db8:2:2::100".parse::<Ipv6Addr>().unwrap()));
    assert!(a <= u128::from("2001:db8:2:2::1ff".parse::<Ipv6Addr>().unwrap()));
    // T1 is the subnet override (500), not the global 1000.
    assert_eq!(inner.options.ia_nas().next().unwrap().t1, 500);
}

#[test]
fn relay_without_interface_id_gets_none_back() {
    // §19.3: Interface-Id is copied only "if the Relay-forw message included" one.
    let s = server(BASE);
    let hops = [Hop {
        hop_count: 0,
        link: "2001:db8:1:1::1".parse().unwrap(),
        peer: "fe80::1".parse().unwrap(),
        interface_id: None,
    }];
    let out = send(&s, &from_relay(), &relayed_solicit(2, &hops), T0);
    let AnyMessage::Relay(r) = out.reply() else {
        panic!()
    };
    assert_eq!(r.interface_id(), None);
    assert!(r.innermost().is_some());
}

#[test]
fn unknown_link_is_dropped() {
    // §18.3 / CONTRACT: no subnet for the link, no answer (and no state).
    let s = server(BASE);
    let hops = [Hop {
        hop_count: 0,
        link: "2001:db8:99::1".parse().unwrap(),
        peer: "fe80::1".parse().unwrap(),
        interface_id: None,
    }];
    let out = send(&s, &from_relay(), &relayed_solicit(3, &hops), T0);
    assert_eq!(out.handled.result, Err(DropReason::NoSubnet));
    assert!(out.handled.relayed);
}

#[test]
fn link_address_in_link_prefixes_selects_the_subnet() {
    // §13.1: the server uses the innermost link-address "to identify the link to which the
    // client is attached". On a unique-prefix link (RFC 6853 §6.2) the relay's address may be
    // from another server's /64; `link_prefixes` names those, so the link is still ours and the
    // client gets an address from our own pool.
    let text = BASE.replace(
        "pools = [\"2001:db8:2:2::100-2001:db8:2:2::1ff\"]",
        "pools = [\"2001:db8:2:2::100-2001:db8:2:2::1ff\"]\nlink_prefixes = [\"2001:db8:2:5::/64\"]",
    );
    let s = server(&text);
    let hops = [Hop {
        hop_count: 0,
        link: "2001:db8:2:5::1".parse().unwrap(),
        peer: "fe80::1".parse().unwrap(),
        interface_id: None,
    }];
    let out = send(&s, &from_relay(), &relayed_solicit(5, &hops), T0);
    let AnyMessage::Relay(r) = out.reply() else {
        panic!("expected a Relay-reply")
    };
    let inner = r.innermost().unwrap();
    let (addr, ..) = first_addr(&inner).unwrap();
    let v = u128::from(addr);
    assert!(
        v >= u128::from("2001:db8:2:2::100".parse::<Ipv6Addr>().unwrap())
            && v <= u128::from("2001:db8:2:2::1ff".parse::<Ipv6Addr>().unwrap()),
        "{addr} is not from the subnet's pool"
    );
    // Without the key the same link-address is unknown (see unknown_link_is_dropped).
    let plain = send(&server(BASE), &from_relay(), &relayed_solicit(5, &hops), T0);
    assert_eq!(plain.handled.result, Err(DropReason::NoSubnet));
}

#[test]
fn relay_repl_received_is_dropped() {
    // A server never receives Relay-repl from a relay (§19): discard it.
    let s = server(BASE);
    let mut bytes = relayed_solicit(
        4,
        &[Hop {
            hop_count: 0,
            link: "2001:db8:1:1::1".parse().unwrap(),
            peer: "fe80::1".parse().unwrap(),
            interface_id: None,
        }],
    );
    bytes[0] = 13; // RELAY-REPL
    assert_eq!(
        send(&s, &from_relay(), &bytes, T0).handled.result,
        Err(DropReason::WrongMessageType)
    );
}

/// `limits.trusted_relays` (CONTRACT.md "Beyond the base"): a Relay-forw
/// whose source is outside every listed prefix is dropped and counted as
/// `untrusted_relay`, with no binding made; one from inside is served, and
/// without the key every relay is.
#[test]
fn relay_forw_from_an_untrusted_source_is_dropped() {
    let hops = [Hop {
        hop_count: 0,
        link: "2001:db8:2:2::1".parse().unwrap(),
        peer: "fe80::abcd".parse().unwrap(),
        interface_id: None,
    }];
    let msg = relayed_solicit(7, &hops);
    let trusted = format!("{BASE}\n[limits]\ntrusted_relays = [\"2001:db8:ffff::/48\"]\n");
    let s = server(&trusted);
    let out = send(&s, &from_relay(), &msg, T0);
    assert_eq!(
        out.handled.result.map(|r| r.sent),
        Ok(MessageType::RelayRepl)
    );

    let elsewhere = format!("{BASE}\n[limits]\ntrusted_relays = [\"2001:db8:eeee::/48\"]\n");
    let s = server(&elsewhere);
    let out = send(&s, &from_relay(), &msg, T0);
    assert_eq!(out.handled.result, Err(DropReason::UntrustedRelay));
    assert!(out.handled.relayed);
    assert!(out.changes.is_empty(), "no state from an untrusted relay");

    let s = server(BASE);
    let out = send(&s, &from_relay(), &msg, T0);
    assert!(out.handled.result.is_ok(), "absent = any relay");
}
