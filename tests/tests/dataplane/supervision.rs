//! Worker supervision (issue #2: "if workers die, DHCP falls back to the
//! kernel path (XDP_PASS), never a black hole"): a handler that panics on a
//! marker message kills its AF_XDP worker. Then, in a namespace:
//! - the queue's XskMap slot is emptied at once, so DHCPv6 frames reach the
//!   kernel's own UDP socket on port 547 while the worker is down (XDP_PASS,
//!   counted as `no_socket`), not a dead socket;
//! - the death is counted (`worker_restarts`) and the worker is back after
//!   its back-off, answering again.
//!
//! The socket-mode worker (hardening issue, item 12) is supervised the same
//! way: it keeps its socket across the restart, so what arrives during the
//! back-off waits in the socket's buffer instead of being refused.

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{ManualDurability, PanicOnMarker};
use dhcp6d::dataplane::{start, DataplaneConfig};
use dhcp6d::stats::CounterTotals;

/// A relay agent in the client namespace (RFC 9915 §19: relay to server
/// on port 547), which sends `msg` to the server and returns the reply, if any.
fn ask(lab: &Lab, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    lab.client.run(|| {
        let relay = UdpSocket::bind(format!("[{CLIENT_GLOBAL}]:547")).expect("bind relay");
        relay.set_read_timeout(Some(wait)).unwrap();
        let server: Ipv6Addr = SERVER_GLOBAL.parse().unwrap();
        relay
            .send_to(msg, SocketAddrV6::new(server, 547, 0, 0))
            .unwrap();
        recv(&relay).map(|(m, _)| m)
    })
}

#[test]
fn dead_worker_falls_back_to_the_kernel_and_is_restarted() {
    let lab = Lab::new();
    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Xdp);
        cfg.pin_workers = false;
        // A wide gap, so the test sees the fallback however slowly it runs.
        cfg.restart_backoff = Duration::from_secs(3);
        start(
            &cfg,
            Arc::new(PanicOnMarker),
            Arc::new(ManualDurability::immediate()),
        )
        .expect("start XDP data plane")
    });
    let reply = ask(&lab, &[12, 1, 2, 3], Duration::from_secs(3)).expect("no reply before");
    assert_eq!(reply[0], 2, "the echo handler answers");
    assert_eq!(dp.worker_restarts(), 0);

    // The kernel's own socket on 547: it sees DHCPv6 only when XDP passes it.
    let kernel = lab
        .server
        .run(|| UdpSocket::bind("[::]:547").expect("bind kernel socket on 547"));
    kernel
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();

    // The marker kills the worker: no reply, one death counted.
    assert_eq!(
        ask(&lab, &PanicOnMarker::MARKER, Duration::from_millis(300)),
        None
    );
    eventually("worker_restarts == 1", || dp.worker_restarts() == 1);
    let before = dp.xdp_counters().unwrap();
    let handled_before: u64 = dp
        .worker_counters()
        .iter()
        .map(|c| {
            let t = CounterTotals::sum([c.as_ref()]);
            t.rx.relay_forw + t.rx.other
        })
        .sum();

    // During the back-off the queue is the kernel's: the frame is passed,
    // reaches the kernel socket, and no worker sees it.
    lab.client.run(|| {
        let relay = UdpSocket::bind(format!("[{CLIENT_GLOBAL}]:547")).unwrap();
        relay
            .send_to(&[12, 9, 9, 9], format!("[{SERVER_GLOBAL}]:547"))
            .unwrap();
    });
    let mut buf = [0u8; 64];
    let (n, _) = kernel
        .recv_from(&mut buf)
        .expect("DHCPv6 did not reach the kernel while the worker was down");
    assert_eq!(&buf[..n], [12, 9, 9, 9]);
    let gap = dp.xdp_counters().unwrap();
    assert!(
        gap.no_socket > before.no_socket && gap.passed > before.passed,
        "counted as passed for want of a socket: {before:?} -> {gap:?}"
    );
    assert_eq!(gap.redirected, before.redirected, "nothing redirected");
    let handled_gap: u64 = dp
        .worker_counters()
        .iter()
        .map(|c| {
            let t = CounterTotals::sum([c.as_ref()]);
            t.rx.relay_forw + t.rx.other
        })
        .sum();
    assert_eq!(handled_gap, handled_before, "no worker handled it");

    // After the back-off the worker answers again; still one restart.
    let mut answered = None;
    for _ in 0..20 {
        answered = ask(&lab, &[12, 4, 5, 6], Duration::from_millis(500));
        if answered.is_some() {
            break;
        }
    }
    let answered = answered.expect("no reply after the restart");
    assert_eq!(answered, [2, 4, 5, 6]);
    assert_eq!(dp.worker_restarts(), 1);
    assert!(dp.xdp_counters().unwrap().redirected > gap.redirected);
    dp.stop();
}

/// Hardening issue item 12: a panic in the handler used to end the socket
/// worker's thread for good, leaving a server that looked alive (control
/// socket, stats) and answered nothing. Now the death is counted in
/// `worker_restarts` and the same socket is served again after the back-off.
#[test]
fn dead_socket_worker_is_restarted_and_answers_again() {
    let lab = Lab::new();
    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Socket);
        cfg.restart_backoff = Duration::from_millis(300);
        start(
            &cfg,
            Arc::new(PanicOnMarker),
            Arc::new(ManualDurability::immediate()),
        )
        .expect("start socket data plane")
    });
    let reply = ask(&lab, &[12, 1, 2, 3], Duration::from_secs(3)).expect("no reply before");
    assert_eq!(reply, [2, 1, 2, 3], "the echo handler answers");
    assert_eq!(dp.worker_restarts(), 0);

    assert_eq!(
        ask(&lab, &PanicOnMarker::MARKER, Duration::from_millis(300)),
        None,
        "the marker kills the worker"
    );
    eventually("worker_restarts == 1", || dp.worker_restarts() == 1);

    // Sent during the back-off or after it: answered either way, by the
    // worker on the socket it kept.
    let answered =
        ask(&lab, &[12, 4, 5, 6], Duration::from_secs(3)).expect("no reply after the restart");
    assert_eq!(answered, [2, 4, 5, 6]);
    assert_eq!(dp.worker_restarts(), 1);
    // The same worker's counters, before and after (bumped after the send).
    eventually("two answers counted", || {
        let sent: u64 = dp
            .worker_counters()
            .iter()
            .map(|c| CounterTotals::sum([c.as_ref()]).tx.advertise)
            .sum();
        sent == 2
    });
    dp.stop();
}
