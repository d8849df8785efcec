//! Lease store benchmark, one run, plain figures (no criterion: the figures are
//! throughput and wall-clock recovery, not per-call latency).
//!
//! `cargo bench -p dhcp-user --bench store -- [--bindings N] [--seconds S] [--threads P] [--dir PATH]`
//!
//! 1. durable commits/s: group commit (P producer threads, each holding up to
//!    `WINDOW` un-acknowledged replies like a worker holding TX descriptors),
//!    one fdatasync per lease (max batch 1), and no fsync at all;
//! 2. journal bytes per lease (new clients: every record defines its DUID);
//! 3. recovery time of N bindings (snapshot + a 100 000-record journal tail).
//!
//! Goals (issue 5): ≥ 200 000 durable commits/s, 10 M bindings recovered in
//! < 5 s, ≤ 64 journal bytes per lease.

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhcp6d::protocol::{LeaseChanges, LeaseKind, LeaseOp, LeaseRecord};
use dhcp6d::store::{Durability, Journal, JournalOptions, SyncFn};

/// Replies one producer may hold while their leases are not yet durable (group commit).
const WINDOW: usize = 4096;
const TAIL: u64 = 100_000;
const NOW: u64 = 1_800_000_000;

struct Args {
    bindings: u64,
    seconds: f64,
    threads: u64,
    dir: PathBuf,
    only_recovery: bool,
}

fn args() -> Args {
    let mut a = Args {
        bindings: 10_000_000,
        seconds: 3.0,
        threads: 4,
        dir: std::env::temp_dir(),
        only_recovery: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--bindings" => a.bindings = v().parse().expect("--bindings N"),
            "--seconds" => a.seconds = v().parse().expect("--seconds S"),
            "--threads" => a.threads = v().parse().expect("--threads P"),
            "--dir" => a.dir = PathBuf::from(v()),
            "--only-recovery" => a.only_recovery = true,
            _ => {} // cargo passes --bench
        }
    }
    a
}

/// A realistic new client `i`: hashed address in a /64, DUID-LLT with its MAC,
/// random IAID, lifetimes from `now`.
fn client(i: u64, now: u64) -> LeaseRecord {
    let h = splitmix(i);
    let addr = Ipv6Addr::from((0x2001_0db8_0001_0001u128 << 64) | u128::from(h));
    let mac = splitmix(h).to_be_bytes();
    let duid = [
        0, 1, 0, 1, 0x2c, 0x3d, 0x4e, 0x5f, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
    ];
    LeaseRecord::new(
        LeaseOp::Commit,
        LeaseKind::Na,
        addr,
        128,
        (h >> 32) as u32,
        &duid,
        now + 3000,
        now + 4000,
    )
    .expect("14-byte DUID")
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Run {
    commits: u64,
    secs: f64,
    fsyncs: u64,
    bytes: u64,
}

/// P producers append for `seconds`, each holding ≤ `window` replies; returns
/// commits made durable per second (until the last one was durable).
fn throughput(dir: &Path, opts: JournalOptions, threads: u64, window: usize, seconds: f64) -> Run {
    let _ = std::fs::remove_dir_all(dir);
    let (j, _) = Journal::open_with(dir, opts).expect("open");
    let h = j.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (h, stop, ids) = (h.clone(), stop.clone(), ids.clone());
            std::thread::spawn(move || {
                let mut held = VecDeque::with_capacity(window);
                let mut ch = LeaseChanges::default();
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = ids.fetch_add(1, Ordering::Relaxed);
                    ch.clear();
                    ch.push(client(i, NOW + i / 100_000));
                    held.push_back(h.append(&ch).expect("healthy"));
                    if held.len() >= window {
                        h.wait_durable(held[0], Duration::from_secs(60));
                    }
                    let d = h.durable_seq();
                    while held.front().is_some_and(|&s| s <= d) {
                        held.pop_front();
                        done += 1;
                    }
                }
                if let Some(&last) = held.back() {
                    h.wait_durable(last, Duration::from_secs(60));
                }
                done + held.len() as u64
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let commits: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let secs = start.elapsed().as_secs_f64();
    let st = h.stats();
    drop(j);
    let _ = std::fs::remove_dir_all(dir);
    Run {
        commits,
        secs,
        fsyncs: st.fsyncs,
        bytes: st.bytes,
    }
}

fn commit_rates(a: &Args, base: &Path) {
    let group = throughput(
        &base.join("group"),
        JournalOptions::default(),
        a.threads,
        WINDOW,
        a.seconds,
    );
    // Every lease waits for its own fsync, so each producer holds one reply.
    let per_lease = throughput(
        &base.join("single"),
        JournalOptions {
            max_batch_records: 1,
            ..Default::default()
        },
        a.threads,
        1,
        a.seconds.min(2.0),
    );
    let nosync: SyncFn = Arc::new(|_| Ok(()));
    let none = throughput(
        &base.join("nosync"),
        JournalOptions {
            sync: nosync,
            ..Default::default()
        },
        a.threads,
        WINDOW,
        a.seconds,
    );
    for (name, r) in [
        ("group commit", &group),
        ("one fsync per lease", &per_lease),
        ("no fsync", &none),
    ] {
        println!(
            "  {name:<20} {:>10.0} durable commits/s  ({} commits, {} fsyncs, {:.1} leases/fsync)",
            r.commits as f64 / r.secs,
            r.commits,
            r.fsyncs,
            r.commits as f64 / r.fsyncs.max(1) as f64
        );
    }
    println!(
        "  journal bytes per lease (new clients, DUID-LLT): {:.1}  (goal <= 64)",
        group.bytes as f64 / group.commits.max(1) as f64
    );
    println!(
        "  group commit goal >= 200000/s: {}",
        if group.commits as f64 / group.secs >= 200_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn main() {
    let a = args();
    let base = a
        .dir
        .join(format!("dhcp6d-bench-store-{}", std::process::id()));
    println!(
        "lease store benchmark (dir {}, {} producer threads)",
        base.display(),
        a.threads
    );

    if !a.only_recovery {
        commit_rates(&a, &base);
    }

    // Recovery: a snapshot of N bindings plus a journal tail.
    let dir = base.join("recovery");
    let _ = std::fs::remove_dir_all(&dir);
    let n = a.bindings;
    let t = Instant::now();
    {
        let (j, _) = Journal::open(&dir).expect("open");
        let h = j.handle();
        let info = h
            .snapshot(|emit| {
                for i in 0..n {
                    emit(&client(i, NOW));
                }
            })
            .expect("snapshot");
        println!(
            "  snapshot of {n} bindings: {:.1} s to write, {:.1} bytes per binding",
            t.elapsed().as_secs_f64(),
            info.bytes as f64 / n.max(1) as f64
        );
        // Tail: renewals of existing bindings and new clients.
        let mut ch = LeaseChanges::default();
        let mut last = 0;
        for k in 0..TAIL {
            let i = if k % 2 == 0 { k * 97 % n.max(1) } else { n + k };
            ch.clear();
            ch.push(client(i, NOW + 600));
            last = h.append(&ch).expect("healthy");
        }
        h.wait_durable(last, Duration::from_secs(60));
    }
    let t = Instant::now();
    let (j, recovered) = Journal::open(&dir).expect("recover");
    let secs = t.elapsed().as_secs_f64();
    let expect = n + TAIL / 2;
    assert_eq!(recovered.len() as u64, expect, "recovered binding count");
    println!(
        "  recovery: {} bindings (snapshot {n} + journal tail {TAIL}) in {secs:.2} s  (goal 10 M < 5 s: {})",
        recovered.len(),
        if n >= 10_000_000 { if secs < 5.0 { "met" } else { "NOT met" } } else { "run with --bindings 10000000" }
    );
    drop(recovered);
    drop(j);
    let _ = std::fs::remove_dir_all(&base);
}
