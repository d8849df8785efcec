//! XDP + AF_XDP mode end to end in network namespaces: the XDP program
//! steers a DHCPv6 message from the client namespace into a worker, the
//! worker's reply frame (built in place in the UMEM) reaches an ordinary UDP
//! socket in the client namespace, which means the kernel accepted its
//! IPv6/UDP headers and checksum. RFC 9915 §7.1/§7.2 addresses and ports.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, Dataplane, DataplaneConfig};
use dhcp6d::wire::MessageType;

fn serve(lab: &Lab, ifaces: &[&str], durability: Arc<ManualDurability>) -> Dataplane {
    lab.server.run(|| {
        let mut cfg =
            DataplaneConfig::new(ifaces.iter().map(|s| s.to_string()).collect(), IoMode::Xdp);
        cfg.pin_workers = false;
        start(&cfg, Arc::new(EchoHandler), durability).expect("start XDP data plane")
    })
}

fn sum(dp: &Dataplane, f: impl Fn(&dhcp6d::stats::WorkerCounters) -> u64) -> u64 {
    dp.worker_counters().iter().map(|c| f(c)).sum()
}

#[test]
fn rfc9915_7_multicast_solicit_is_redirected_and_answered_to_port_546() {
    let lab = Lab::new();
    let dp = serve(&lab, &[SERVER_IF], Arc::new(ManualDurability::immediate()));
    let (reply, from) = lab.client.run(|| {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &[1, 0xab, 0xcd, 0xef, 0, 8, 0, 0]);
        recv(&s).expect("no reply from the AF_XDP data plane")
    });
    assert_eq!(reply, [2, 0xab, 0xcd, 0xef, 0, 8, 0, 0]);
    let SocketAddr::V6(from) = from else {
        panic!("v4 source {from}")
    };
    assert_eq!(from.port(), 547);
    assert_eq!(
        from.ip().segments()[0],
        0xfe80,
        "direct clients get a link-local source"
    );
    eventually("tx_advertise == 1", || {
        sum(&dp, |c| c.sent_count(MessageType::Advertise)) == 1
    });
    assert_eq!(sum(&dp, |c| c.received_count(MessageType::Solicit)), 1);
    let xdp = dp.xdp_counters().expect("xdp counters in xdp mode");
    assert_eq!(xdp.redirected, 1, "{xdp:?}");
    assert_eq!(xdp.malformed, 0, "{xdp:?}");
    // Not ours (neighbour discovery, UDP to another port) still reaches the
    // kernel while we are attached: the client must resolve our MAC first.
    let other = lab.server.run(|| UdpSocket::bind("[::]:9999").unwrap());
    other
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    lab.client.run(|| {
        let s = UdpSocket::bind("[::]:0").unwrap();
        s.send_to(b"hi", format!("[{SERVER_GLOBAL}]:9999")).unwrap();
    });
    let mut buf = [0u8; 16];
    let (n, _) = other
        .recv_from(&mut buf)
        .expect("non-DHCP UDP did not reach the kernel");
    assert_eq!(&buf[..n], b"hi");
    let after = dp.xdp_counters().unwrap();
    assert!(after.passed >= 2 && after.redirected == 1, "{after:?}");
    dp.stop();
    // Detached on stop: the kernel path answers nothing now, and no program is left.
    let link = lab.server.exec(&["ip", "link", "show", SERVER_IF]);
    assert!(!link.contains("xdp"), "XDP program left attached: {link}");
}

#[test]
fn rfc9915_19_relay_unicast_is_answered_to_port_547_from_global() {
    let lab = Lab::new();
    let dp = serve(&lab, &[SERVER_IF], Arc::new(ManualDurability::immediate()));
    let (reply, from) = lab.client.run(|| {
        let relay = UdpSocket::bind(format!("[{CLIENT_GLOBAL}]:547")).expect("bind relay");
        relay
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let server: Ipv6Addr = SERVER_GLOBAL.parse().unwrap();
        relay
            .send_to(&[12, 0, 1, 2, 3], SocketAddrV6::new(server, 547, 0, 0))
            .unwrap();
        recv(&relay).expect("no reply to the relay")
    });
    assert_eq!(reply[0], 2);
    assert_eq!(from.to_string(), format!("[{SERVER_GLOBAL}]:547"));
    dp.stop();
}

#[test]
fn reply_needing_durability_is_held_in_umem_until_the_journal_syncs() {
    let lab = Lab::new();
    let journal = Arc::new(ManualDurability::default());
    let dp = serve(&lab, &[SERVER_IF], journal.clone());
    lab.client.run(|| {
        let s = client_socket();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        send_multicast(&s, CLIENT_IF, &[3, 1, 2, 3]);
        assert!(
            recv(&s).is_none(),
            "reply left before its lease was durable"
        );
        journal.sync();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let (reply, _) = recv(&s).expect("reply never released after sync");
        assert_eq!(reply, [2, 1, 2, 3]);
    });
    dp.stop();
}

#[test]
fn two_rx_queues_get_a_worker_each_and_both_answer() {
    let lab = Lab::with_queues(2);
    let dp = serve(&lab, &[SERVER_IF], Arc::new(ManualDurability::immediate()));
    assert_eq!(dp.workers(), 2, "one AF_XDP worker per RX queue");
    const FLOWS: u8 = 16;
    let replies = lab.client.run(|| {
        let rx = client_socket();
        // Distinct source ports hash to different TX queues of cli0, which
        // veth maps to the same-numbered RX queue of srv0.
        for i in 0..FLOWS {
            let tx = UdpSocket::bind("[::]:0").unwrap();
            send_multicast(&tx, CLIENT_IF, &[1, i, 0, 0]);
        }
        let mut seen = Vec::new();
        for _ in 0..FLOWS {
            let (reply, _) = recv(&rx).expect("a flow got no reply");
            seen.push(reply[1]);
        }
        seen.sort_unstable();
        seen
    });
    assert_eq!(replies, (0..FLOWS).collect::<Vec<_>>());
    let per_worker: Vec<u64> = dp
        .worker_counters()
        .iter()
        .map(|c| c.received_count(MessageType::Solicit))
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), u64::from(FLOWS));
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "both queues served traffic: {per_worker:?}"
    );
    dp.stop();
}

/// Hardening item 3: on a promiscuous interface (a bridge port, a router)
/// DHCPv6 unicast for another host reaches the XDP program; it must go on
/// to the kernel, not be answered (from the foreign address) by us.
#[test]
fn unicast_solicit_for_another_host_is_not_answered_on_a_promiscuous_port() {
    let lab = Lab::new();
    lab.server
        .exec(&["ip", "link", "set", "dev", SERVER_IF, "promisc", "on"]);
    let dp = serve(&lab, &[SERVER_IF], Arc::new(ManualDurability::immediate()));
    let server_mac = lab.server.run(|| {
        dhcp6d::dataplane::netif::NetIf::lookup(SERVER_IF)
            .unwrap()
            .mac
    });
    let solicit = [1u8, 0xab, 0xcd, 0xef, 0, 8, 0, 0];
    let foreign_ip: Ipv6Addr = "2001:db8:1::99".parse().unwrap();
    let client_ip: Ipv6Addr = CLIENT_GLOBAL.parse().unwrap();
    let is_reply = |f: &[u8]| f.len() > 62 && f[12..14] == [0x86, 0xdd] && f[54..56] == [2, 0x23];
    let answered = lab.client.run(|| {
        let raw = RawSocket::open(ifindex(CLIENT_IF));
        for dst_mac in [[2, 0xde, 0xad, 0xbe, 0xef, 1], server_mac] {
            let mut buf = vec![0u8; 256];
            let n = dhcp6d::dataplane::frame::build_udp6_frame(
                &mut buf,
                dst_mac,
                [2, 0, 0, 0, 0, 2],
                &[],
                client_ip,
                foreign_ip,
                546,
                547,
                &solicit,
            );
            raw.send(&buf[..n]);
        }
        raw.recv_matching(is_reply)
    });
    assert!(
        answered.is_none(),
        "answered a Solicit for another host: {answered:?}"
    );
    let xdp = dp.xdp_counters().unwrap();
    assert_eq!((xdp.not_ours, xdp.redirected), (2, 0), "{xdp:?}");
    // The same port still serves what is addressed to us.
    let (reply, _) = lab.client.run(|| {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &solicit);
        recv(&s).expect("multicast Solicit not answered")
    });
    assert_eq!(reply, [2, 0xab, 0xcd, 0xef, 0, 8, 0, 0]);
    assert_eq!(dp.xdp_counters().unwrap().redirected, 1);
    dp.stop();
}
