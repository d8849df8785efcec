//! Worker supervision (issue #2: "if workers die, DHCP falls back to the
//! kernel path (XDP_PASS), never a black hole"): a handler that panics on a
//! marker message kills its AF_XDP worker. Then, in a namespace:
//! - the queue's XskMap slot is emptied at once, so DHCPv6 frames reach the
//!   kernel while the worker is down (XDP_PASS, counted as `no_socket`), not
//!   a dead socket, and the fallback listener on UDP 547 answers them;
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

    // During the back-off the queue is the kernel's: the frame is passed
    // for want of a socket and answered by the fallback listener (issue 13
    // item 4; before, the kernel had nothing on 547 and the client got no
    // answer), while no queue worker sees it.
    let fallback = || CounterTotals::sum([dp.fallback_counters().unwrap().as_ref()]);
    let fallback_before = fallback();
    assert_eq!(
        fallback_before.rx.relay_forw + fallback_before.rx.other,
        0,
        "the fallback sees nothing while the program redirects"
    );
    let during = ask(&lab, &[12, 9, 9, 9], Duration::from_secs(2))
        .expect("no answer while the worker was down");
    assert_eq!(during, [2, 9, 9, 9]);
    let gap = dp.xdp_counters().unwrap();
    assert!(
        gap.no_socket > before.no_socket && gap.passed > before.passed,
        "counted as passed for want of a socket: {before:?} -> {gap:?}"
    );
    assert_eq!(gap.redirected, before.redirected, "nothing redirected");
    eventually("the fallback counted its answer", || {
        fallback().tx.advertise == 1
    });
    let handled_gap: u64 = dp
        .worker_counters()
        .iter()
        .map(|c| {
            let t = CounterTotals::sum([c.as_ref()]);
            t.rx.relay_forw + t.rx.other
        })
        .sum();
    assert_eq!(handled_gap, handled_before, "no queue worker handled it");
    assert_eq!(fallback().rx.relay_forw, 1, "the fallback did");
    assert!(
        dp.worker_restarts() == 1 && dp.xdp_counters().unwrap().redirected == before.redirected,
        "still in the back-off: the answer came from the fallback"
    );

    // After the back-off the worker answers again (redirected once more);
    // until then the fallback does. Still one restart.
    let mut back = false;
    for _ in 0..20 {
        let answered = ask(&lab, &[12, 4, 5, 6], Duration::from_millis(500));
        assert_eq!(
            answered.as_deref(),
            Some(&[2, 4, 5, 6][..]),
            "answered throughout"
        );
        if dp.xdp_counters().unwrap().redirected > gap.redirected {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(back, "the worker never came back");
    assert_eq!(dp.worker_restarts(), 1);
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
