//! An idle data plane costs (almost) nothing: workers block in poll() when
//! there is no traffic. Measured per worker thread from
//! /proc/self/task/*/schedstat (nanoseconds on CPU), over 2 s of silence.

use std::sync::Arc;
use std::time::Duration;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, DataplaneConfig};

/// Total CPU nanoseconds of this process's threads whose name starts with `prefix`.
fn worker_cpu_ns(prefix: &str) -> (u64, usize) {
    let mut total = 0;
    let mut threads = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let sched = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        threads += 1;
    }
    (total, threads)
}

fn assert_idle(io: IoMode, prefix: &str) {
    // Alone: the other data-plane tests of this binary have workers of the
    // same names in this process.
    let lab = Lab::alone_with_queues(2);
    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], io);
        cfg.pin_workers = false;
        start(
            &cfg,
            Arc::new(EchoHandler),
            Arc::new(ManualDurability::immediate()),
        )
        .unwrap()
    });
    // Past the start-up spin rounds.
    std::thread::sleep(Duration::from_millis(200));
    let (before, threads) = worker_cpu_ns(prefix);
    assert_eq!(threads, dp.workers(), "found the worker threads");
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let (after, _) = worker_cpu_ns(prefix);
    let share = (after - before) as f64 / window.as_nanos() as f64;
    // The bar: an idle dhcp6d uses under 1% of a core.
    assert!(
        share < 0.01,
        "{io:?}: idle workers used {:.2}% of a core",
        share * 100.0
    );
    dp.stop();
}

#[test]
fn idle_af_xdp_workers_use_under_one_percent_of_a_core() {
    assert_idle(IoMode::Xdp, "dhcp6d-xsk");
}

#[test]
fn idle_socket_worker_uses_under_one_percent_of_a_core() {
    assert_idle(IoMode::Socket, "dhcp6d-sock");
}
