//! VLAN (802.1Q) and QinQ (802.1ad) subscriber tags through the AF_XDP path:
//! the reply must carry the request's tags so it goes back down the same
//! subscriber VLAN. This kernel has no 8021q module, so the client side
//! speaks raw Ethernet through an AF_PACKET socket on its veth end and checks
//! the reply frame itself (tags, MACs, IPv6/UDP headers, UDP checksum).

use std::net::Ipv6Addr;
use std::sync::Arc;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::frame::{build_udp6_frame, parse_request, udp6_checksum};
use dhcp6d::dataplane::netif::NetIf;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, DataplaneConfig};

#[test]
fn dot1q_and_qinq_tags_are_kept_in_the_reply() {
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
    let server_mac = lab.server.run(|| NetIf::lookup(SERVER_IF).unwrap().mac);
    lab.client.run(|| {
        let me = NetIf::lookup(CLIENT_IF).unwrap();
        let client_ll = me.link_local.expect("client link-local");
        let raw = RawSocket::open(me.index);
        let cases: [&[(u16, u16)]; 2] = [&[(0x8100, 100)], &[(0x88a8, 10), (0x8100, 20)]];
        for (i, tags) in cases.into_iter().enumerate() {
            let mut frame = vec![0u8; 256];
            let n = build_udp6_frame(
                &mut frame,
                [0x33, 0x33, 0, 1, 0, 2],
                me.mac,
                tags,
                client_ll,
                "ff02::1:2".parse::<Ipv6Addr>().unwrap(),
                546,
                547,
                &[1, i as u8, 0x77, 0x77],
            );
            raw.send(&frame[..n]);
            let reply = raw
                .recv_matching(|f| {
                    f[..6] == me.mac
                        && parse_request(f).is_none()
                        && f.len() > 12 + 4 * tags.len() + 48
                })
                .unwrap_or_else(|| panic!("no reply for tags {tags:?}"));
            // Tags exactly as sent, MACs reflected.
            let mut off = 12;
            for (tpid, tci) in tags {
                assert_eq!(reply[off..off + 2], tpid.to_be_bytes(), "tags {tags:?}");
                assert_eq!(reply[off + 2..off + 4], tci.to_be_bytes(), "tags {tags:?}");
                off += 4;
            }
            assert_eq!(reply[6..12], server_mac);
            assert_eq!(reply[off..off + 2], [0x86, 0xdd]);
            let ip = &reply[off + 2..];
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            assert_eq!(dst, client_ll);
            let udp = &ip[40..40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))];
            assert_eq!(udp[0..4], [2, 0x23, 2, 0x22], "547 -> 546");
            assert_eq!(&udp[8..], &[2, i as u8, 0x77, 0x77]);
            assert_eq!(
                udp6_checksum(src, dst, udp),
                0xffff,
                "UDP checksum verifies"
            );
        }
    });
    assert_eq!(dp.xdp_counters().unwrap().redirected, 2);
    dp.stop();
}
