//! `limits.messages_per_second_per_source` (issue 13 item 1) through the
//! worker entry point (`Handler::handle_local`): a Rebind or a Rapid Commit
//! Solicit with a fresh DUID creates a binding without knowing our DUID, so
//! one source could empty a pool in seconds. Past its rate (burst 2 s of
//! tokens) a source's messages are dropped as `rate_limited` before they
//! change anything, while other sources, direct or behind the same relay,
//! are still answered; a reload changes the rate for the next message.

use std::net::Ipv6Addr;

use crate::core_harness::*;
use dhcp6d::protocol::server::Policy;
use dhcp6d::protocol::{DropReason, Ingress, Server, WorkerLocal};
use dhcp6d::wire::{Encoder, MessageType};

/// A 256-address pool that a flood of new DUIDs would empty at once.
fn small_pool(limits: &str) -> String {
    format!(
        r#"
[server]
interfaces = ["eth0"]
rapid_commit = true
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::100-2001:db8:1:1::1ff"]
[[subnet]]
prefix = "2001:db8:2:2::/64"
pools = ["2001:db8:2:2::100-2001:db8:2:2::1ff"]
{limits}
"#
    )
}

const RATE: u64 = 5;
/// Messages the flooding source sends each second.
const FLOOD: u32 = 400;

fn on_eth0(src: &str) -> Ingress {
    Ingress {
        ifindex: ETH0,
        src: src.parse().unwrap(),
        src_port: 546,
        dst_multicast: true,
    }
}

/// A Rebind for an address we never gave (RFC 9915 §18.3.5: with
/// `rebind_creates_bindings`, the default, the IA gets a new binding).
fn rebind(n: u32) -> Vec<u8> {
    build(MessageType::Rebind, 0x3000 + n, |e| {
        e.client_id(&client_duid(n))?;
        ia_na(e, 1, &["2001:db8:9::1".parse().unwrap()])
    })
}

/// A Solicit with Rapid Commit: answered with a committed Reply.
fn rapid_solicit(n: u32) -> Vec<u8> {
    build(MessageType::Solicit, 0x4000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.rapid_commit()?;
        ia_na(e, 1, &[])
    })
}

/// `msg` inside one Relay-forw whose peer-address is `peer`, on the link
/// of the relayed subnet.
fn relayed(peer: &str, msg: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut enc = Encoder::new(&mut buf);
    enc.relay_header(
        MessageType::RelayForw,
        0,
        "2001:db8:2:2::1".parse().unwrap(),
        peer.parse().unwrap(),
    )
    .unwrap();
    let m = enc.begin_relay_msg().unwrap();
    enc.put_slice(msg).unwrap();
    enc.end_option(m).unwrap();
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

fn relay() -> Ingress {
    Ingress {
        ifindex: 99,
        src: "2001:db8:ffff::1".parse().unwrap(),
        src_port: 547,
        dst_multicast: false,
    }
}

/// What one flooding second did.
#[derive(Debug, Default)]
struct Tally {
    answered: u64,
    limited: u64,
}

/// `count` messages from `ingress` at `now`, built by `msg(n)` with fresh
/// DUIDs from `*next`; a limited one must have changed nothing.
fn flood(
    s: &Server,
    local: &mut WorkerLocal,
    ingress: &Ingress,
    msg: impl Fn(u32) -> Vec<u8>,
    next: &mut u32,
    count: u32,
    now: u64,
) -> Tally {
    let mut t = Tally::default();
    for _ in 0..count {
        *next += 1;
        let out = send_local(s, local, ingress, &msg(*next), now);
        match out.handled.result {
            Ok(_) => t.answered += 1,
            Err(DropReason::RateLimited) => {
                assert!(out.changes.is_empty(), "a limited message changed state");
                assert!(out.handled.received.is_some(), "still counted as received");
                t.limited += 1;
            }
            Err(other) => panic!("unexpected drop {other:?}"),
        }
    }
    t
}

/// Solicit, then Request, from a client of its own at `src`; the address it got.
fn good_client(s: &Server, local: &mut WorkerLocal, src: &str, n: u32, now: u64) -> Ipv6Addr {
    let adv = send_local(s, local, &on_eth0(src), &solicit(n), now);
    let (offered, _, _) = first_addr(&adv.message()).expect("the good client gets an offer");
    let req = request(n, s.server_duid(), Some(offered));
    let rep = send_local(s, local, &on_eth0(src), &req, now);
    let (got, _, valid) = first_addr(&rep.message()).expect("the good client gets its address");
    assert!(valid > 0, "{got} assigned for real");
    got
}

#[test]
fn a_flooding_source_is_held_to_its_rate_and_others_are_still_served() {
    let s = server(&small_pool(&format!(
        "[limits]\nmessages_per_second_per_source = {RATE}"
    )));
    let mut local = WorkerLocal::default();
    let attacker = on_eth0("fe80::bad");
    let mut next = 1_000_000;
    let mut answered = 0;
    let mut good = 0;
    for (sec, now) in (T0..T0 + 4).enumerate() {
        // Half Rebinds, half Rapid Commit Solicits, each with a new DUID.
        let a = flood(&s, &mut local, &attacker, rebind, &mut next, FLOOD / 2, now);
        let b = flood(
            &s,
            &mut local,
            &attacker,
            rapid_solicit,
            &mut next,
            FLOOD / 2,
            now,
        );
        let allowed = if sec == 0 { 2 * RATE } else { RATE };
        assert_eq!(
            a.answered + b.answered,
            allowed,
            "second {sec}: {a:?} {b:?}"
        );
        assert_eq!(a.limited + b.limited, u64::from(FLOOD) - allowed);
        answered += a.answered + b.answered;
        // A client at another address is answered in the same second.
        good_client(&s, &mut local, "fe80::1234", 10 + sec as u32, now);
        good += 1;
    }
    // Every binding is one an admitted message made: the flood of 1,600
    // new DUIDs did not empty the 256-address pool.
    assert_eq!(s.lease_counts(), (answered + good, 0));
}

#[test]
fn a_relayed_flood_is_limited_per_client_not_per_relay() {
    let s = server(&small_pool(&format!(
        "[limits]\nmessages_per_second_per_source = {RATE}"
    )));
    let mut local = WorkerLocal::default();
    let mut next = 2_000_000;
    let t = flood(
        &s,
        &mut local,
        &relay(),
        |n| relayed("fe80::bad", &rebind(n)),
        &mut next,
        FLOOD,
        T0,
    );
    assert_eq!(
        (t.answered, t.limited),
        (2 * RATE, u64::from(FLOOD) - 2 * RATE)
    );
    // Another subscriber behind the same relay keeps its own bucket.
    let other = flood(
        &s,
        &mut local,
        &relay(),
        |n| relayed("fe80::2", &solicit(n)),
        &mut next,
        3,
        T0,
    );
    assert_eq!((other.answered, other.limited), (3, 0));
    assert_eq!(s.lease_counts(), (2 * RATE, 0));
}

#[test]
fn a_reload_changes_the_rate_for_the_next_message() {
    let policy = |limits: &str| {
        Policy::new(
            &config(&small_pool(limits)).settings(),
            SERVER_DUID.to_vec(),
            &[("eth0".into(), ETH0)],
        )
        .unwrap()
    };
    let s = server(&small_pool("[limits]\nmessages_per_second_per_source = 5"));
    let mut local = WorkerLocal::default();
    let src = on_eth0("fe80::bad");
    let mut next = 0;
    // Advertises only: no binding, so the pool never limits what is answered.
    let mut second =
        |s: &Server, now: u64| flood(s, &mut local, &src, solicit, &mut next, FLOOD, now).answered;
    assert_eq!(second(&s, T0), 10);
    assert_eq!(second(&s, T0 + 1), 5);
    s.install(policy("[limits]\nmessages_per_second_per_source = 50"))
        .unwrap();
    assert_eq!(second(&s, T0 + 2), 50, "the higher rate at the next refill");
    s.install(policy("")).unwrap();
    assert_eq!(
        second(&s, T0 + 2),
        u64::from(FLOOD),
        "no limit: all answered"
    );
    s.install(policy("[limits]\nmessages_per_second_per_source = 2"))
        .unwrap();
    assert_eq!(second(&s, T0 + 4), 4, "a lower rate clamps to its burst");
    assert_eq!(second(&s, T0 + 5), 2);
}

#[test]
fn without_the_key_nothing_is_limited() {
    let s = server(&small_pool(""));
    let mut local = WorkerLocal::default();
    let mut next = 0;
    let t = flood(
        &s,
        &mut local,
        &on_eth0("fe80::bad"),
        solicit,
        &mut next,
        FLOOD,
        T0,
    );
    assert_eq!((t.answered, t.limited), (u64::from(FLOOD), 0));
}
