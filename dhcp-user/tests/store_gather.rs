//! The journal's gather window: a group commit waits a bounded time for more
//! records before its fdatasync, and the durability promise is unchanged.
//!
//! Issue 5: "Workers ... hold the corresponding replies ... until that batch's
//! fdatasync returns; one sync covers records from every worker (group
//! commit)". Issue 7: cut the server CPU per lease at moderate rates without
//! weakening that promise.

mod store_common;

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dhcp6d::core::{LeaseChanges, LeaseOp};
use dhcp6d::store::{Durability, Journal, JournalOptions, SyncFn};
use store_common::{rec, TempDir};

const WAIT: Duration = Duration::from_secs(10);

fn one(i: u64) -> LeaseChanges {
    let mut ch = LeaseChanges::default();
    ch.push(rec(LeaseOp::Commit, i));
    ch
}

/// fdatasync, counting the calls.
fn counted_sync() -> (SyncFn, Arc<AtomicU64>) {
    let n = Arc::new(AtomicU64::new(0));
    let n2 = n.clone();
    let sync: SyncFn = Arc::new(move |f: &File| {
        n2.fetch_add(1, Ordering::SeqCst);
        f.sync_data()
    });
    (sync, n)
}

#[test]
fn records_sent_one_by_one_within_the_window_share_one_fdatasync() {
    let dir = TempDir::new("gather");
    let (sync, syncs) = counted_sync();
    let window = Duration::from_millis(400);
    let opts = JournalOptions {
        sync,
        gather_window: window,
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let t0 = Instant::now();
    // Separate appends, as separate Requests would make them, with no hold on the writer.
    let seqs: Vec<u64> = (0..50u64).map(|i| h.append(&one(i)).unwrap()).collect();
    let top = *seqs.last().unwrap();
    let queued_in = t0.elapsed();
    // The window has not run out: nothing may be reported durable yet.
    if queued_in < window / 2 {
        assert!(
            h.durable_seq() < seqs[0],
            "durable_seq moved before any fdatasync"
        );
    }
    assert!(h.wait_durable(top, WAIT));
    let st = h.stats();
    assert_eq!(st.records, 50);
    assert_eq!(st.durable_seq, top);
    if queued_in < window / 2 {
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            1,
            "50 appends inside one {window:?} window, one fdatasync"
        );
        assert_eq!(st.fsyncs, 1);
    }
    drop(j);
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 50);
}

#[test]
fn shutdown_during_the_window_syncs_at_once() {
    let dir = TempDir::new("gather-stop");
    let (sync, syncs) = counted_sync();
    let opts = JournalOptions {
        sync,
        // Far longer than the test may take: shutdown must not wait it out.
        gather_window: Duration::from_secs(60),
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let seq = h.append(&one(7)).unwrap();
    // Let the writer take the record and enter its window.
    std::thread::sleep(Duration::from_millis(50));
    assert!(h.durable_seq() < seq, "durable before any fdatasync");
    let t0 = Instant::now();
    j.shutdown();
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "shutdown waited out the gather window ({:?})",
        t0.elapsed()
    );
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    assert_eq!(h.durable_seq(), seq);
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 1);
}

#[test]
fn one_record_per_sync_is_not_delayed_by_the_window() {
    let dir = TempDir::new("gather-one");
    let opts = JournalOptions {
        max_batch_records: 1,
        gather_window: Duration::from_secs(60),
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let seq = h.append(&one(1)).unwrap();
    assert!(
        h.wait_durable(seq, Duration::from_secs(20)),
        "max_batch_records = 1 asks for a sync per record, with no gathering"
    );
}
