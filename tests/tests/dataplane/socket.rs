//! Socket mode (`io = "socket"`) end to end in network namespaces: a DHCPv6
//! message from an ordinary UDP socket in the client namespace reaches a
//! worker, and the reply comes back to an ordinary UDP socket (so the kernel
//! checked its checksum). RFC 9915 §7.1/§7.2: clients send to
//! All_DHCP_Relay_Agents_and_Servers (ff02::1:2) port 547, servers answer on
//! port 546 (relay agents on 547).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, Dataplane, DataplaneConfig};
use dhcp6d::protocol::DropReason;
use dhcp6d::wire::MessageType;

fn serve(lab: &Lab, durability: Arc<ManualDurability>) -> Dataplane {
    lab.server.run(|| {
        let cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Socket);
        start(&cfg, Arc::new(EchoHandler), durability).expect("start socket data plane")
    })
}

#[test]
fn rfc9915_7_multicast_solicit_is_answered_from_link_local_to_port_546() {
    let lab = Lab::new();
    let dp = serve(&lab, Arc::new(ManualDurability::immediate()));
    let (reply, from) = lab.client.run(|| {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &[1, 0xab, 0xcd, 0xef, 0, 8, 0, 0]);
        recv(&s).expect("no reply from the socket data plane")
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
    let c = &dp.worker_counters()[0];
    assert_eq!(c.received_count(MessageType::Solicit), 1);
    eventually("tx_advertise == 1", || {
        c.sent_count(MessageType::Advertise) == 1
    });
    assert!(dp.xdp_counters().is_none());
    dp.stop();
}

#[test]
fn rfc9915_19_relay_to_server_unicast_is_answered_to_port_547_from_global() {
    let lab = Lab::new();
    let dp = serve(&lab, Arc::new(ManualDurability::immediate()));
    let (reply, from) = lab.client.run(|| {
        // A relay agent sends from its global address and port 547.
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
fn reply_needing_durability_waits_for_the_journal() {
    let lab = Lab::new();
    let journal = Arc::new(ManualDurability::default());
    let dp = serve(&lab, journal.clone());
    lab.client.run(|| {
        let s = client_socket();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        // First byte 3 = Request: EchoHandler marks its reply as needing durability.
        send_multicast(&s, CLIENT_IF, &[3, 1, 2, 3]);
        assert!(
            recv(&s).is_none(),
            "reply left before its lease was durable"
        );
        assert_eq!(journal.appended(), 1);
        journal.sync();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let (reply, _) = recv(&s).expect("reply never released after sync");
        assert_eq!(reply, [2, 1, 2, 3]);
    });
    dp.stop();
}

#[test]
fn empty_message_is_counted_as_malformed_not_answered() {
    let lab = Lab::new();
    let dp = serve(&lab, Arc::new(ManualDurability::immediate()));
    lab.client.run(|| {
        let s = client_socket();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        send_multicast(&s, CLIENT_IF, &[]);
        assert!(recv(&s).is_none());
    });
    let c = &dp.worker_counters()[0];
    assert_eq!(c.dropped_count(DropReason::Malformed), 1);
    assert_eq!(c.sent_count(MessageType::Advertise), 0);
    dp.stop();
}
