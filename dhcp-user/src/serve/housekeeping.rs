//! Background upkeep off the packet path: expire bindings whose valid
//! lifetime ended (journalled as Expire records) and snapshot the lease
//! table now and then so recovery stays short; and, every sweep, re-read the
//! interfaces' addresses into the XDP program (what it takes as ours).
//!
//! If the thread panics the process stops (exit 1, [`super::deaths`]); it is
//! not restarted in place. Its own state is only two counters, but what it
//! works on (the binding table, the state directory) outlives a restart, so
//! a sweep or snapshot that panicked once would most likely panic at every
//! retry, and in between nothing expires (pools fill with ended leases) and
//! the journal is never compacted, while the server answers as if healthy.
//! A new process rebuilds the table from disk and makes the failure visible
//! to the service manager and whoever watches it.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::protocol::{LeaseChanges, Timestamp};
use crate::store::{Durability, JournalHandle};

use super::deaths::Deaths;
use crate::fault::{self, panic_message, Point};
use crate::protocol::Server;

/// How often expired bindings are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Snapshot when this many journal records were written since the last one …
const SNAPSHOT_RECORDS: u64 = 1_000_000;
/// … or this much time passed with at least one record.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(3600);

/// The running upkeep thread.
pub struct Housekeeping {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Housekeeping {
    /// Stop and join.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Start the thread; its death is reported to `deaths`.
pub fn start(
    handler: Arc<Server>,
    journal: JournalHandle,
    deaths: Arc<Deaths>,
    refresh_addresses: Box<dyn Fn() + Send>,
) -> io::Result<Housekeeping> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("dhcp6d-upkeep".into())
        .spawn(move || {
            let ended = catch_unwind(AssertUnwindSafe(|| {
                run(&handler, &journal, &flag, &*refresh_addresses)
            }));
            if let Err(panic) = ended {
                let cause = format!("panicked: {}", panic_message(&*panic));
                deaths.report("housekeeping", &cause);
            }
        })?;
    Ok(Housekeeping {
        stop,
        thread: Some(thread),
    })
}

fn run(handler: &Server, journal: &JournalHandle, stop: &AtomicBool, refresh_addresses: &dyn Fn()) {
    let mut last_snapshot = Instant::now();
    let mut records_at_snapshot = journal.stats().records;
    let mut expired = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(SWEEP_EVERY);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        fault::hit(Point::Housekeeping);
        // No netlink listener: a SLAAC address that arrived after start is
        // taken by the XDP program within one sweep.
        refresh_addresses();
        let now = super::unix_now();
        let server = handler;
        expired.clear();
        server.sweep(Timestamp(now), &mut expired);
        let mut batch = LeaseChanges::default();
        for rec in &expired {
            if !batch.push(*rec) {
                let _ = journal.append(&batch);
                batch.clear();
                batch.push(*rec);
            }
        }
        if !batch.is_empty() {
            let _ = journal.append(&batch);
        }
        if !expired.is_empty() {
            tracing::debug!(count = expired.len(), "expired bindings swept");
        }
        let records = journal.stats().records;
        let since = records.saturating_sub(records_at_snapshot);
        if since >= SNAPSHOT_RECORDS || (since > 0 && last_snapshot.elapsed() >= SNAPSHOT_EVERY) {
            match journal.snapshot(|emit| server.for_each_binding(|r| emit(r))) {
                Ok(_) => {
                    records_at_snapshot = journal.stats().records;
                    last_snapshot = Instant::now();
                }
                Err(e) => tracing::error!("snapshot failed: {e}"),
            }
        }
    }
}
