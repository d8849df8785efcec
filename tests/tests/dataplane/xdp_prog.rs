//! The XDP program itself, run by the kernel on hand-made frames with
//! BPF_PROG_TEST_RUN (no interface needed): what it redirects, what it
//! passes, what it counts. It must never drop: everything that is not
//! DHCPv6-to-server (RFC 9915 §7.2: UDP port 547), and everything when no
//! socket is bound, is XDP_PASS.

use std::net::Ipv6Addr;

use crate::dataplane_common::*;
use dhcp6d::dataplane::afxdp::XskIo;
use dhcp6d::dataplane::frame::build_udp6_frame;
use dhcp6d::dataplane::netif::NetIf;
use dhcp6d::dataplane::testing::XdpLogLines;
use dhcp6d::dataplane::xdp::{LoadedXdp, XdpTotals};
use dhcp6d::dataplane::xdp_log::{self, XdpLogReader};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const BPF_PROG_TEST_RUN: libc::c_long = 10;

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct xdp_md`, the context BPF_PROG_TEST_RUN may be given.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

/// Run the program once on `frame`; returns its action and the counter deltas.
fn run(prog: &mut LoadedXdp, frame: &[u8]) -> (u32, XdpTotals) {
    run_on(prog, frame, None)
}

/// [`run`], as if `frame` arrived on `(ifindex, rx queue)` (an interface
/// of the calling thread's namespace with that many queues).
fn run_on(prog: &mut LoadedXdp, frame: &[u8], queue: Option<(u32, u32)>) -> (u32, XdpTotals) {
    let before = prog.totals();
    let mut ctx = XdpMd {
        data_end: frame.len() as u32,
        ..Default::default()
    };
    let mut attr = TestRunAttr {
        prog_fd: prog.program_fd() as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    if let Some((ifindex, rx_queue)) = queue {
        ctx.ingress_ifindex = ifindex;
        ctx.rx_queue_index = rx_queue;
        attr.ctx_size_in = std::mem::size_of::<XdpMd>() as u32;
        attr.ctx_in = &ctx as *const XdpMd as u64;
    }
    // SAFETY: bpf(BPF_PROG_TEST_RUN) with a correctly laid out attr whose
    // data_in points at `frame` for its length and ctx_in (if set) at
    // `ctx`, both alive for the call; no output buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN on {} bytes: {}",
        frame.len(),
        std::io::Error::last_os_error()
    );
    let after = prog.totals();
    let delta = XdpTotals {
        seen: after.seen - before.seen,
        redirected: after.redirected - before.redirected,
        passed: after.passed - before.passed,
        malformed: after.malformed - before.malformed,
        no_socket: after.no_socket - before.no_socket,
        not_ours: after.not_ours - before.not_ours,
        beyond_queue_limit: after.beyond_queue_limit - before.beyond_queue_limit,
    };
    assert_eq!(delta.seen, 1, "every run is seen once");
    (attr.retval, delta)
}

fn dhcp_frame(vlans: &[(u16, u16)], dport: u16, payload_len: usize) -> Vec<u8> {
    frame_to(
        [0x33, 0x33, 0, 1, 0, 2],
        "ff02::1:2",
        vlans,
        dport,
        payload_len,
    )
}

fn frame_to(
    dst_mac: [u8; 6],
    dst_ip: &str,
    vlans: &[(u16, u16)],
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let mut buf = vec![0u8; 128 + payload_len];
    let payload = vec![1u8; payload_len];
    let n = build_udp6_frame(
        &mut buf,
        dst_mac,
        [2, 0, 0, 0, 0, 1],
        vlans,
        "fe80::1".parse::<Ipv6Addr>().unwrap(),
        dst_ip.parse::<Ipv6Addr>().unwrap(),
        546,
        dport,
        &payload,
    );
    buf.truncate(n);
    buf
}

/// Insert extension headers `(code, length)` between the IPv6 and UDP headers
/// of an untagged frame.
fn with_ext_headers(mut f: Vec<u8>, ext: &[(u8, usize)]) -> Vec<u8> {
    let udp = f.split_off(54);
    let mut next = f[20];
    f[20] = ext[0].0;
    for (i, &(_, len)) in ext.iter().enumerate() {
        let mut h = vec![0u8; len];
        h[0] = ext.get(i + 1).map_or(17, |e| e.0);
        h[1] = (len / 8 - 1) as u8;
        f.extend_from_slice(&h);
        next = h[0];
    }
    assert_eq!(next, 17);
    f.extend_from_slice(&udp);
    let plen = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f
}

fn loaded() -> LoadedXdp {
    LoadedXdp::load().expect("load the embedded XDP program (built by dhcp-user/build.rs)")
}

#[test]
fn no_socket_debug_log_reaches_user_space_only_when_enabled() {
    // Debug on: the rare-path record (a DHCPv6 frame for a queue with no
    // socket) comes through aya-log's reader, with the queue id.
    let lines = XdpLogLines::default();
    let mut prog =
        LoadedXdp::load_with_log(xdp_log::LEVEL_DEBUG, lines.clone()).expect("load with debug log");
    let (action, _) = run(&mut prog, &dhcp_frame(&[], 547, 40));
    assert_eq!(action, XDP_PASS);
    eventually("the XDP log record", || {
        lines.lines().iter().any(|l| {
            l.starts_with("DEBUG") && l.contains("no socket bound") && l.contains("queue 0")
        })
    });
    // Off (the default without debug tracing): the program writes nothing,
    // so a reader started on it later finds an empty ring.
    let mut quiet = LoadedXdp::load_with_log(xdp_log::LEVEL_OFF, XdpLogLines::default())
        .expect("load with log off");
    for _ in 0..100 {
        run(&mut quiet, &dhcp_frame(&[], 547, 40));
    }
    let id = quiet.program_id();
    let late = XdpLogLines::default();
    let reader = XdpLogReader::start(id, late.clone()).expect("reader on the quiet program");
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(reader);
    assert_eq!(late.lines(), Vec::<String>::new(), "log off: no records");
}

#[test]
fn dhcpv6_to_server_with_no_socket_is_passed_and_counted() {
    let mut prog = loaded();
    for vlans in [
        &[][..],
        &[(0x8100, 100)][..],
        &[(0x88a8, 10), (0x8100, 20)][..],
    ] {
        let (action, d) = run(&mut prog, &dhcp_frame(vlans, 547, 40));
        assert_eq!(action, XDP_PASS, "vlans {vlans:?}");
        assert_eq!(
            (d.no_socket, d.passed, d.malformed, d.redirected),
            (1, 1, 0, 0),
            "vlans {vlans:?}"
        );
    }
}

/// Issue 13 item 4: an RX queue at or beyond MAX_QUEUES (64) has no XskMap
/// slot. Its DHCPv6 is passed to the kernel (where the fallback listener
/// answers) and counted as `beyond_queue_limit`, apart from `no_socket` (a
/// slot that exists but is empty: a worker restarting). Before, both were
/// `no_socket`, and an operator could not tell a restart from a NIC with
/// more queues than the map.
#[test]
fn a_queue_beyond_the_xskmap_is_passed_and_counted_apart() {
    let lab = Lab::with_queues(80);
    lab.server.run(|| {
        let mut prog = loaded();
        let index = ifindex(SERVER_IF);
        for queue in [64, 70, 79] {
            let (action, d) = run_on(&mut prog, &dhcp_frame(&[], 547, 40), Some((index, queue)));
            assert_eq!(action, XDP_PASS, "queue {queue}");
            assert_eq!(
                (d.beyond_queue_limit, d.no_socket, d.passed, d.redirected),
                (1, 0, 1, 0),
                "queue {queue}"
            );
        }
        // Inside the map, an empty slot is a missing worker, as before.
        let (action, d) = run_on(&mut prog, &dhcp_frame(&[], 547, 40), Some((index, 63)));
        assert_eq!(
            (action, d.beyond_queue_limit, d.no_socket, d.passed),
            (XDP_PASS, 0, 1, 1)
        );
        // Not DHCPv6 to a server: passed as ever, neither reason counted.
        let (action, d) = run_on(&mut prog, &dhcp_frame(&[], 546, 40), Some((index, 70)));
        assert_eq!(
            (action, d.beyond_queue_limit, d.no_socket, d.passed),
            (XDP_PASS, 0, 0, 1)
        );
    });
}

#[test]
fn rfc8200_extension_headers_are_walked_to_udp_547() {
    let mut prog = loaded();
    let f = with_ext_headers(
        dhcp_frame(&[], 547, 20),
        &[(0, 8), (60, 16), (43, 24), (60, 8)],
    );
    let (action, d) = run(&mut prog, &f);
    assert_eq!((action, d.no_socket, d.malformed), (XDP_PASS, 1, 0));
    // A fragment header: never ours in the data plane, passed, not malformed.
    let f = with_ext_headers(dhcp_frame(&[], 547, 20), &[(0, 8), (44, 8)]);
    let (action, d) = run(&mut prog, &f);
    assert_eq!(
        (action, d.no_socket, d.malformed, d.passed),
        (XDP_PASS, 0, 0, 1)
    );
}

#[test]
fn client_port_546_and_ipv4_dhcp_67_pass_untouched() {
    let mut prog = loaded();
    let (action, d) = run(&mut prog, &dhcp_frame(&[], 546, 40));
    assert_eq!(
        (action, d.passed, d.no_socket, d.malformed),
        (XDP_PASS, 1, 0, 0)
    );
    // An IPv4 DHCP Discover (UDP 68 -> 67).
    let mut v4 = vec![0xffu8; 6];
    v4.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    v4.extend_from_slice(&[
        0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
    ]);
    v4.extend_from_slice(&[0, 68, 0, 67, 0, 28, 0, 0]);
    v4.extend_from_slice(&[1u8; 20]);
    let (action, d) = run(&mut prog, &v4);
    assert_eq!(
        (action, d.passed, d.no_socket, d.malformed),
        (XDP_PASS, 1, 0, 0)
    );
}

#[test]
fn truncated_at_every_byte_is_passed_and_counted_malformed() {
    let mut prog = loaded();
    let f = dhcp_frame(&[(0x88a8, 10), (0x8100, 20)], 547, 16);
    let payload_off = f.len() - 16;
    // The kernel refuses test frames shorter than an Ethernet header.
    for cut in 14..payload_off {
        let (action, d) = run(&mut prog, &f[..cut]);
        assert_eq!(action, XDP_PASS, "cut {cut}");
        assert_eq!((d.malformed, d.passed, d.no_socket), (1, 1, 0), "cut {cut}");
    }
    let (_, d) = run(&mut prog, &f[..payload_off]);
    assert_eq!(
        (d.malformed, d.no_socket),
        (0, 1),
        "headers complete, empty payload"
    );
}

#[test]
fn jumbo_frame_is_classified_across_buffers() {
    let mut prog = loaded();
    // 9000 bytes: more than one page, so the kernel hands a multi-buffer frame
    // to the (frags-aware) program.
    let (action, d) = run(&mut prog, &dhcp_frame(&[], 547, 9000 - 62));
    assert_eq!((action, d.no_socket, d.malformed), (XDP_PASS, 1, 0));
    let (action, d) = run(&mut prog, &dhcp_frame(&[(0x8100, 5)], 546, 9000 - 66));
    assert_eq!((action, d.no_socket, d.passed), (XDP_PASS, 0, 1));
}

#[test]
fn with_a_socket_bound_on_the_queue_dhcpv6_is_redirected() {
    let lab = Lab::new();
    lab.server.run(|| {
        let mut prog = loaded();
        let xsk = XskIo::open(NetIf::lookup(SERVER_IF).unwrap(), 0).expect("AF_XDP socket");
        prog.bind_socket(0, xsk.fd()).unwrap();
        let (action, d) = run(&mut prog, &dhcp_frame(&[(0x8100, 7)], 547, 30));
        assert_eq!((action, d.redirected, d.passed), (XDP_REDIRECT, 1, 0));
        let (action, d) = run(&mut prog, &dhcp_frame(&[], 546, 30));
        assert_eq!((action, d.redirected, d.passed), (XDP_PASS, 0, 1));
        drop(xsk);
        // The socket closed: its slot is empty again, so back to the kernel path.
        let (action, d) = run(&mut prog, &dhcp_frame(&[], 547, 30));
        assert_eq!((action, d.no_socket), (XDP_PASS, 1));
    });
}

/// What, destination MAC, destination IPv6, VLAN tags, expected verdict.
type Case = (
    &'static str,
    [u8; 6],
    &'static str,
    &'static [(u16, u16)],
    u32,
);

/// The hardening rule: only frames addressed to this server are taken (its
/// MAC or a DHCPv6 group MAC, and its address or ff02::1:2 / ff05::1:3);
/// a router, bridge port or promiscuous interface passes the rest on.
#[test]
fn only_frames_addressed_to_this_server_are_redirected() {
    const OUR_MAC: [u8; 6] = [2, 0x11, 0x22, 0x33, 0x44, 0x55];
    const OTHER_MAC: [u8; 6] = [2, 0x66, 0x77, 0x88, 0x99, 0xaa];
    const GROUP_MAC: [u8; 6] = [0x33, 0x33, 0, 1, 0, 2];
    const SERVERS_MAC: [u8; 6] = [0x33, 0x33, 0, 1, 0, 3];
    let lab = Lab::new();
    lab.server.run(|| {
        let mut prog = loaded();
        let ours: [Ipv6Addr; 2] = [
            "fe80::11".parse().unwrap(),
            "2001:db8:1:1::11".parse().unwrap(),
        ];
        prog.set_local(OUR_MAC, &ours).unwrap();
        let xsk = XskIo::open(NetIf::lookup(SERVER_IF).unwrap(), 0).expect("AF_XDP socket");
        prog.bind_socket(0, xsk.fd()).unwrap();
        let cases: &[Case] = &[
            (
                "foreign unicast MAC",
                OTHER_MAC,
                "2001:db8:1:1::11",
                &[],
                XDP_PASS,
            ),
            (
                "foreign MAC, multicast IPv6",
                OTHER_MAC,
                "ff02::1:2",
                &[],
                XDP_PASS,
            ),
            (
                "our MAC, foreign IPv6",
                OUR_MAC,
                "2001:db8:1:1::99",
                &[],
                XDP_PASS,
            ),
            (
                "our MAC, foreign IPv6, VLAN",
                OUR_MAC,
                "2001:db8:1:1::99",
                &[(0x8100, 7)],
                XDP_PASS,
            ),
            (
                "group MAC, ff02::1 (not DHCP)",
                GROUP_MAC,
                "ff02::1",
                &[],
                XDP_PASS,
            ),
            (
                "group MAC, our unicast",
                GROUP_MAC,
                "2001:db8:1:1::11",
                &[],
                XDP_PASS,
            ),
            (
                "group MAC, ff02::1:2",
                GROUP_MAC,
                "ff02::1:2",
                &[],
                XDP_REDIRECT,
            ),
            (
                "group MAC, ff02::1:2, QinQ",
                GROUP_MAC,
                "ff02::1:2",
                &[(0x88a8, 10), (0x8100, 20)],
                XDP_REDIRECT,
            ),
            (
                "servers MAC, ff05::1:3",
                SERVERS_MAC,
                "ff05::1:3",
                &[],
                XDP_REDIRECT,
            ),
            (
                "our MAC, our global",
                OUR_MAC,
                "2001:db8:1:1::11",
                &[],
                XDP_REDIRECT,
            ),
            (
                "our MAC, our global, VLAN",
                OUR_MAC,
                "2001:db8:1:1::11",
                &[(0x8100, 7)],
                XDP_REDIRECT,
            ),
            (
                "our MAC, our link-local",
                OUR_MAC,
                "fe80::11",
                &[],
                XDP_REDIRECT,
            ),
        ];
        for &(what, mac, ip, vlans, want) in cases {
            let (action, d) = run(&mut prog, &frame_to(mac, ip, vlans, 547, 30));
            assert_eq!(action, want, "{what}");
            if want == XDP_PASS {
                assert_eq!((d.not_ours, d.passed, d.redirected), (1, 1, 0), "{what}");
            } else {
                assert_eq!((d.not_ours, d.redirected), (0, 1), "{what}");
            }
        }
        // An address added later (SLAAC) is ours once user space says so,
        // and one removed is not.
        let later: Ipv6Addr = "2001:db8:1:1::77".parse().unwrap();
        let frame = frame_to(OUR_MAC, "2001:db8:1:1::77", &[], 547, 30);
        assert_eq!(run(&mut prog, &frame).0, XDP_PASS);
        prog.set_local(OUR_MAC, &[ours[0], later]).unwrap();
        assert_eq!(run(&mut prog, &frame).0, XDP_REDIRECT);
        let gone = frame_to(OUR_MAC, "2001:db8:1:1::11", &[], 547, 30);
        assert_eq!(run(&mut prog, &gone).0, XDP_PASS);
    });
}
