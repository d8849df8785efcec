//! The writer thread dies (hardening issue item 12: "Threads that die
//! quietly"). A writer that panicked used to leave the journal looking
//! healthy: appends were taken (then refused one by one once the channel
//! closed), nobody was told, and `serve` kept advertising. Now the journal
//! refuses every append at once, wakes whoever waits for durability, and
//! calls `on_writer_death` so `serve` can stop the process.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{rec, TempDir};
use crossbeam_channel::bounded;
use dhcp6d::protocol::{LeaseChanges, LeaseOp};
use dhcp6d::store::{Durability, Journal, JournalOptions};

fn one(i: u64) -> LeaseChanges {
    let mut ch = LeaseChanges::default();
    ch.push(rec(LeaseOp::Commit, i));
    ch
}

#[test]
fn a_writer_that_panics_stops_every_acknowledgement_and_says_so() {
    let dir = TempDir::new("writer-death");
    let (told_tx, told) = bounded::<String>(4);
    let opts = JournalOptions {
        // As a bug in the writer would: after the records are encoded,
        // before anything is synced.
        sync: Arc::new(|_: &File| panic!("sync bug")),
        on_writer_death: Some(Arc::new(move |cause: &str| {
            let _ = told_tx.send(cause.to_string());
        })),
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    assert!(h.is_healthy());
    let seq = h.append(&one(1)).expect("taken while the writer lives");

    let cause = told
        .recv_timeout(Duration::from_secs(10))
        .expect("on_writer_death was not called");
    assert!(cause.contains("panicked: sync bug"), "{cause}");
    assert!(
        !h.is_healthy(),
        "a dead writer's journal still looks healthy"
    );
    assert!(!h.stats().healthy);
    // Nothing can become durable: a waiter is told at once, not at its timeout.
    let started = Instant::now();
    assert!(!h.wait_durable(seq, Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(h.durable_seq() < seq, "the record was never synced");
    assert_eq!(h.append(&one(2)), None, "appends refused");
    assert_eq!(told.try_recv().ok(), None, "told once");
    j.shutdown();

    // The state directory is free for the next process. (The first record
    // may be in the file: its write came before the sync that panicked, as
    // in a crash. It was never acknowledged.)
    let (j, recovered) = Journal::open(dir.path()).unwrap();
    assert!(recovered.len() <= 1);
    j.shutdown();
}

#[test]
fn a_journal_shut_down_normally_reports_no_death() {
    let dir = TempDir::new("writer-normal");
    let (told_tx, told) = bounded::<String>(1);
    let opts = JournalOptions {
        on_writer_death: Some(Arc::new(move |cause: &str| {
            let _ = told_tx.send(cause.to_string());
        })),
        ..Default::default()
    };
    let (j, _) = Journal::open_with(dir.path(), opts).unwrap();
    let h = j.handle();
    let seq = h.append(&one(1)).unwrap();
    assert!(h.wait_durable(seq, Duration::from_secs(10)));
    j.shutdown();
    assert_eq!(told.try_recv().ok(), None);
}
