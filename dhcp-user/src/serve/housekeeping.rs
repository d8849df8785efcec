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

/// One log line when the table reaches `limits.max_bindings` and one when
/// it drops below again (checked every sweep; each refused IA is counted at
/// once in `refused.max_bindings`). Returns whether the state changed.
fn log_table_full(full: &mut bool, held: u64, max: Option<u64>) -> bool {
    let now_full = max.is_some_and(|m| held >= m);
    if now_full == *full {
        return false;
    }
    *full = now_full;
    match max {
        Some(max) if now_full => tracing::warn!(
            held,
            max,
            "the binding table holds limits.max_bindings: new bindings get NoAddrsAvail / NoPrefixAvail (counted in refused.max_bindings) until some end"
        ),
        _ => tracing::info!(held, "the binding table is below limits.max_bindings again"),
    }
    true
}

fn run(handler: &Server, journal: &JournalHandle, stop: &AtomicBool, refresh_addresses: &dyn Fn()) {
    let mut last_snapshot = Instant::now();
    let mut records_at_snapshot = journal.stats().records;
    let mut expired = Vec::new();
    let mut full = false;
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
        let (na, pd) = server.lease_counts();
        log_table_full(&mut full, na + pd, server.policy().max_bindings());
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

#[cfg(test)]
mod tests {
    use super::log_table_full;

    #[test]
    fn the_table_full_line_is_logged_once_per_transition() {
        let mut full = false;
        assert!(!log_table_full(&mut full, 10, None), "no cap, never full");
        assert!(!log_table_full(&mut full, 9, Some(10)));
        assert!(log_table_full(&mut full, 10, Some(10)), "reached");
        assert!(
            !log_table_full(&mut full, 12, Some(10)),
            "still full: no new line"
        );
        assert!(log_table_full(&mut full, 9, Some(10)), "below again");
        assert!(!log_table_full(&mut full, 3, Some(10)));
        assert!(log_table_full(&mut full, 10, Some(10)));
        assert!(
            log_table_full(&mut full, 10, None),
            "the cap was removed by a reload"
        );
    }
}
