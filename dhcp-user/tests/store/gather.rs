//! The journal's gather window: a group commit waits a bounded time for more
//! records before its fdatasync, and the durability promise is unchanged.
//!
//! Issue 5: "Workers ... hold the corresponding replies ... until that batch's
//! fdatasync returns; one sync covers records from every worker (group
//! commit)". Issue 7: cut the server CPU per lease at moderate rates without
//! weakening that promise.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{rec, TempDir};
use dhcp6d::protocol::{LeaseChanges, LeaseOp};
use dhcp6d::store::{Durability, Journal, JournalOptions, SyncFn};

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
fn a_record_sent_while_the_writer_gathers_shares_its_fdatasync() {
    let dir = TempDir::new("gather");
    let (sync, syncs) = counted_sync();
    let opts = JournalOptions {
        sync,
        // Far longer than the test may take: the window cannot run out
        // before the hold below lands in it. Shutdown ends it.
        gather_window: Duration::from_secs(60),
        // Room for one record: the second append is accepted only once the
        // writer has taken the first (until then it is refused as a full
        // queue), so the second is sent after the writer's group began (as
        // a second worker's Request would be), never queued beside the
        // first by luck of scheduling.
        queue_capacity: 1,
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let first = h.append(&one(0)).unwrap();
    let second = loop {
        match h.append(&one(1)) {
            Some(seq) => break seq,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    {
        // The writer answers control requests while it gathers, so this
        // freezes it inside the window. A writer that synced at once would
        // have written the first record before it read the request.
        let _hold = h.hold_writer();
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            0,
            "the first record was synced alone instead of gathering"
        );
        assert!(h.durable_seq() < first, "durable before any fdatasync");
    }
    j.shutdown();
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        1,
        "two appends, the second sent inside the first's window, one fdatasync"
    );
    let st = h.stats();
    assert_eq!((st.records, st.fsyncs, st.durable_seq), (2, 1, second));
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 2);
}

#[test]
fn a_group_is_written_when_its_window_runs_out() {
    // The wait is bounded: with no further append and no control request,
    // the end of the window alone sends the group to disk.
    let dir = TempDir::new("gather-end");
    let (sync, syncs) = counted_sync();
    let opts = JournalOptions {
        sync,
        gather_window: Duration::from_millis(50),
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let seq = h.append(&one(3)).unwrap();
    assert!(h.wait_durable(seq, WAIT), "never written after its window");
    assert_eq!(syncs.load(Ordering::SeqCst), 1);
    assert_eq!(h.stats().records, 1);
    drop(j);
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 1);
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
