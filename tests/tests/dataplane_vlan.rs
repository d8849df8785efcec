//! VLAN (802.1Q) and QinQ (802.1ad) subscriber tags through the AF_XDP path:
//! the reply must carry the request's tags so it goes back down the same
//! subscriber VLAN. This kernel has no 8021q module, so the client side
//! speaks raw Ethernet through an AF_PACKET socket on its veth end and checks
//! the reply frame itself (tags, MACs, IPv6/UDP headers, UDP checksum).
mod dataplane_common;

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::frame::{build_udp6_frame, parse_request, udp6_checksum};
use dhcp6d::dataplane::netif::NetIf;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, DataplaneConfig};

struct RawSocket(i32);

impl RawSocket {
    fn open(ifindex: u32) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket/bind/setsockopt calls with valid arguments.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind AF_PACKET");
            // The receiving kernel moves the outer tag into metadata before
            // packet taps see the frame; PACKET_AUXDATA hands it back.
            let one: i32 = 1;
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&one as *const i32).cast(),
                4,
            );
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            RawSocket(fd)
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: valid buffer.
        let n = unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "raw send");
    }

    /// Next received frame (outer tag put back in place) that passes `keep`, within 3 s.
    fn recv_matching(&self, keep: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = vec![0u8; 9216];
        while Instant::now() < deadline {
            let mut ctrl = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: msghdr over live buffers; cmsg walk within controllen.
            let (n, tag) = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = ctrl.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&ctrl);
                let n = libc::recvmsg(self.0, &mut msg, 0);
                let mut tag = None;
                let mut cm = libc::CMSG_FIRSTHDR(&msg);
                while !cm.is_null() {
                    if (*cm).cmsg_level == libc::SOL_PACKET
                        && (*cm).cmsg_type == libc::PACKET_AUXDATA
                    {
                        let aux: AuxData = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast());
                        if aux.status & TP_STATUS_VLAN_VALID != 0 {
                            let tpid = if aux.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                                aux.vlan_tpid
                            } else {
                                0x8100
                            };
                            tag = Some((tpid, aux.vlan_tci));
                        }
                    }
                    cm = libc::CMSG_NXTHDR(&msg, cm);
                }
                (n, tag)
            };
            if n <= 0 {
                continue;
            }
            let mut frame = buf[..n as usize].to_vec();
            if let Some((tpid, tci)) = tag {
                let mut t = tpid.to_be_bytes().to_vec();
                t.extend_from_slice(&tci.to_be_bytes());
                frame.splice(12..12, t);
            }
            if keep(&frame) {
                return Some(frame);
            }
        }
        None
    }
}

const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata`.
#[repr(C)]
#[derive(Clone, Copy)]
struct AuxData {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: our fd.
        unsafe { libc::close(self.0) };
    }
}

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
