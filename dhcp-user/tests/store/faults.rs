//! Fault injection at every file operation of the store (issue 13, "Tests
//! that would catch the next such bug"): the workload of `sim` (two
//! sessions, a process death in a write between them, snapshots,
//! compaction, a torn tail cut at start-up) is run once per operation of
//! each kind (list, open, create, read, write, set_len, sync, rename,
//! remove, directory sync), failing that one operation with EIO or ENOSPC,
//! or tearing a write half-way on a full disk.
//!
//! Each fault must end in a clean refusal or be ridden out: no panic, no
//! writer death, a refused start or snapshot is an I/O error (never
//! "damaged", never a guess), every message is acknowledged once the fault
//! has passed, the directory left behind starts with every acknowledged
//! lease, and a power loss at any of the 10 operations from the fault on
//! (the `sim` model) loses no acknowledged lease either.
//!
//! Also: a start-up segment that could neither be written nor removed
//! (two faults), and `repair --commit` with a fault at each of its
//! operations.

use std::collections::HashSet;
use std::time::Instant;

use dhcp6d::store::StoreError;

use crate::sim::{
    check_dir, drive, simulate_points, workload, Failure, Fault, Kill, Kind, Scratch, KINDS,
};

fn failures(kind: Kind) -> &'static [Failure] {
    const EIO: Failure = Failure::Errno(libc::EIO);
    const ENOSPC: Failure = Failure::Errno(libc::ENOSPC);
    match kind {
        Kind::Write => &[ENOSPC, EIO, Failure::Torn],
        Kind::Create | Kind::Rename | Kind::SetLen => &[ENOSPC, EIO],
        Kind::List | Kind::Open | Kind::Read | Kind::Sync | Kind::Remove | Kind::SyncDir => &[EIO],
    }
}

#[test]
fn a_fault_at_any_file_operation_is_refused_cleanly_and_loses_no_acknowledged_lease() {
    let steps = workload(Kill::InWrite);
    let clean = drive(Scratch::new("faults-clean").path(), &steps, None);
    assert!(clean.refusals.is_empty() && clean.unacknowledged.is_empty());
    let counts = clean.log.counts();
    for k in KINDS {
        assert!(
            counts.get(&k).copied().unwrap_or(0) > 0,
            "the workload never does a {k:?}: no fault there is tested"
        );
    }
    let started = Instant::now();
    let (mut runs, mut refused, mut states) = (0, 0, 0);
    let mut driving = std::time::Duration::ZERO;
    let mut seen = HashSet::new();
    let mut wrong = Vec::new();
    for kind in KINDS {
        for nth in 1..=counts[&kind] {
            for &failure in failures(kind) {
                let fault = Fault { kind, nth, failure };
                let dir = Scratch::new("faults");
                let t = Instant::now();
                let run = drive(dir.path(), &steps, Some(fault));
                driving += t.elapsed();
                runs += 1;
                refused += run.refusals.len();
                let mut bad = |what: String| wrong.push(format!("{fault:?}: {what}"));
                if run.writer_died {
                    bad("the journal writer died".into());
                }
                for e in &run.refusals {
                    if !matches!(e, StoreError::Io { .. }) {
                        bad(format!(
                            "refused with something else than an I/O error: {e}"
                        ));
                    }
                }
                if !run.unacknowledged.is_empty() {
                    bad(format!(
                        "messages {:?} never acknowledged after the fault passed",
                        run.unacknowledged
                    ));
                }
                if let Err(e) = check_dir(dir.path(), &run) {
                    bad(e);
                }
                // The faults that change what reaches the disk, under power
                // loss; one errno each (the store does not tell them apart).
                let first_errno = failures(kind).iter().position(|f| *f == failure) == Some(0);
                let writes = !matches!(kind, Kind::List | Kind::Open | Kind::Read);
                if writes && (first_errno || failure == Failure::Torn) {
                    // Before the fault the run is the clean one (`powerloss`
                    // covers it); what the fault changes shows within a few
                    // operations (the retry, the next batch, a rotation).
                    let from = run.log.fault_at().unwrap_or(usize::MAX);
                    let sim = simulate_points(&run, &mut seen, from..from.saturating_add(10));
                    states += sim.states;
                    sim.failures.into_iter().for_each(&mut bad);
                }
            }
        }
    }
    eprintln!(
        "{runs} faulted runs ({refused} refusals, {driving:?}), {states} new power-loss states, {:?} in all",
        started.elapsed()
    );
    assert!(
        wrong.is_empty(),
        "{} faults handled wrongly:\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );
    assert!(refused > 0, "no fault was ever refused: were any injected?");
}

/// Fails the first write to a journal segment and the first removal of
/// one: a full disk at start-up that also refuses the cleanup.
struct SegmentAndCleanup {
    segments: std::sync::Mutex<std::collections::HashSet<dhcp6d::store::FileId>>,
    write_failed: std::sync::atomic::AtomicBool,
    remove_failed: std::sync::atomic::AtomicBool,
}

impl dhcp6d::store::FileOpHook for SegmentAndCleanup {
    fn before(&self, op: &dhcp6d::store::FileOp<'_>) -> dhcp6d::store::Verdict {
        use dhcp6d::store::{FileOp, Verdict};
        use std::sync::atomic::Ordering;
        let fail = || Verdict::Fail(std::io::Error::from_raw_os_error(libc::ENOSPC));
        match *op {
            FileOp::Create { name, file } if name.starts_with("journal-") => {
                self.segments.lock().unwrap().insert(file);
            }
            FileOp::Write { file, .. }
                if self.segments.lock().unwrap().contains(&file)
                    && !self.write_failed.swap(true, Ordering::Relaxed) =>
            {
                return fail()
            }
            FileOp::Remove { name }
                if name.starts_with("journal-")
                    && !self.remove_failed.swap(true, Ordering::Relaxed) =>
            {
                return fail()
            }
            _ => {}
        }
        Verdict::Proceed
    }

    fn done(&self, _op: &dhcp6d::store::FileOp<'_>) {}
}

/// Issue 5's "recover by itself when writes succeed again", for a start-up
/// whose new segment could be neither written nor removed: the name is the
/// writer's own failed attempt, so it must not block every retry (EEXIST).
#[test]
fn a_segment_start_up_could_neither_write_nor_remove_does_not_block_the_journal() {
    use dhcp6d::protocol::{LeaseChanges, LeaseOp};
    use dhcp6d::store::{Durability, Journal, JournalOptions, StateDir};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = Scratch::new("faults-startup");
    let hook = Arc::new(SegmentAndCleanup {
        segments: Default::default(),
        write_failed: Default::default(),
        remove_failed: Default::default(),
    });
    let sd = StateDir::open(dir.path(), None)
        .unwrap()
        .with_hook(hook.clone());
    let opts = JournalOptions {
        retry_interval: Duration::from_millis(2),
        ..Default::default()
    };
    let (j, _) = Journal::open_in(sd, opts).expect("starts unhealthy, not refused");
    let h = j.handle();
    assert!(hook.write_failed.load(std::sync::atomic::Ordering::Relaxed));
    assert!(hook
        .remove_failed
        .load(std::sync::atomic::Ordering::Relaxed));
    let until = Instant::now() + Duration::from_secs(3);
    while !h.is_healthy() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        h.is_healthy(),
        "the journal never became writable: {:?}",
        h.stats()
    );
    let mut ch = LeaseChanges::default();
    ch.push(crate::sim::lease(LeaseOp::Commit, 1, 0));
    let seq = h.append(&ch).expect("taken once healthy");
    assert!(h.wait_durable(seq, Duration::from_secs(3)));
    drop(h);
    j.shutdown();
    let (j, rec) = crate::sim::until_unlocked(|| Journal::open(dir.path())).unwrap();
    assert_eq!(rec.len(), 1);
    j.shutdown();
}

fn copy_dir(from: &std::path::Path, tag: &str) -> Scratch {
    let to = Scratch::new(tag);
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

fn bindings(dir: &std::path::Path) -> Result<crate::common::Model, StoreError> {
    let (j, rec) = crate::sim::until_unlocked(|| dhcp6d::store::Journal::open(dir))?;
    let m = crate::common::model_of(&rec);
    j.shutdown();
    Ok(m)
}

/// `dhcp6d repair --commit` with a fault at each of its file operations:
/// an I/O error (never a panic, never a half-repair that starts with fewer
/// bindings), and a second repair finishes the job with what a repair
/// without fault keeps.
#[test]
fn a_fault_at_any_file_operation_of_a_repair_is_an_error_and_the_next_repair_finishes_it() {
    use dhcp6d::store::{repair_in, StateDir};

    let base = Scratch::new("repair-base");
    let run = drive(base.path(), &workload(Kill::AfterWrite), None);
    assert!(run.refusals.is_empty() && run.unacknowledged.is_empty());
    // A flipped bit in the first batch of the last segment, an intact one
    // after it: damage a crash cannot leave.
    let mut segments: Vec<_> = std::fs::read_dir(base.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let victim = segments.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    // Past the segment header (20 bytes) and the batch header (16).
    let at = 20 + 16 + 2;
    assert!(bytes.len() > at + 40, "two batches in {}", victim.display());
    bytes[at] ^= 0x10;
    std::fs::write(victim, bytes).unwrap();
    assert!(
        matches!(
            bindings(copy_dir(base.path(), "repair-check").path()),
            Err(StoreError::Damaged { .. })
        ),
        "the damage must stop a start, or the repair has nothing to do"
    );

    let clean = copy_dir(base.path(), "repair-clean");
    let (log, hook) = crate::sim::fault_hook(None);
    let report = repair_in(
        &StateDir::open(clean.path(), None).unwrap().with_hook(hook),
        true,
    )
    .unwrap();
    assert!(report.snapshot.is_some(), "{report:?}");
    let expected = bindings(clean.path()).expect("a repaired store starts");
    assert!(!expected.0.is_empty());
    let counts = log.counts();

    let mut wrong = Vec::new();
    let mut failed = 0;
    for kind in KINDS {
        for nth in 1..=counts.get(&kind).copied().unwrap_or(0) {
            for &failure in failures(kind) {
                let fault = Fault { kind, nth, failure };
                let d = copy_dir(base.path(), "repair-fault");
                let (_, hook) = crate::sim::fault_hook(Some(fault));
                let sd = StateDir::open(d.path(), None).unwrap().with_hook(hook);
                match repair_in(&sd, true) {
                    Ok(_) => {}
                    Err(StoreError::Io { .. }) => failed += 1,
                    Err(e) => wrong.push(format!("{fault:?}: repair said {e}")),
                }
                drop(sd);
                // Start now: the repaired bindings, or a refusal that the
                // damage is still there; never fewer bindings.
                match bindings(d.path()) {
                    Ok(m) if m == expected => {}
                    Ok(m) => wrong.push(format!(
                        "{fault:?}: started with {} bindings, a repair keeps {}",
                        m.0.len(),
                        expected.0.len()
                    )),
                    Err(StoreError::Damaged { .. }) => {}
                    Err(e) => wrong.push(format!("{fault:?}: start after it: {e}")),
                }
                let again = crate::sim::until_unlocked(|| dhcp6d::store::repair(d.path(), true));
                if let Err(e) = again {
                    wrong.push(format!("{fault:?}: the second repair: {e}"));
                }
                match bindings(d.path()) {
                    Ok(m) if m == expected => {}
                    other => wrong.push(format!(
                        "{fault:?}: after the second repair: {:?}",
                        other.map(|m| m.0.len())
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} faults handled wrongly:\n  {}",
        wrong.len(),
        wrong.join("\n  ")
    );
    eprintln!(
        "repair: {} operations, {failed} faulted repairs failed, {} bindings kept",
        counts.values().sum::<usize>(),
        expected.0.len()
    );
    assert!(failed > 0, "no repair ever failed: were faults injected?");
}
