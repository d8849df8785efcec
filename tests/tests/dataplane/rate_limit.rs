//! `limits.messages_per_second_per_source` through the real workers (socket
//! and AF_XDP) with the real core as handler: a flood of Solicits with fresh
//! DUIDs from one link-local source is held to its rate and counted as
//! `rate_limited` by the worker, a client at another address is answered
//! during the flood, and a policy installed mid-run (what SIGHUP does) lifts
//! the limit for the workers' next messages.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

use crate::dataplane_common::*;
use dhcp6d::config::{Config, IoMode};
use dhcp6d::dataplane::frame::build_udp6_frame;
use dhcp6d::dataplane::netif::NetIf;
use dhcp6d::dataplane::testing::ManualDurability;
use dhcp6d::dataplane::{start, DataplaneConfig};
use dhcp6d::protocol::server::Policy;
use dhcp6d::protocol::{DropReason, Server};
use dhcp6d::stats::WorkerCounters;
use dhcp6d::wire::{Encoder, MessageType, Xid};

const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x01];
const RATE: u64 = 5;
const FLOOD: u64 = 300;

fn config(limits: &str) -> Config {
    let text = format!(
        r#"
[server]
interfaces = ["{SERVER_IF}"]
[[subnet]]
prefix = "2001:db8:1::/64"
interface = "{SERVER_IF}"
pools = ["2001:db8:1::100-2001:db8:1::1ff"]
{limits}
"#
    );
    Config::from_toml(&text, std::path::Path::new("rate_limit.toml")).expect("valid config")
}

fn solicit(n: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Solicit, Xid::new(n & 0xff_ffff))
        .unwrap();
    let mut duid = vec![0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x02, 0x11];
    duid.extend_from_slice(&n.to_be_bytes());
    enc.client_id(&duid).unwrap();
    enc.elapsed_time(0).unwrap();
    let m = enc.begin_ia_na(1, 0, 0).unwrap();
    enc.end_option(m).unwrap();
    let len = enc.finish().unwrap();
    buf.truncate(len);
    buf
}

fn total(counters: &[Arc<WorkerCounters>], f: impl Fn(&WorkerCounters) -> u64) -> u64 {
    counters.iter().map(|c| f(c)).sum()
}

fn flood_from_one_source_is_limited(mode: IoMode) {
    let lab = Lab::new();
    let (dp, server, srv_index) = lab.server.run(|| {
        let srv_index = ifindex(SERVER_IF);
        let server = Arc::new(
            Server::new(
                &config(&format!(
                    "[limits]\nmessages_per_second_per_source = {RATE}"
                ))
                .settings(),
                SERVER_DUID.to_vec(),
                &[(SERVER_IF.into(), srv_index)],
            )
            .unwrap(),
        );
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], mode);
        cfg.pin_workers = false;
        let dp = start(
            &cfg,
            server.clone(),
            Arc::new(ManualDurability::immediate()),
        )
        .expect("start data plane");
        (dp, server, srv_index)
    });
    let counters = dp.worker_counters();
    let solicits = || total(&counters, |c| c.received_count(MessageType::Solicit));
    let limited = || total(&counters, |c| c.dropped_count(DropReason::RateLimited));
    let advertised = || total(&counters, |c| c.sent_count(MessageType::Advertise));
    let mut next = 0u32;
    lab.client.run(|| {
        let me = NetIf::lookup(CLIENT_IF).unwrap();
        let raw = RawSocket::open(me.index);
        // The flooding source: a link-local of its own, a new DUID each time.
        let mut flood = |count: u64| {
            let mut frame = vec![0u8; 600];
            for _ in 0..count {
                next += 1;
                let n = build_udp6_frame(
                    &mut frame,
                    [0x33, 0x33, 0, 1, 0, 2],
                    me.mac,
                    &[],
                    "fe80::bad".parse().unwrap(),
                    "ff02::1:2".parse::<Ipv6Addr>().unwrap(),
                    546,
                    547,
                    &solicit(next),
                );
                raw.send(&frame[..n]);
            }
        };
        let started = Instant::now();
        flood(FLOOD);
        eventually("the flood received", || solicits() == FLOOD);
        let secs = started.elapsed().as_secs() + 1;
        let admitted = FLOOD - limited();
        // Burst 2 s of tokens, then RATE per second boundary crossed.
        assert!(
            (2 * RATE..=2 * RATE + RATE * secs).contains(&admitted),
            "{admitted} of {FLOOD} admitted over {secs} s boundaries"
        );
        eventually("every admitted Solicit advertised", || {
            advertised() == admitted
        });

        // A client at its own address is answered while the flooder is held.
        let s = client_socket();
        let before = limited();
        flood(50);
        send_multicast(&s, CLIENT_IF, &solicit(1));
        let (reply, _) = recv(&s).expect("the other client got no Advertise");
        assert_eq!(reply[0], 2, "an Advertise");
        eventually("flood and client received", || solicits() == FLOOD + 51);
        // At most a full bucket's worth of the 50 got through.
        assert!(
            limited() - before >= 50 - 2 * RATE,
            "the flooder still held"
        );

        // A reload without the key: the workers' next messages are not limited.
        server
            .install(
                Policy::new(
                    &config("").settings(),
                    SERVER_DUID.to_vec(),
                    &[(SERVER_IF.into(), srv_index)],
                )
                .unwrap(),
            )
            .unwrap();
        let before = limited();
        flood(100);
        eventually("the second flood received", || solicits() == FLOOD + 151);
        assert_eq!(limited(), before, "nothing limited after the reload");
    });
    dp.stop();
}

#[test]
fn socket_workers_hold_a_flooding_source_to_its_rate() {
    flood_from_one_source_is_limited(IoMode::Socket);
}

#[test]
fn afxdp_workers_hold_a_flooding_source_to_its_rate() {
    flood_from_one_source_is_limited(IoMode::Xdp);
}
