//! Process crash: SIGKILL a process that is committing leases at a random
//! moment, restart, and find every lease it reported durable.
//!
//! Issue 5: "kill -9 ... at random moments and restart it; after each restart,
//! every lease a client received in a Reply is present with the same address
//! and at least its lifetime ... Zero lost." This is the store-level version:
//! the test binary re-executes itself as the writer (three threads appending,
//! snapshots and compaction running), which prints `D <id>` only once
//! `durable_seq` covers the record, like a worker releasing a held Reply.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::common::{key, rec, Key, TempDir};
use dhcp6d::protocol::{LeaseChanges, LeaseOp, LeaseRecord};
use dhcp6d::store::{Durability, Journal};

/// This test's name as libtest knows it inside the `store` test binary (the
/// module path without the crate), for the `--exact` filter of the re-exec.
const TEST_NAME: &str = "kill9::sigkill_at_random_moments_loses_no_durable_lease";
const CHILD_DIR: &str = "DHCP6D_KILL9_DIR";
const CHILD_START: &str = "DHCP6D_KILL9_START";

#[test]
fn sigkill_at_random_moments_loses_no_durable_lease() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
        child(Path::new(&dir), start);
    }
    let dir = TempDir::new("kill9");
    let mut durable: HashSet<u64> = HashSet::new();
    let mut release_intent: HashSet<u64> = HashSet::new();
    let mut released: HashSet<u64> = HashSet::new();
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    for round in 0..8u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("re-exec the test binary");
        let (tx, rx) = crossbeam_channel::unbounded::<String>();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let it commit a random amount (at least 100 durable leases), then kill.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let want = 100 + seed % 3000;
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = Vec::new();
        while seen < want {
            let line = rx.recv_deadline(deadline).unwrap_or_else(|_| {
                panic!("round {round}: child stalled after {seen} durable leases")
            });
            seen += u64::from(line.starts_with("D "));
            lines.push(line);
        }
        std::thread::sleep(Duration::from_micros(seed % 20_000));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for l in &lines {
            let mut parts = l.split(' ');
            let (tag, id) = (
                parts.next(),
                parts.next().and_then(|s| s.parse::<u64>().ok()),
            );
            // A line cut by the kill has no trailing newline and is never
            // returned by lines() as a different number: BufRead yields it
            // whole or the digits may be cut, so only trust "D"/"R" with a parse.
            match (tag, id) {
                (Some("D"), Some(id)) => {
                    durable.insert(id);
                }
                (Some("r"), Some(id)) => {
                    release_intent.insert(id);
                }
                (Some("R"), Some(id)) => {
                    released.insert(id);
                }
                _ => {}
            }
        }
        let (j, recovered) = Journal::open(dir.path()).expect("recover after SIGKILL");
        let got: BTreeMap<Key, LeaseRecord> = recovered.iter().map(|r| (key(&r), r)).collect();
        let mut checked = 0;
        for &id in &durable {
            let want = rec(LeaseOp::Commit, id);
            let present = got.get(&key(&want));
            if released.contains(&id) {
                assert!(
                    present.is_none(),
                    "round {round}: lease {id} was released durably but is back"
                );
            } else if !release_intent.contains(&id) {
                let r = present.unwrap_or_else(|| panic!("round {round}: durable lease {id} lost"));
                assert_eq!(r.addr, want.addr);
                assert!(
                    r.valid_until >= want.valid_until && r.preferred_until >= want.preferred_until
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 50,
            "round {round}: only {checked} leases checked"
        );
        drop(j);
    }
    assert!(durable.len() >= 800);
}

/// The writer process: never returns; the parent kills it.
fn child(dir: &Path, start: u64) -> ! {
    let (j, recovered) = Journal::open(dir).expect("child open");
    let h = j.handle();
    let live: Arc<Mutex<BTreeMap<Key, LeaseRecord>>> =
        Arc::new(Mutex::new(recovered.iter().map(|r| (key(&r), r)).collect()));
    let next = Arc::new(AtomicU64::new(start));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = move |out: &Mutex<std::io::Stdout>, tag: &str, id: u64| {
        let mut o = out.lock().unwrap();
        writeln!(o, "{tag} {id}").unwrap();
        o.flush().unwrap();
    };
    for _ in 0..3 {
        let (h, live, next, out) = (h.clone(), live.clone(), next.clone(), out.clone());
        std::thread::spawn(move || {
            let mut pending: VecDeque<(u64, u64, bool)> = VecDeque::new();
            let mut ch = LeaseChanges::default();
            let mut mine: VecDeque<u64> = VecDeque::new();
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                let r = rec(LeaseOp::Commit, id);
                live.lock().unwrap().insert(key(&r), r);
                ch.clear();
                ch.push(r);
                let seq = h.append(&ch).expect("healthy");
                pending.push_back((seq, id, false));
                // A client releases a lease only after its Reply: release one
                // of this thread's leases already reported durable.
                if id % 7 == 0 {
                    if let Some(old) = mine.pop_front() {
                        say(&out, "r", old);
                        let rel = rec(LeaseOp::Release, old);
                        live.lock().unwrap().remove(&key(&rel));
                        ch.clear();
                        ch.push(rel);
                        let seq = h.append(&ch).expect("healthy");
                        pending.push_back((seq, old, true));
                    }
                }
                // Like a worker holding TX descriptors: a window of replies in flight.
                while pending.len() > 64 || pending.front().is_some_and(|p| p.0 <= h.durable_seq())
                {
                    let (seq, id, rel) = pending.pop_front().unwrap();
                    h.wait_durable(seq, Duration::from_secs(30));
                    say(&out, if rel { "R" } else { "D" }, id);
                    if !rel {
                        mine.push_back(id);
                    }
                }
            }
        });
    }
    loop {
        std::thread::sleep(Duration::from_millis(40));
        // The walk must start inside the closure (after the writer rotated),
        // like core.for_each_binding would; copy so no lock is held over I/O.
        h.snapshot(|emit| {
            let copy: Vec<LeaseRecord> = live.lock().unwrap().values().copied().collect();
            copy.iter().for_each(emit)
        })
        .expect("snapshot");
    }
}
