//! Bad input on the AF_XDP path: malformed frames that the XDP program
//! steers to us (headers present, lengths wrong) and messages the handler
//! rejects are each counted by reason, and their UMEM frames go back to the
//! fill ring. More bad frames are sent than the UMEM holds (2048 frames), so
//! a single leaked frame per drop would starve the queue and the final
//! Solicit would go unanswered.

use std::net::Ipv6Addr;
use std::sync::Arc;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::frame::build_udp6_frame;
use dhcp6d::dataplane::netif::NetIf;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, DataplaneConfig};
use dhcp6d::protocol::DropReason;
use dhcp6d::wire::MessageType;

const ROUNDS: u64 = 30;
const PER_ROUND: u64 = 100;

#[test]
fn bad_frames_are_counted_by_reason_and_leak_no_umem_frame() {
    let lab = Lab::new();
    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Xdp);
        cfg.pin_workers = false;
        start(
            &cfg,
            Arc::new(EchoHandler),
            Arc::new(ManualDurability::immediate()),
        )
        .unwrap()
    });
    let counters = dp.worker_counters();
    let malformed = || -> u64 {
        counters
            .iter()
            .map(|c| c.dropped_count(DropReason::Malformed))
            .sum()
    };
    lab.client.run(|| {
        let me = NetIf::lookup(CLIENT_IF).unwrap();
        let raw = RawSocket::open(me.index);
        let mut frame = vec![0u8; 256];
        let mk = |frame: &mut Vec<u8>, payload: &[u8]| {
            let n = build_udp6_frame(
                frame,
                [0x33, 0x33, 0, 1, 0, 2],
                me.mac,
                &[],
                me.link_local.unwrap(),
                "ff02::1:2".parse::<Ipv6Addr>().unwrap(),
                546,
                547,
                payload,
            );
            frame[..n].to_vec()
        };
        // UDP length pointing past the end of the datagram (frame-level drop).
        let mut long_udp = mk(&mut frame, &[1, 2, 3, 4]);
        long_udp[58..60].copy_from_slice(&1000u16.to_be_bytes());
        // A well-formed datagram with an empty DHCPv6 message (handler drop).
        let empty = mk(&mut frame, &[]);
        let mut sent = 0;
        for round in 0..ROUNDS {
            let bad = if round % 2 == 0 { &long_udp } else { &empty };
            for _ in 0..PER_ROUND {
                raw.send(bad);
            }
            sent += PER_ROUND;
            // Closed loop: the worker has taken this round before the next.
            eventually(&format!("{sent} malformed counted"), || malformed() == sent);
        }
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &[1, 5, 5, 5]);
        let (reply, _) = recv(&s).expect("no reply after many bad frames: leaked UMEM frames?");
        assert_eq!(reply, [2, 5, 5, 5]);
    });
    assert_eq!(malformed(), ROUNDS * PER_ROUND);
    let sent_ok: u64 = counters
        .iter()
        .map(|c| c.sent_count(MessageType::Advertise))
        .sum();
    assert!(sent_ok <= 1);
    dp.stop();
}
