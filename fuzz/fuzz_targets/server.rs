//! The whole packet path, stateful: one `Server` (tiny pools, so clients
//! collide, and `[limits]` caps) answers a sequence of messages built from
//! the input, with the clock moving and sweeps in between. After every step:
//! - the reply, if any, decodes, and goes where the RFC says (546 to a
//!   direct client, 547 to a relay);
//! - no address or prefix is bound twice, and no client holds more than
//!   `limits.bindings_per_client` (one per worker at most, here one worker);
//! - a reply that changed a lease is flagged `needs_durable`;
//! - the journal is the truth: a second server that only ever sees the lease
//!   records (what `serve` writes to disk, then replays at start-up) holds
//!   exactly the same bindings as the live one.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::OnceLock;

use dhcp6d::config::Config;
use dhcp6d::protocol::{Handler, Ingress, LeaseChanges, LeaseOp, LeaseRecord, Server, Timestamp};
use dhcp6d::wire::{AnyMessage, Encoder, MessageType, WireError, Xid};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const OTHER_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 2];
const ETH0: u32 = 2;
const PER_CLIENT: u32 = 3;

const CONFIG: &str = r#"
[server]
interfaces = ["eth0"]
rapid_commit = true
[lifetimes]
preferred = 30
valid = 60
t1 = 10
t2 = 20
[limits]
bindings_per_client = 3
max_bindings = 40
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::10-2001:db8:1:1::1f"]
pd_pools = [ { prefix = "2001:db8:100::/60", delegated_length = 62 } ]
[[subnet]]
prefix = "2001:db8:2:2::/64"
pools = ["2001:db8:2:2::100-2001:db8:2:2::107"]
"#;

fn settings() -> &'static dhcp6d::protocol::Settings {
    static S: OnceLock<dhcp6d::protocol::Settings> = OnceLock::new();
    S.get_or_init(|| {
        Config::from_toml(CONFIG, Path::new("fuzz.toml"))
            .expect("the fuzz config is valid")
            .settings()
    })
}

fn new_server() -> Server {
    Server::new(settings(), SERVER_DUID.to_vec(), &[("eth0".into(), ETH0)]).unwrap()
}

/// One input byte at a time (`arbitrary` reads zeros once the input runs out).
trait Byte {
    fn u8(&mut self) -> u8;
}

impl Byte for Unstructured<'_> {
    fn u8(&mut self) -> u8 {
        self.arbitrary().unwrap_or(0)
    }
}

const TYPES: [MessageType; 8] = [
    MessageType::Solicit,
    MessageType::Request,
    MessageType::Renew,
    MessageType::Rebind,
    MessageType::Release,
    MessageType::Decline,
    MessageType::Confirm,
    MessageType::InformationRequest,
];

/// An address or prefix near the pools (inside, just outside, other subnet).
fn lease_addr(b: u8) -> (Ipv6Addr, u8) {
    let low = u16::from(b & 0x1f);
    match b >> 5 {
        0..=3 => (Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x10 + low), 128),
        4 => (
            Ipv6Addr::new(0x2001, 0xdb8, 2, 2, 0, 0, 0, 0x100 + low),
            128,
        ),
        5 | 6 => (Ipv6Addr::new(0x2001, 0xdb8, 0x100, low * 4, 0, 0, 0, 0), 62),
        _ => (Ipv6Addr::new(0x2001, 0xdb8, 9, 9, 0, 0, 0, low), 128),
    }
}

/// One client message from the input; `None` when the encoder refuses it.
fn message(inp: &mut Unstructured<'_>, buf: &mut [u8]) -> Result<usize, WireError> {
    let flags = inp.u8();
    let t = TYPES[usize::from(flags % 8)];
    let mut e = Encoder::new(buf);
    e.message_header(t, Xid::new(u32::from(inp.u8())))?;
    if flags & 0x08 == 0 {
        let client = inp.u8() % 12;
        e.client_id(&[0, 3, 0, 1, 2, 0xaa, 0xbb, 0xcc, 0xdd, client])?;
    }
    match (flags >> 4) & 3 {
        1 => e.server_id(SERVER_DUID)?,
        2 => e.server_id(OTHER_DUID)?,
        _ => {}
    }
    if flags & 0x40 != 0 {
        e.rapid_commit()?;
    }
    let ias = inp.u8() % 6;
    for _ in 0..ias {
        let spec = inp.u8();
        let iaid = u32::from(spec & 7);
        let listed = (spec >> 3) & 3;
        let pd = spec & 0x80 != 0;
        let m = if pd {
            e.begin_ia_pd(iaid, 0, 0)?
        } else {
            e.begin_ia_na(iaid, 0, 0)?
        };
        for _ in 0..listed {
            let (a, len) = lease_addr(inp.u8());
            if pd {
                e.ia_prefix(0, 0, len, a)?;
            } else {
                e.ia_addr(a, 0, 0)?;
            }
        }
        e.end_option(m)?;
    }
    e.finish()
}

/// Wrap `inner` in one Relay-forw from a relay on the second subnet's link.
fn relayed(inner: &[u8], buf: &mut [u8]) -> Result<usize, WireError> {
    let mut e = Encoder::new(buf);
    e.relay_header(
        MessageType::RelayForw,
        0,
        "2001:db8:2:2::1".parse().unwrap(),
        "fe80::99".parse().unwrap(),
    )?;
    e.interface_id(b"port-7")?;
    let m = e.begin_relay_msg()?;
    e.put_slice(inner)?;
    e.end_option(m)?;
    e.finish()
}

type Row = (u8, u128, u8, Vec<u8>, u32, u8, u64, u64);

fn rows(s: &Server) -> BTreeSet<Row> {
    let mut out = BTreeSet::new();
    s.for_each_binding(|r: &LeaseRecord| {
        out.insert((
            r.kind as u8,
            u128::from(r.addr),
            r.prefix_len,
            r.duid().to_vec(),
            r.iaid,
            r.op as u8,
            r.preferred_until,
            r.valid_until,
        ));
    });
    out
}

fn check(live: &Server, replayed: &Server, now: u64) {
    let l = rows(live);
    let mut seen = BTreeSet::new();
    let mut per_client: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    for (_, addr, _, duid, _, op, _, valid) in &l {
        assert!(seen.insert(*addr), "{addr:x} is bound twice");
        if *op == LeaseOp::Commit as u8 && *valid > now {
            *per_client.entry(duid.clone()).or_default() += 1;
        }
    }
    for (duid, n) in per_client {
        assert!(n <= PER_CLIENT, "{duid:02x?} holds {n}");
    }
    let r = rows(replayed);
    assert_eq!(l, r, "the journal's records do not rebuild the live table");
}

fuzz_target!(|data: &[u8]| {
    let live = new_server();
    let replayed = new_server();
    let mut inp = Unstructured::new(data);
    let mut now = 1_700_000_000u64;
    let mut msg = vec![0u8; 1500];
    let mut wrapped = vec![0u8; 1600];
    let mut out = vec![0u8; 4096];
    let mut changes = LeaseChanges::default();
    let mut steps = 0;
    while !inp.is_empty() && steps < 64 {
        steps += 1;
        let op = inp.u8();
        now += u64::from(op & 0x1f);
        if op & 0xe0 == 0xe0 {
            let mut expired = Vec::new();
            live.sweep(Timestamp(now), &mut expired);
            for r in &expired {
                replayed.apply(r);
            }
            check(&live, &replayed, now);
            continue;
        }
        let Ok(n) = message(&mut inp, &mut msg) else {
            continue;
        };
        let relay = op & 0x20 != 0;
        let (payload, ingress) = if relay {
            let Ok(m) = relayed(&msg[..n], &mut wrapped) else {
                continue;
            };
            (
                &wrapped[..m],
                Ingress {
                    ifindex: ETH0,
                    src: "2001:db8:2:2::1".parse().unwrap(),
                    src_port: 547,
                    dst_multicast: false,
                },
            )
        } else {
            (
                &msg[..n],
                Ingress {
                    ifindex: ETH0,
                    src: "fe80::1".parse().unwrap(),
                    src_port: 546,
                    dst_multicast: op & 0x40 == 0,
                },
            )
        };
        let h = live.handle(&ingress, payload, Timestamp(now), &mut out, &mut changes);
        match h.result {
            Ok(reply) => {
                let bytes = &out[..reply.len];
                assert!(
                    AnyMessage::decode(bytes).is_ok(),
                    "our reply does not decode"
                );
                assert_eq!(reply.port, if relay { 547 } else { 546 });
                assert_eq!(reply.needs_durable, !changes.is_empty());
                for r in changes.iter() {
                    replayed.apply(r);
                }
            }
            Err(_) => assert!(changes.is_empty(), "a dropped message changed leases"),
        }
        check(&live, &replayed, now);
    }
});
