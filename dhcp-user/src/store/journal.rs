//! `Journal` (owns the writer thread and the state-dir lock) and
//! `JournalHandle` (what workers, the control socket and the snapshot task use).

use std::fmt;
use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender, TrySendError};
use serde::Serialize;

use super::dirfd::StateDir;
use super::layout::{self, StateDirLock};
use super::recover::{self, Recovered};
use super::signal::{DurableSignal, Signals};
use super::snapshot::{self, SnapshotInfo};
use super::writer::{self, Ctl, Msg, Writer};
use super::{Durability, StoreError};
use crate::protocol::{LeaseChanges, LeaseRecord};

/// How the journal makes a file durable; `File::sync_data` (fdatasync) unless
/// a test or benchmark swaps it.
pub type SyncFn = Arc<dyn Fn(&File) -> io::Result<()> + Send + Sync>;

/// Told, on the writer thread, that the writer died (panicked, or stopped
/// unasked) and why, after the journal stopped taking appends.
pub type WriterDeathFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Tuning knobs; the defaults suit a server.
#[derive(Clone)]
pub struct JournalOptions {
    /// Pause between retries while writes fail.
    pub retry_interval: Duration,
    /// Most records in one group commit (1 = one fsync per record).
    pub max_batch_records: usize,
    /// How long the writer lets records gather after the first one of a
    /// group arrives at an idle writer, before it writes and syncs them.
    /// Zero: sync at once. Longer: fewer fdatasyncs (and writer wake-ups)
    /// per lease at moderate rates, at the price of that much more latency
    /// for a Reply; a Reply still leaves only after its record is synced.
    pub gather_window: Duration,
    /// Records that may wait in the channel to the writer.
    pub queue_capacity: usize,
    /// Start a new segment past this size.
    pub segment_max_bytes: u64,
    /// The sync call.
    pub sync: SyncFn,
    /// Called if the writer thread dies. Nothing restarts it (its encoder
    /// dictionary and segment position went with it): the journal refuses
    /// every append from then on, and `serve` stops the process.
    pub on_writer_death: Option<WriterDeathFn>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            retry_interval: Duration::from_secs(1),
            max_batch_records: 1 << 16,
            // Measured at 4,000 leases/s on a disk that syncs in ~0.1 ms: it
            // took groups from 1.3-1.6 to 10-12 leases per fdatasync and the
            // server's CPU per lease down by a third, for about +1.5 ms on the
            // exchange's p50 and no visible change at p99 (README, profile).
            gather_window: Duration::from_millis(2),
            queue_capacity: 1 << 14,
            segment_max_bytes: 256 << 20,
            sync: Arc::new(|f: &File| f.sync_data()),
            on_writer_death: None,
        }
    }
}

impl fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalOptions")
            .field("retry_interval", &self.retry_interval)
            .field("max_batch_records", &self.max_batch_records)
            .field("gather_window", &self.gather_window)
            .field("queue_capacity", &self.queue_capacity)
            .field("segment_max_bytes", &self.segment_max_bytes)
            .finish_non_exhaustive()
    }
}

/// Counters for the control socket's `journal` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JournalStats {
    /// Records on disk since start.
    pub records: u64,
    /// Group commits (each one fdatasync).
    pub fsyncs: u64,
    /// Journal bytes written since start.
    pub bytes: u64,
    /// Failed write or sync attempts.
    pub write_failures: u64,
    /// Appends refused because the journal was not writable.
    pub rejected: u64,
    /// Appends refused because the queue to the writer was full (the disk
    /// is behind): the message is dropped instead of stopping its worker.
    pub queue_full: u64,
    /// Whether appends are accepted.
    pub healthy: bool,
    /// Highest durable sequence number.
    pub durable_seq: u64,
    /// Snapshots written since start.
    pub snapshots: u64,
    /// Duration of the last group commit (write + sync), microseconds.
    pub last_commit_us: u64,
}

/// State shared by the handles and the writer.
pub(crate) struct Shared {
    pub(crate) dir: Arc<StateDir>,
    pub(crate) next_seq: AtomicU64,
    pub(crate) durable: AtomicU64,
    pub(crate) healthy: AtomicBool,
    pub(crate) closed: AtomicBool,
    pub(crate) records: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) write_failures: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) last_commit_us: AtomicU64,
    waiters: Mutex<()>,
    durable_cv: Condvar,
    snapshot_running: Mutex<()>,
    signals: Signals,
}

impl Shared {
    pub(crate) fn notify_durable(&self) {
        // Taking the lock orders this after a waiter's check-then-wait.
        let _g = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        self.durable_cv.notify_all();
        self.signals.notify();
    }
}

/// The open journal: holds the state-dir lock and the writer thread. Dropping
/// it writes what is queued and stops the writer.
pub struct Journal {
    handle: JournalHandle,
    thread: Option<JoinHandle<()>>,
    _lock: StateDirLock,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.handle.shared.dir.path())
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Lock `dir`, recover its bindings, start a new segment and the writer.
    /// The directory and its files must be owned by root or by this
    /// process's user ([`StateDir::open`]).
    pub fn open(dir: &Path) -> Result<(Journal, Recovered), StoreError> {
        Self::open_with(dir, JournalOptions::default())
    }

    /// [`Journal::open`] with explicit options.
    pub fn open_with(dir: &Path, opts: JournalOptions) -> Result<(Journal, Recovered), StoreError> {
        Self::open_in(StateDir::open(dir, None)?, opts)
    }

    /// [`Journal::open_with`] on a state directory already opened, e.g. with
    /// `server.user` among its allowed owners.
    pub fn open_in(
        dir: StateDir,
        opts: JournalOptions,
    ) -> Result<(Journal, Recovered), StoreError> {
        let dir = Arc::new(dir);
        let lock = StateDirLock::acquire(&dir)?;
        let started = Instant::now();
        let (recovered, max_gen) = recover::recover(&dir)?;
        let gen = max_gen + 1;
        // A full disk must not keep the server down: it starts unhealthy
        // (no acknowledgements) and the writer retries creating the segment.
        let file = match writer::create_segment(&dir, gen) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(error = %e, segment = %layout::segment_path(&dir, gen).display(), "cannot start a journal segment: not acknowledging leases until it works");
                None
            }
        };
        tracing::info!(
            bindings = recovered.len(),
            snapshot = ?recovered.report.snapshot_gen,
            journal_records = recovered.report.journal_records,
            bytes_dropped = recovered.report.bytes_dropped,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "lease store recovered"
        );
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            next_seq: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            healthy: AtomicBool::new(file.is_some()),
            closed: AtomicBool::new(false),
            records: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            write_failures: AtomicU64::new(u64::from(file.is_none())),
            rejected: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            last_commit_us: AtomicU64::new(0),
            waiters: Mutex::new(()),
            durable_cv: Condvar::new(),
            snapshot_running: Mutex::new(()),
            signals: Signals::default(),
        });
        let on_death = opts.on_writer_death.clone();
        let (data_tx, data_rx) = bounded(opts.queue_capacity.max(1));
        let (ctl_tx, ctl_rx) = bounded(16);
        let w = Writer {
            dir: dir.clone(),
            file,
            gen,
            stray: None,
            data: data_rx,
            ctl: ctl_rx,
            shared: shared.clone(),
            opts,
        };
        let watched = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dhcp6d-journal".into())
            .spawn(move || {
                let ended = catch_unwind(AssertUnwindSafe(|| w.run()));
                writer_ended(&watched, ended, on_death.as_deref());
            })
            .map_err(|e| StoreError::io(dir.path(), e))?;
        let handle = JournalHandle {
            shared,
            data: data_tx,
            ctl: ctl_tx,
        };
        Ok((
            Journal {
                handle,
                thread: Some(thread),
                _lock: lock,
            },
            recovered,
        ))
    }

    /// The state directory the journal holds the lock of (for the server
    /// DUID and the privilege drop).
    pub fn state_dir(&self) -> &StateDir {
        &self.handle.shared.dir
    }

    /// A handle for workers and background tasks.
    pub fn handle(&self) -> JournalHandle {
        self.handle.clone()
    }

    /// Write everything queued, stop the writer, release the lock.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shared.closed.store(true, Ordering::Release);
            let _ = self.handle.ctl.send(Ctl::Shutdown);
            let _ = t.join();
            self.handle.shared.notify_durable();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread returned (`Ok`) or panicked. Unless it was asked to
/// stop, it died: refuse appends at once (nothing can become durable any
/// more), wake whoever waits for durability, log it and tell `on_death`.
fn writer_ended(
    shared: &Shared,
    ended: std::thread::Result<()>,
    on_death: Option<&(dyn Fn(&str) + Send + Sync)>,
) {
    let cause = match ended {
        Ok(()) if shared.closed.load(Ordering::Acquire) => return,
        Ok(()) => "stopped without being asked to".to_string(),
        Err(panic) => format!("panicked: {}", crate::fault::panic_message(&*panic)),
    };
    shared.healthy.store(false, Ordering::Release);
    shared.closed.store(true, Ordering::Release);
    shared.notify_durable();
    tracing::error!(
        "journal writer thread died ({cause}): no lease is acknowledged any more; records it had not synced were never acknowledged"
    );
    if let Some(f) = on_death {
        f(&cause);
    }
}

/// Cheap to clone; one per worker.
#[derive(Clone)]
pub struct JournalHandle {
    shared: Arc<Shared>,
    data: Sender<Msg>,
    ctl: Sender<Ctl>,
}

impl fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalHandle")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Returned by [`JournalHandle::hold_writer`]; the writer resumes when it drops.
#[doc(hidden)]
pub struct WriterHold {
    _release: Sender<()>,
}

impl JournalHandle {
    /// Counters, read with relaxed loads.
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            records: r(&s.records),
            fsyncs: r(&s.fsyncs),
            bytes: r(&s.bytes),
            write_failures: r(&s.write_failures),
            rejected: r(&s.rejected),
            queue_full: r(&s.queue_full),
            healthy: s.healthy.load(Ordering::Relaxed),
            durable_seq: r(&s.durable),
            snapshots: r(&s.snapshots),
            last_commit_us: r(&s.last_commit_us),
        }
    }

    /// Whether appends are accepted (false while writes fail).
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// Block until `durable_seq() >= seq` or `timeout` passes; true when durable.
    /// For callers that have nothing else to do meanwhile (socket mode, tests).
    pub fn wait_durable(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let s = &self.shared;
        let mut g = s.waiters.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if s.durable.load(Ordering::Acquire) >= seq {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || s.closed.load(Ordering::Acquire) {
                return false;
            }
            g = s
                .durable_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Snapshot the live bindings without pausing workers, then compact the
    /// journal. `for_each` must call its argument once per live binding, e.g.
    /// `handle.snapshot(|emit| core.for_each_binding(emit))`. One snapshot runs
    /// at a time; a second caller waits for the first.
    pub fn snapshot<F>(&self, for_each: F) -> Result<SnapshotInfo, StoreError>
    where
        F: FnOnce(&mut dyn FnMut(&LeaseRecord)),
    {
        let s = &self.shared;
        let _one = s.snapshot_running.lock().unwrap_or_else(|p| p.into_inner());
        let (tx, rx) = bounded(1);
        self.ctl
            .send(Ctl::Rotate(tx))
            .map_err(|_| StoreError::Closed)?;
        let gen = rx
            .recv()
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| StoreError::io(s.dir.path(), e))?;
        let info = snapshot::write(&s.dir, gen, for_each)?;
        snapshot::compact(&s.dir)?;
        s.snapshots.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            gen,
            bindings = info.bindings,
            bytes = info.bytes,
            "snapshot written"
        );
        Ok(info)
    }

    /// Stop the writer until the returned guard drops (tests use it to queue
    /// records from several threads and see them land in one group commit).
    #[doc(hidden)]
    pub fn hold_writer(&self) -> WriterHold {
        let (held_tx, held_rx) = bounded(1);
        let (release_tx, release_rx) = bounded(0);
        let sent = self.ctl.send(Ctl::Hold {
            held: held_tx,
            release: release_rx,
        });
        if sent.is_ok() {
            let _ = held_rx.recv();
        }
        WriterHold {
            _release: release_tx,
        }
    }
}

/// The rest of an append started by [`JournalHandle::append_paused`].
#[cfg(feature = "testing")]
#[doc(hidden)]
pub struct PausedAppend {
    data: Sender<Msg>,
    last: Msg,
}

#[cfg(feature = "testing")]
impl PausedAppend {
    /// Send the last record; returns the append's seq.
    pub fn finish(self) -> u64 {
        let seq = self.last.seq;
        self.data.send(self.last).expect("writer alive");
        seq
    }
}

impl JournalHandle {
    /// [`Durability::append`] stopped before its last record, as a worker
    /// descheduled between two sends would be (tests: one message's records
    /// must land in one batch). `changes` holds at least two records.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn append_paused(&self, changes: &LeaseChanges) -> PausedAppend {
        let n = changes.len();
        assert!(n >= 2, "an append of one record cannot be split");
        let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let msg = |i: usize, rec: &LeaseRecord| Msg {
            seq,
            first: i == 0,
            last: i + 1 == n,
            rec: *rec,
        };
        let recs: Vec<&LeaseRecord> = changes.iter().collect();
        for (i, rec) in recs[..n - 1].iter().enumerate() {
            self.data.send(msg(i, rec)).expect("writer alive");
        }
        PausedAppend {
            data: self.data.clone(),
            last: msg(n - 1, recs[n - 1]),
        }
    }
}

impl Durability for JournalHandle {
    fn append(&self, changes: &LeaseChanges) -> Option<u64> {
        let s = &self.shared;
        if changes.is_empty() {
            // Nothing to persist: durable as of now.
            return Some(0);
        }
        if !s.healthy.load(Ordering::Acquire) || s.closed.load(Ordering::Acquire) {
            s.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let n = changes.len();
        // A full queue means the disk is behind (a stalled fdatasync). Waiting
        // for room would stop this worker, and with it the Advertise, Confirm
        // and Information-request replies that need no disk: refuse this
        // message instead (its client retransmits), and count it. Checked
        // before a seq is taken: a seq must reach the writer whole.
        let room = self
            .data
            .capacity()
            .map_or(usize::MAX, |c| c.saturating_sub(self.data.len()));
        if room < n {
            s.queue_full.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Seqs may reach the writer out of order; it publishes only the
        // highest seq below which none is missing.
        let seq = s.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        for (i, rec) in changes.iter().enumerate() {
            let m = Msg {
                seq,
                first: i == 0,
                last: i + 1 == n,
                rec: *rec,
            };
            // Another worker may have taken the room since the check: then
            // wait for it (one message's records at most), since a seq the
            // writer never sees whole would hold back every later one.
            let sent = match self.data.try_send(m) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(m)) => self.data.send(m).map_err(|_| ()),
                Err(TrySendError::Disconnected(_)) => Err(()),
            };
            if sent.is_err() {
                s.rejected.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        Some(seq)
    }

    fn durable_seq(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    fn subscribe(&self) -> Option<Arc<DurableSignal>> {
        self.shared.signals.subscribe()
    }
}
