//! The power-loss simulator shared by `powerloss` and `faults`: a
//! [`FileOpHook`] that records what the store does to its files (and can
//! fail an operation, or stop the "process" after a write), the disk states
//! a power loss at each recorded point can leave, and the check that a
//! recovered state holds every acknowledged lease and nothing never written.
//!
//! The model of the disk: a file's bytes are durable up to its last
//! fsync/fdatasync; writes and truncations since may each be lost, kept, or
//! (writes) kept in part: cut at a 512-byte sector boundary, or with the file
//! grown but the new bytes zero (the size reached the disk, the data did
//! not). Creates, renames and removes are durable after the next fsync of
//! the directory; before it, any prefix of them may have reached the disk
//! (metadata in order, as ext4 and XFS journal it; a file's fsync does not
//! make its name durable).

use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{model_of, Model, T0};
use dhcp6d::protocol::{LeaseChanges, LeaseKind, LeaseOp, LeaseRecord};
use dhcp6d::store::{
    Durability, FileId, FileOp, FileOpHook, Journal, JournalHandle, JournalOptions, StateDir,
    StoreError, Verdict,
};

/// Where the simulated disk states are built: a tmpfs when there is one
/// (fsync costs nothing there, and thousands of states are recovered).
pub fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A fresh, empty directory under [`scratch_root`]; removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = scratch_root().join(format!(
            "dhcp6d-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        Scratch(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An operation that changes the disk, as recorded.
#[derive(Clone, Debug)]
pub enum Op {
    Create {
        name: String,
        file: FileId,
    },
    Open {
        name: String,
        file: FileId,
    },
    Write {
        file: FileId,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        file: FileId,
        len: u64,
    },
    Sync {
        file: FileId,
    },
    Rename {
        from: String,
        to: String,
    },
    Remove {
        name: String,
    },
    SyncDir,
}

impl Op {
    fn of(op: &FileOp<'_>) -> Option<Op> {
        Some(match *op {
            FileOp::Create { name, file } => Op::Create {
                name: name.into(),
                file,
            },
            FileOp::Open { name, file, .. } => Op::Open {
                name: name.into(),
                file,
            },
            FileOp::Write { file, offset, data } => Op::Write {
                file,
                offset,
                data: data.to_vec(),
            },
            FileOp::SetLen { file, len } => Op::SetLen { file, len },
            FileOp::Sync { file, .. } => Op::Sync { file },
            FileOp::Rename { from, to } => Op::Rename {
                from: from.into(),
                to: to.into(),
            },
            FileOp::Remove { name } => Op::Remove { name: name.into() },
            FileOp::SyncDir => Op::SyncDir,
            _ => return None,
        })
    }

    fn describe(&self) -> String {
        match self {
            Op::Write { file, offset, data } => {
                format!("write file#{file} @{offset} len {}", data.len())
            }
            other => format!("{other:?}"),
        }
    }
}

/// The kinds of operation a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    List,
    Open,
    Create,
    Read,
    Write,
    SetLen,
    Sync,
    Rename,
    Remove,
    SyncDir,
}

pub const KINDS: [Kind; 10] = [
    Kind::List,
    Kind::Open,
    Kind::Create,
    Kind::Read,
    Kind::Write,
    Kind::SetLen,
    Kind::Sync,
    Kind::Rename,
    Kind::Remove,
    Kind::SyncDir,
];

fn kind(op: &FileOp<'_>) -> Option<Kind> {
    Some(match op {
        FileOp::List => Kind::List,
        FileOp::Open { .. } => Kind::Open,
        FileOp::Create { .. } => Kind::Create,
        FileOp::Read { .. } => Kind::Read,
        FileOp::Write { .. } => Kind::Write,
        FileOp::SetLen { .. } => Kind::SetLen,
        FileOp::Sync { .. } => Kind::Sync,
        FileOp::Rename { .. } => Kind::Rename,
        FileOp::Remove { .. } => Kind::Remove,
        FileOp::SyncDir => Kind::SyncDir,
        _ => return None,
    })
}

/// How an injected fault fails its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The operation fails with this errno and does nothing.
    Errno(i32),
    /// A write: half its bytes reach the file, then ENOSPC (and the next
    /// write fails too, as on a full disk).
    Torn,
}

/// Fail the `nth` (1-based) operation of `kind` of the whole run.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub kind: Kind,
    pub nth: usize,
    pub failure: Failure,
}

/// How the simulated process dies at a `Step::Kill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// After the next write reached the file (its fdatasync never runs).
    AfterWrite,
    /// In the middle of the next write: half of it reaches the file.
    InWrite,
}

/// What every session of a run recorded.
#[derive(Default)]
struct LogInner {
    ops: Vec<Op>,
    /// `acked[k]`: appends acknowledged while `k` operations had run.
    acked: Vec<usize>,
    ack: Option<Box<dyn Fn() -> usize + Send>>,
    counts: HashMap<Kind, usize>,
    fault: Option<Fault>,
    fault_fired: bool,
    /// Operations recorded when the fault fired.
    fault_at: Option<usize>,
    fail_next_write: bool,
    /// Record no fsync/fdatasync: the disk of a store that never syncs.
    forget_syncs: bool,
}

#[derive(Default)]
pub struct Log(Mutex<LogInner>);

impl LogInner {
    fn note_ack(&mut self) {
        let a = self.ack.as_ref().map_or(0, |f| f());
        let k = self.ops.len();
        if self.acked.len() <= k {
            let last = self.acked.last().copied().unwrap_or(0);
            self.acked.resize(k + 1, last);
        }
        self.acked[k] = self.acked[k].max(a);
    }
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Operations of each kind so far.
    pub fn counts(&self) -> HashMap<Kind, usize> {
        self.lock().counts.clone()
    }

    /// Operations recorded when the fault fired, if it did.
    pub fn fault_at(&self) -> Option<usize> {
        self.lock().fault_at
    }

    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// Appends acknowledged at each crash point `0..=ops.len()`.
    pub fn acked(&self) -> Vec<usize> {
        let mut g = self.lock();
        g.note_ack();
        g.acked.clone()
    }

    fn set_ack(&self, f: Option<Box<dyn Fn() -> usize + Send>>) {
        let mut g = self.lock();
        g.note_ack();
        g.ack = f;
    }
}

/// The hook of one session (one "process"): records into the run's log,
/// injects the run's fault, and dies when told.
struct SessionHook {
    log: Arc<Log>,
    kill: Mutex<Option<Kill>>,
    killed: AtomicBool,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl FileOpHook for SessionHook {
    fn before(&self, op: &FileOp<'_>) -> Verdict {
        if self.killed.load(Ordering::Acquire) {
            return Verdict::Fail(errno(libc::EIO));
        }
        let mut g = self.log.lock();
        g.note_ack();
        let Some(k) = kind(op) else {
            return Verdict::Proceed;
        };
        let n = {
            let c = g.counts.entry(k).or_default();
            *c += 1;
            *c
        };
        if k == Kind::Write && std::mem::take(&mut g.fail_next_write) {
            return Verdict::Fail(errno(libc::ENOSPC));
        }
        if let Some(f) = g.fault {
            if !g.fault_fired && f.kind == k && f.nth == n {
                g.fault_fired = true;
                g.fault_at = Some(g.ops.len());
                return match f.failure {
                    Failure::Errno(e) => Verdict::Fail(errno(e)),
                    Failure::Torn => {
                        g.fail_next_write = true;
                        match op {
                            FileOp::Write { data, .. } => Verdict::Torn {
                                keep: data.len() / 2,
                                error: errno(libc::ENOSPC),
                            },
                            _ => Verdict::Fail(errno(libc::ENOSPC)),
                        }
                    }
                };
            }
        }
        if k == Kind::Write {
            if let FileOp::Write { data, .. } = op {
                match *self.kill.lock().unwrap() {
                    Some(Kill::InWrite) => {
                        return Verdict::Torn {
                            keep: data.len() / 2,
                            error: errno(libc::EIO),
                        }
                    }
                    Some(Kill::AfterWrite) | None => {}
                }
            }
        }
        Verdict::Proceed
    }

    fn done(&self, op: &FileOp<'_>) {
        let mut g = self.log.lock();
        g.note_ack();
        if let Some(rec) = Op::of(op).filter(|o| !(g.forget_syncs && matches!(o, Op::Sync { .. })))
        {
            g.ops.push(rec);
            g.note_ack();
        }
        drop(g);
        if matches!(op, FileOp::Write { .. }) && self.kill.lock().unwrap().is_some() {
            self.killed.store(true, Ordering::Release);
        }
    }
}

/// A hook that counts (and records) every file operation and injects
/// `fault`, for store code other than the workload's (`repair`).
pub fn fault_hook(fault: Option<Fault>) -> (Arc<Log>, Arc<dyn FileOpHook>) {
    let log = Arc::new(Log::default());
    log.lock().fault = fault;
    let hook = Arc::new(SessionHook {
        log: log.clone(),
        kill: Mutex::new(None),
        killed: AtomicBool::new(false),
    });
    (log, hook)
}

/// A binding for client `c`, its lifetimes `t` seconds later than the first.
pub fn lease(op: LeaseOp, c: u64, t: u64) -> LeaseRecord {
    let addr = std::net::Ipv6Addr::from(
        0x2001_0db8_0005_0000_0000_0000_0000_0000u128 | u128::from(c * 4099 + 3),
    );
    let duid = [0, 1, 0, 1, 0x11, 0x22, 0x33, 0x44, 0, 0, 0xa, 0xb, c as u8];
    LeaseRecord::new(
        op,
        LeaseKind::Na,
        addr,
        128,
        c as u32,
        &duid,
        T0 + 3000 + t,
        T0 + 4000 + t,
    )
    .expect("short DUID")
}

/// A prefix delegated to client `c`.
pub fn prefix(op: LeaseOp, c: u64) -> LeaseRecord {
    let addr = std::net::Ipv6Addr::from(
        0x2001_0db8_0600_0000_0000_0000_0000_0000u128 | (u128::from(c) << 72),
    );
    let duid = [0, 1, 0, 1, 0x11, 0x22, 0x33, 0x44, 0, 0, 0xa, 0xb, c as u8];
    LeaseRecord::new(op, LeaseKind::Pd, addr, 56, 7, &duid, T0 + 500, T0 + 900).expect("short DUID")
}

/// One step of a workload.
#[derive(Clone, Debug)]
pub enum Step {
    /// Append these records as one message; wait for the acknowledgement.
    Append(Vec<LeaseRecord>),
    /// Snapshot the bindings (every record appended so far) and compact.
    Snapshot,
    /// The process dies in the next append's write (`Kill`), and starts
    /// again. No later message may touch these records' keys (the check
    /// takes every message as applied in order, and this one may be lost).
    Kill(Kill, Vec<LeaseRecord>),
}

/// The workload both tests drive: two sessions, a process death between
/// them, three snapshots (so compaction removes files), renewals, a
/// release, a decline, an expiry, messages of one and of two records.
pub fn workload(kill: Kill) -> Vec<Step> {
    use LeaseOp::*;
    let a = |r: Vec<LeaseRecord>| Step::Append(r);
    vec![
        a(vec![lease(Commit, 0, 0)]),
        a(vec![lease(Commit, 1, 0), prefix(Commit, 1)]),
        a(vec![lease(Commit, 2, 0)]),
        a(vec![lease(Commit, 3, 0), prefix(Commit, 3)]),
        a(vec![lease(Release, 1, 0)]),
        a(vec![lease(Commit, 2, 100)]),
        Step::Snapshot,
        a(vec![lease(Commit, 4, 0)]),
        a(vec![lease(Decline, 5, 0)]),
        a(vec![lease(Expire, 3, 0), prefix(Release, 3)]),
        a(vec![lease(Commit, 0, 200)]),
        Step::Snapshot,
        a(vec![lease(Commit, 6, 0), lease(Commit, 7, 0)]),
        a(vec![lease(Commit, 8, 0)]),
        Step::Kill(kill, vec![lease(Commit, 9, 0), lease(Commit, 2, 300)]),
        a(vec![lease(Commit, 10, 0)]),
        a(vec![lease(Release, 0, 200), lease(Commit, 11, 0)]),
        Step::Snapshot,
        a(vec![lease(Commit, 12, 0)]),
        a(vec![lease(Commit, 4, 400)]),
    ]
}

/// What a run of a workload did.
pub struct Run {
    pub log: Arc<Log>,
    /// Every message appended, in order (acknowledged or not).
    pub appends: Vec<Vec<LeaseRecord>>,
    /// Messages acknowledged by the end.
    pub acked: usize,
    /// Messages a process died writing (never acknowledged).
    pub lost: Vec<usize>,
    /// Refusals seen on the way (open, snapshot), for the fault tests.
    pub refusals: Vec<StoreError>,
    /// Messages never acknowledged though the journal had taken them (and
    /// no death was asked for).
    pub unacknowledged: Vec<usize>,
    /// The writer thread died.
    pub writer_died: bool,
}

struct Session {
    journal: Journal,
    hook: Arc<SessionHook>,
    handle: JournalHandle,
    /// The bindings as the server holds them: what it recovered, and every
    /// message appended since (what a snapshot walks).
    table: Model,
}

const PATIENCE: Duration = Duration::from_secs(3);

/// `open` until the state directory's lock is free. Other tests of this
/// binary fork children (kill9, state_dir); between its fork and its exec a
/// child holds a copy of every descriptor, the lock file's too, so just
/// after a journal shut down its lock can still be held for a moment.
pub fn until_unlocked<T>(mut open: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let until = Instant::now() + PATIENCE;
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

fn open(dir: &Path, run: &mut Run, died: &Arc<AtomicBool>) -> Option<Session> {
    // A fault while opening is a refusal; the next start (the fault is spent)
    // must work.
    for _ in 0..3 {
        let hook = Arc::new(SessionHook {
            log: run.log.clone(),
            kill: Mutex::new(None),
            killed: AtomicBool::new(false),
        });
        let d = died.clone();
        let opts = JournalOptions {
            retry_interval: Duration::from_millis(2),
            gather_window: Duration::ZERO,
            on_writer_death: Some(Arc::new(move |_: &str| d.store(true, Ordering::Release))),
            ..Default::default()
        };
        let opened = until_unlocked(|| {
            StateDir::open(dir, None)
                .map(|sd| sd.with_hook(hook.clone()))
                .and_then(|sd| Journal::open_in(sd, opts.clone()))
        });
        match opened {
            Ok((journal, recovered)) => {
                let handle = journal.handle();
                // The session's seqs count its messages from 1.
                let (h, base) = (handle.clone(), run.appends.len() - run.lost.len());
                run.log
                    .set_ack(Some(Box::new(move || base + h.durable_seq() as usize)));
                return Some(Session {
                    journal,
                    hook,
                    handle,
                    table: model_of(&recovered),
                });
            }
            Err(e) => run.refusals.push(e),
        }
    }
    None
}

/// Append `records` (retrying while the journal refuses) and return its seq.
fn append(s: &Session, records: &[LeaseRecord]) -> Option<u64> {
    let mut ch = LeaseChanges::default();
    for r in records {
        ch.push(*r);
    }
    let until = Instant::now() + PATIENCE;
    loop {
        if let Some(seq) = s.handle.append(&ch) {
            return Some(seq);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drive `steps` against `dir` with `fault` injected; every file operation
/// is recorded.
pub fn drive(dir: &Path, steps: &[Step], fault: Option<Fault>) -> Run {
    drive_with(dir, steps, fault, false)
}

/// [`drive`]; `forget_syncs`: record the run as if no file were ever synced.
pub fn drive_with(dir: &Path, steps: &[Step], fault: Option<Fault>, forget_syncs: bool) -> Run {
    let log = Arc::new(Log::default());
    log.lock().fault = fault;
    log.lock().forget_syncs = forget_syncs;
    let mut run = Run {
        log,
        appends: Vec::new(),
        acked: 0,
        lost: Vec::new(),
        refusals: Vec::new(),
        unacknowledged: Vec::new(),
        writer_died: false,
    };
    let died = Arc::new(AtomicBool::new(false));
    let mut session = open(dir, &mut run, &died);
    for step in steps {
        let Some(s) = &mut session else { break };
        match step {
            Step::Append(records) => {
                let Some(seq) = append(s, records) else {
                    run.unacknowledged.push(run.appends.len());
                    continue;
                };
                run.appends.push(records.clone());
                records.iter().for_each(|r| s.table.apply(r));
                if !s.handle.wait_durable(seq, PATIENCE) {
                    run.unacknowledged.push(run.appends.len() - 1);
                }
            }
            Step::Snapshot => {
                let table = &s.table;
                if let Err(e) = s.handle.snapshot(|emit| table.0.values().for_each(emit)) {
                    run.refusals.push(e);
                }
            }
            Step::Kill(how, records) => {
                *s.hook.kill.lock().unwrap() = Some(*how);
                if append(s, records).is_some() {
                    run.lost.push(run.appends.len());
                    run.appends.push(records.clone());
                }
                let until = Instant::now() + PATIENCE;
                while !s.hook.killed.load(Ordering::Acquire) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(
                    s.hook.killed.load(Ordering::Acquire),
                    "the kill never came: no write after it was armed"
                );
                let s = session.take().expect("a session");
                run.log.set_ack(None);
                drop(s.handle);
                s.journal.shutdown();
                session = open(dir, &mut run, &died);
            }
        }
    }
    if let Some(s) = session {
        run.log.set_ack(None);
        drop(s.handle);
        s.journal.shutdown();
    }
    run.acked = *run.log.acked().last().unwrap_or(&0);
    run.writer_died = died.load(Ordering::Acquire);
    run
}

mod disk;

pub use disk::{check_dir, simulate, simulate_points};
