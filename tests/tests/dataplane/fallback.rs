//! The AF_XDP fallback listener (issue 13 item 4, "queues and dead
//! workers"): what the XDP program passes to the kernel for want of a
//! socket, on a queue that has no worker, is answered by a kernel UDP
//! socket on port 547 run by a socket-mode worker with the same handler and
//! journal. Before, nothing listened there in XDP mode: the client got no
//! answer. The veth lab's client is steered onto one TX queue (XPS), which
//! veth delivers on the same-numbered RX queue of the server side.

use std::sync::Arc;
use std::time::Duration;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, Dataplane, DataplaneConfig};
use dhcp6d::stats::CounterTotals;

/// XDP data plane on `srv0` serving at most `served` RX queues.
fn serve(lab: &Lab, served: u32, journal: Arc<ManualDurability>) -> Dataplane {
    lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Xdp);
        cfg.pin_workers = false;
        cfg.max_queues = Some(served);
        start(&cfg, Arc::new(EchoHandler), journal).expect("start XDP data plane")
    })
}

/// What the fallback listener counted.
fn fallback(dp: &Dataplane) -> CounterTotals {
    let block = dp
        .fallback_counters()
        .expect("a fallback listener in XDP mode");
    CounterTotals::sum([block.as_ref()])
}

/// Replies the fallback listener sent.
fn fallback_sent(dp: &Dataplane) -> u64 {
    let t = fallback(dp);
    t.tx.advertise + t.tx.reply + t.tx.relay_repl
}

/// Messages the queue workers (not the fallback) received.
fn received(dp: &Dataplane) -> u64 {
    let t = CounterTotals::sum(dp.worker_counters().iter().map(|c| c.as_ref()));
    t.rx.solicit + t.rx.request + t.rx.other
}

/// A direct client's exchange: multicast to ff02::1:2 from port 546.
fn exchange(lab: &Lab, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    lab.client.run(|| {
        let s = client_socket();
        s.set_read_timeout(Some(wait)).unwrap();
        send_multicast(&s, CLIENT_IF, msg);
        recv(&s).map(|(m, _)| m)
    })
}

/// Queue 1 has no worker (only queue 0 is served). Its clients are
/// answered by the fallback, which joined ff02::1:2 on the interface; a
/// reply that needs the journal waits for the sync exactly as in socket
/// mode. Queue 0's clients still go through AF_XDP, and the fallback sees
/// none of them. Without the fallback the queue-1 client got nothing.
#[test]
fn a_queue_without_a_worker_is_answered_by_the_fallback_after_the_journal_syncs() {
    let lab = Lab::with_queues(2);
    let journal = Arc::new(ManualDurability::default());
    let dp = serve(&lab, 1, journal.clone());
    assert_eq!(dp.workers(), 1, "queue 0 only");
    assert_eq!(dp.queues_without_worker(), 1);

    // Normal operation: redirected to the worker, the fallback sees nothing.
    lab.steer_client_to_queue(0, 2);
    let reply = exchange(&lab, &[1, 0, 0, 1], Duration::from_secs(3)).expect("queue 0 answered");
    assert_eq!(reply, [2, 0, 0, 1]);
    eventually("the worker counted it", || received(&dp) == 1);
    let normal = dp.xdp_counters().unwrap();
    assert_eq!((normal.redirected, normal.no_socket), (1, 0), "{normal:?}");
    let idle = fallback(&dp);
    assert_eq!(
        (idle.rx.solicit + idle.rx.other, fallback_sent(&dp)),
        (0, 0),
        "the fallback sees nothing while the program redirects"
    );

    // Queue 1: passed for want of a socket, answered by the fallback.
    lab.steer_client_to_queue(1, 2);
    let reply = exchange(&lab, &[1, 1, 1, 1], Duration::from_secs(3))
        .expect("a client on the queue without a worker got no answer");
    assert_eq!(reply, [2, 1, 1, 1]);
    eventually("fallback answered 1", || fallback_sent(&dp) == 1);
    let passed = dp.xdp_counters().unwrap();
    assert_eq!(passed.no_socket, 1, "{passed:?}");
    assert_eq!(passed.redirected, 1, "nothing more redirected: {passed:?}");
    assert_eq!(passed.beyond_queue_limit, 0, "{passed:?}");
    assert_eq!(received(&dp), 1, "the queue-0 worker did not see it");

    // A reply that needs the journal (first byte 3) is held until it syncs.
    lab.client.run(|| {
        let s = client_socket();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        send_multicast(&s, CLIENT_IF, &[3, 1, 2, 3]);
        assert!(
            recv(&s).is_none(),
            "the fallback replied before the lease was durable"
        );
        assert_eq!(journal.appended(), 1, "the fallback wrote the journal");
        journal.sync();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let (reply, _) = recv(&s).expect("held reply never released after the sync");
        assert_eq!(reply, [2, 1, 2, 3]);
    });
    eventually("fallback answered 2", || fallback_sent(&dp) == 2);
    dp.stop();
}

/// A NIC with more RX queues than the XskMap holds (80 > 64): the data
/// plane starts (it does not refuse), says how many queues have no worker,
/// and a client whose frames land on queue 70 is answered by the fallback
/// and counted as `beyond_queue_limit`, not `no_socket`. Two workers only
/// (`max_queues`), so the lab does not map 64 UMEMs; the real binary with
/// every worker is the cli `serve` test.
#[test]
fn a_queue_beyond_the_xskmap_is_answered_by_the_fallback_and_counted() {
    let lab = Lab::with_queues(80);
    let dp = serve(&lab, 2, Arc::new(ManualDurability::immediate()));
    assert_eq!(dp.workers(), 2);
    assert_eq!(dp.queues_without_worker(), 78);
    lab.steer_client_to_queue(70, 80);
    let reply = exchange(&lab, &[1, 7, 0, 7], Duration::from_secs(3))
        .expect("a client on queue 70 got no answer");
    assert_eq!(reply, [2, 7, 0, 7]);
    eventually("fallback answered 1", || fallback_sent(&dp) == 1);
    let xdp = dp.xdp_counters().unwrap();
    assert_eq!(
        (xdp.beyond_queue_limit, xdp.no_socket, xdp.redirected),
        (1, 0, 0),
        "{xdp:?}"
    );
    dp.stop();
}
