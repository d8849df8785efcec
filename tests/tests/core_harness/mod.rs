//! Shared by the RFC 9915 / RFC 6853 core tests: a configured `Server`, a
//! simulated clock, message builders (the codec's encoder) and reply readers.
#![allow(dead_code)] // rfc9915, rfc6853, core, load and dhcp-user's cli use different subsets

use std::net::Ipv6Addr;

use dhcp6d::config::Config;
use dhcp6d::protocol::{Handled, Handler, Ingress, LeaseChanges, Server, Timestamp, WorkerLocal};
use dhcp6d::wire::{AnyMessage, Encoder, Message, MessageType, WireError, Xid};

pub const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x01];
pub const OTHER_SERVER_DUID: &[u8] = &[0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x02];
pub const ETH0: u32 = 2;
pub const T0: u64 = 1_700_000_000;

/// Identical-prefix model, one direct subnet on eth0 and one relayed subnet.
pub const BASE: &str = r#"
[server]
interfaces = ["eth0"]
preference = 200
[redundancy]
model = "identical-prefix"
allocation_key = "00112233445566778899aabbccddeeff"
[lifetimes]
preferred = 3000
valid = 4000
t1 = 1000
t2 = 2000
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/65"]
pd_pools = [ { prefix = "2001:db8:100::/40", delegated_length = 56 } ]
dns_servers = ["2001:db8::53"]
domain_search = ["example.net"]
[[subnet]]
prefix = "2001:db8:2:2::/64"
pools = ["2001:db8:2:2::100-2001:db8:2:2::1ff"]
t1 = 500
"#;

pub fn config(text: &str) -> Config {
    Config::from_toml(text, std::path::Path::new("core_harness.toml"))
        .expect("test config is valid")
}

pub fn server(text: &str) -> Server {
    server_with_duid(text, SERVER_DUID)
}

pub fn server_with_duid(text: &str, duid: &[u8]) -> Server {
    Server::new(
        &config(text).settings(),
        duid.to_vec(),
        &[("eth0".into(), ETH0)],
    )
    .expect("server builds")
}

pub fn client_duid(n: u32) -> Vec<u8> {
    let mut d = vec![0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x02, 0x11];
    d.extend_from_slice(&n.to_be_bytes());
    d
}

/// What a handled message produced.
pub struct Outcome {
    pub handled: Handled,
    pub bytes: Vec<u8>,
    pub changes: LeaseChanges,
}

impl Outcome {
    /// The reply, decoded by the codec; panics when there is none.
    pub fn reply(&self) -> AnyMessage<'_> {
        assert!(
            self.handled.result.is_ok(),
            "expected a reply, got {:?}",
            self.handled.result
        );
        AnyMessage::decode(&self.bytes).expect("our reply decodes")
    }

    /// The client/server reply (direct); panics on relay replies.
    pub fn message(&self) -> Message<'_> {
        match self.reply() {
            AnyMessage::Message(m) => m,
            AnyMessage::Relay(_) => panic!("expected a direct reply"),
        }
    }
}

pub fn multicast_from_client() -> Ingress {
    Ingress {
        ifindex: ETH0,
        src: "fe80::1234".parse().unwrap(),
        src_port: 546,
        dst_multicast: true,
    }
}

pub fn send(server: &Server, ingress: &Ingress, payload: &[u8], now: u64) -> Outcome {
    let mut out = vec![0u8; 4096];
    let mut changes = LeaseChanges::default();
    let handled = server.handle(ingress, payload, Timestamp(now), &mut out, &mut changes);
    let len = handled.result.map_or(0, |r| r.len);
    out.truncate(len);
    Outcome {
        handled,
        bytes: out,
        changes,
    }
}

/// [`send`] through the worker entry point, `local` kept between messages
/// as a data plane worker keeps it (the policy cache, the rate-limit buckets).
pub fn send_local(
    server: &Server,
    local: &mut WorkerLocal,
    ingress: &Ingress,
    payload: &[u8],
    now: u64,
) -> Outcome {
    let mut out = vec![0u8; 4096];
    let mut changes = LeaseChanges::default();
    let handled = server.handle_local(
        local,
        ingress,
        payload,
        Timestamp(now),
        &mut out,
        &mut changes,
    );
    let len = handled.result.map_or(0, |r| r.len);
    out.truncate(len);
    Outcome {
        handled,
        bytes: out,
        changes,
    }
}

/// Send a client message directly (multicast on eth0).
pub fn direct(server: &Server, payload: &[u8], now: u64) -> Outcome {
    send(server, &multicast_from_client(), payload, now)
}

/// Build a client message: header, then whatever `body` writes.
pub fn build(
    t: MessageType,
    xid: u32,
    body: impl FnOnce(&mut Encoder<'_>) -> Result<(), WireError>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(t, Xid::new(xid)).unwrap();
    body(&mut enc).unwrap();
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

/// An IA_NA with optional listed addresses (lifetimes 0 as clients send them).
pub fn ia_na(enc: &mut Encoder<'_>, iaid: u32, addrs: &[Ipv6Addr]) -> Result<(), WireError> {
    let m = enc.begin_ia_na(iaid, 0, 0)?;
    for a in addrs {
        enc.ia_addr(*a, 0, 0)?;
    }
    enc.end_option(m)
}

/// An IA_PD with optional listed prefixes.
pub fn ia_pd(
    enc: &mut Encoder<'_>,
    iaid: u32,
    prefixes: &[(Ipv6Addr, u8)],
) -> Result<(), WireError> {
    let m = enc.begin_ia_pd(iaid, 0, 0)?;
    for (p, l) in prefixes {
        enc.ia_prefix(0, 0, *l, *p)?;
    }
    enc.end_option(m)
}

/// A Solicit for one IA_NA (IAID 1) from client `n`.
pub fn solicit(n: u32) -> Vec<u8> {
    build(MessageType::Solicit, 0x1000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.elapsed_time(0)?;
        ia_na(e, 1, &[])
    })
}

/// A Request for one IA_NA (IAID 1), naming `server_duid`.
pub fn request(n: u32, server_duid: &[u8], addr: Option<Ipv6Addr>) -> Vec<u8> {
    build(MessageType::Request, 0x2000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(server_duid)?;
        ia_na(e, 1, addr.as_slice())
    })
}

/// The single address of the first IA_NA in a reply, with its lifetimes.
pub fn first_addr(m: &Message<'_>) -> Option<(Ipv6Addr, u32, u32)> {
    let ia = m.options.ia_nas().next()?;
    ia.addrs().next().map(|a| (a.addr, a.preferred, a.valid))
}

/// The status code inside the first IA_NA (or IA_PD when `pd`).
pub fn ia_status(m: &Message<'_>, pd: bool) -> Option<u16> {
    if pd {
        m.options
            .ia_pds()
            .next()?
            .options
            .status_code()
            .map(|s| s.code)
    } else {
        m.options
            .ia_nas()
            .next()?
            .options
            .status_code()
            .map(|s| s.code)
    }
}

/// Solicit then Request; returns the committed address.
pub fn acquire(server: &Server, n: u32, now: u64) -> Ipv6Addr {
    let adv = direct(server, &solicit(n), now);
    let (offered, _, _) = first_addr(&adv.message()).expect("an address is offered");
    let rep = direct(
        server,
        &request(n, server.server_duid(), Some(offered)),
        now,
    );
    let (got, _, valid) = first_addr(&rep.message()).expect("an address is assigned");
    assert_eq!(got, offered);
    assert!(valid > 0);
    got
}
