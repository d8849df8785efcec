//! The disk a recorded run leaves: what is durable and what is not at each
//! operation, every state a power loss there can leave (the model is in
//! the parent module's doc), and the check of what start-up recovers from
//! each.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::{until_unlocked, Op, Run, Scratch};
use crate::common::{key, model_of, Key, Model};
use dhcp6d::protocol::LeaseRecord;
use dhcp6d::store::{FileId, Journal};

/// A file's history since its last sync.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, usize),
    Rename(String, String),
    Remove(String),
}

/// The disk as the recorded operations left it, durable and not.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    handles: HashMap<FileId, usize>,
    durable: BTreeMap<String, usize>,
    pending: Vec<DirOp>,
    current: BTreeMap<String, usize>,
}

fn apply_dir(ns: &mut BTreeMap<String, usize>, op: &DirOp) {
    match op {
        DirOp::Link(name, ino) => {
            ns.insert(name.clone(), *ino);
        }
        DirOp::Rename(from, to) => {
            if let Some(ino) = ns.remove(from) {
                ns.insert(to.clone(), ino);
            }
        }
        DirOp::Remove(name) => {
            ns.remove(name);
        }
    }
}

fn write_at(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let (o, end) = (offset as usize, offset as usize + data.len());
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[o..end].copy_from_slice(data);
}

fn apply_pending(buf: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, data } => write_at(buf, *offset, data),
        Pending::SetLen(len) => buf.resize(*len as usize, 0),
    }
}

const SECTOR: u64 = 512;

/// What a power loss can leave of one file: (what, bytes) each.
type Variants = Vec<(String, Vec<u8>)>;

impl Disk {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Create { name, file } => {
                self.inodes.push(Inode::default());
                let ino = self.inodes.len() - 1;
                self.handles.insert(*file, ino);
                let d = DirOp::Link(name.clone(), ino);
                apply_dir(&mut self.current, &d);
                self.pending.push(d);
            }
            Op::Open { name, file } => {
                let ino = *self
                    .current
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} opened but not in the model"));
                self.handles.insert(*file, ino);
            }
            Op::Write { file, offset, data } => {
                self.inodes[self.handles[file]]
                    .pending
                    .push(Pending::Write {
                        offset: *offset,
                        data: data.clone(),
                    });
            }
            Op::SetLen { file, len } => {
                self.inodes[self.handles[file]]
                    .pending
                    .push(Pending::SetLen(*len));
            }
            Op::Sync { file } => {
                let ino = &mut self.inodes[self.handles[file]];
                for p in std::mem::take(&mut ino.pending) {
                    apply_pending(&mut ino.durable, &p);
                }
            }
            Op::Rename { from, to } => {
                let d = DirOp::Rename(from.clone(), to.clone());
                apply_dir(&mut self.current, &d);
                self.pending.push(d);
            }
            Op::Remove { name } => {
                let d = DirOp::Remove(name.clone());
                apply_dir(&mut self.current, &d);
                self.pending.push(d);
            }
            Op::SyncDir => {
                self.durable = self.current.clone();
                self.pending.clear();
            }
        }
    }

    /// What a power loss now can leave of one file: (description, bytes).
    fn file_variants(&self, ino: usize) -> Variants {
        let i = &self.inodes[ino];
        let mut out = vec![("synced bytes only".to_string(), i.durable.clone())];
        let mut cur = i.durable.clone();
        for (n, p) in i.pending.iter().enumerate() {
            if let Pending::Write { offset, data } = p {
                let end = offset + data.len() as u64;
                if end > cur.len() as u64 {
                    let mut z = cur.clone();
                    z.resize(end as usize, 0);
                    out.push((format!("unsynced write {n} as zeros"), z));
                }
                let cuts: Vec<u64> = (offset / SECTOR + 1..)
                    .map(|s| s * SECTOR)
                    .take_while(|&b| b < end)
                    .collect();
                // A device without atomic sectors may tear it anywhere.
                let half = offset + data.len() as u64 / 2;
                let picks: BTreeMap<u64, ()> =
                    [cuts.first(), cuts.get(cuts.len() / 2), cuts.last()]
                        .into_iter()
                        .flatten()
                        .chain((data.len() > 1).then_some(&half))
                        .map(|&c| (c, ()))
                        .collect();
                for &b in picks.keys() {
                    let mut t = cur.clone();
                    write_at(&mut t, *offset, &data[..(b - offset) as usize]);
                    out.push((
                        format!("unsynced write {n} torn at byte {b} of the file"),
                        t,
                    ));
                }
            }
            apply_pending(&mut cur, p);
            out.push((
                format!("first {} unsynced operations kept", n + 1),
                cur.clone(),
            ));
        }
        out
    }

    /// Every disk state a power loss now can leave (deduplicated by the
    /// caller), each with what it is.
    fn crash_states(&self, mut each: impl FnMut(String, BTreeMap<String, Vec<u8>>)) {
        for kept in 0..=self.pending.len() {
            let mut ns = self.durable.clone();
            self.pending[..kept]
                .iter()
                .for_each(|d| apply_dir(&mut ns, d));
            let dir_what = format!(
                "{kept} of {} unsynced directory changes",
                self.pending.len()
            );
            let files: Vec<(String, Variants)> = ns
                .iter()
                .map(|(name, &ino)| (name.clone(), self.file_variants(ino)))
                .collect();
            let product: usize = files.iter().map(|(_, v)| v.len()).product();
            let mut combos: Vec<Vec<usize>> = Vec::new();
            if product <= 64 {
                for mut n in 0..product {
                    combos.push(
                        files
                            .iter()
                            .map(|(_, v)| {
                                let c = n % v.len();
                                n /= v.len();
                                c
                            })
                            .collect(),
                    );
                }
            } else {
                // One file varies; the others are all synced-only or all kept.
                for (f, (_, v)) in files.iter().enumerate() {
                    for c in 0..v.len() {
                        for others_kept in [false, true] {
                            combos.push(
                                files
                                    .iter()
                                    .enumerate()
                                    .map(|(g, (_, w))| match (g == f, others_kept) {
                                        (true, _) => c,
                                        (false, false) => 0,
                                        (false, true) => w.len() - 1,
                                    })
                                    .collect(),
                            );
                        }
                    }
                }
            }
            for combo in combos {
                let mut state = BTreeMap::new();
                let mut what = dir_what.clone();
                for ((name, variants), &c) in files.iter().zip(&combo) {
                    let (w, bytes) = &variants[c];
                    if c != 0 {
                        what.push_str(&format!("; {name}: {w}"));
                    }
                    state.insert(name.clone(), bytes.clone());
                }
                each(what, state);
            }
        }
    }
}

/// Per key, the state after each message that touched it (in order).
struct History(HashMap<Key, Vec<(usize, Option<LeaseRecord>)>>);

impl History {
    fn new(appends: &[Vec<LeaseRecord>]) -> History {
        let mut m = Model::default();
        let mut h: HashMap<Key, Vec<(usize, Option<LeaseRecord>)>> = HashMap::new();
        for (j, msg) in appends.iter().enumerate() {
            for r in msg {
                m.apply(r);
                let k = key(r);
                let now = m.0.get(&k).copied();
                let v = h.entry(k).or_default();
                match v.last_mut() {
                    Some(last) if last.0 == j => last.1 = now,
                    _ => v.push((j, now)),
                }
            }
        }
        History(h)
    }

    /// Whether `got` is a state the store may recover when the messages
    /// `acked` says were acknowledged: for each key, the state after its
    /// last acknowledged message or after a later one (never an older
    /// state, never one no message made); `Err` says which key is wrong.
    fn allows(&self, got: &Model, acked: &dyn Fn(usize) -> bool) -> Result<(), String> {
        for k in got.0.keys() {
            if !self.0.contains_key(k) {
                return Err(format!("recovered a binding never written: {k:?}"));
            }
        }
        for (k, states) in &self.0 {
            let have = got.0.get(k).copied();
            let last_acked = states.iter().rposition(|(j, _)| acked(*j));
            let mut allowed: Vec<Option<LeaseRecord>> = match last_acked {
                Some(p) => states[p..].iter().map(|s| s.1).collect(),
                None => states.iter().map(|s| s.1).collect(),
            };
            if last_acked.is_none() {
                allowed.push(None);
            }
            if !allowed.contains(&have) {
                return Err(format!(
                    "key {k:?}: recovered {have:?}; the acknowledged state (message {}) is {:?}",
                    last_acked.map_or(0, |p| states[p].0),
                    last_acked.map(|p| states[p].1),
                ));
            }
        }
        Ok(())
    }
}

/// Recover the state in `files` with the real start-up and check it.
fn recover_and_check(
    files: &BTreeMap<String, Vec<u8>>,
    history: &History,
    acked: &dyn Fn(usize) -> bool,
) -> Result<(), String> {
    let dir = Scratch::new("crash");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let (j, rec) = until_unlocked(|| Journal::open(dir.path()))
        .map_err(|e| format!("recovery refused: {e}"))?;
    let got = model_of(&rec);
    j.shutdown();
    history.allows(&got, acked)
}

/// Start the store on what `run` left in `dir` (no power loss) and check
/// it holds every message acknowledged by the end.
pub fn check_dir(dir: &Path, run: &Run) -> Result<(), String> {
    let history = History::new(&run.appends);
    let eligible: Vec<usize> = (0..run.appends.len())
        .filter(|j| !run.lost.contains(j))
        .collect();
    let acked = |j: usize| eligible[..run.acked.min(eligible.len())].contains(&j);
    let (j, rec) =
        until_unlocked(|| Journal::open(dir)).map_err(|e| format!("start after the run: {e}"))?;
    let got = model_of(&rec);
    j.shutdown();
    history.allows(&got, &acked)
}

/// What the simulation of one run covered.
#[derive(Debug, Default)]
pub struct Simulated {
    pub crash_points: usize,
    pub states: usize,
    pub failures: Vec<String>,
}

/// For every prefix of `run`'s operations, every disk state a power loss
/// there can leave (skipping states in `seen`), recovered and checked.
pub fn simulate(run: &Run, seen: &mut HashSet<u64>) -> Simulated {
    simulate_points(run, seen, 0..usize::MAX)
}

/// [`simulate`] at the crash points in `points` only.
pub fn simulate_points(
    run: &Run,
    seen: &mut HashSet<u64>,
    points: std::ops::Range<usize>,
) -> Simulated {
    let ops = run.log.ops();
    let acked = run.log.acked();
    let history = History::new(&run.appends);
    // Messages in the order they could be acknowledged.
    let eligible: Vec<usize> = (0..run.appends.len())
        .filter(|j| !run.lost.contains(j))
        .collect();
    let mut disk = Disk::default();
    let mut out = Simulated::default();
    // (what, state, acknowledged) for every new state, checked below.
    let mut todo: Vec<(String, BTreeMap<String, Vec<u8>>, usize)> = Vec::new();
    for k in 0..=ops.len() {
        if k > 0 {
            disk.apply(&ops[k - 1]);
        }
        if !points.contains(&k) {
            continue;
        }
        out.crash_points += 1;
        let a = acked.get(k).copied().unwrap_or(run.acked);
        let at = match k {
            0 => "before any operation".to_string(),
            _ => format!("after operation {k} ({})", ops[k - 1].describe()),
        };
        disk.crash_states(|what, state| {
            let mut h = DefaultHasher::new();
            state.hash(&mut h);
            a.hash(&mut h);
            if !seen.insert(h.finish()) {
                return;
            }
            todo.push((format!("power loss {at}, {what}"), state, a));
        });
    }
    out.states = todo.len();
    // Two threads: the CI machine has two cores.
    let failures = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((what, state, a)) = todo.get(i) else {
                    break;
                };
                let acked = |j: usize| eligible[..(*a).min(eligible.len())].contains(&j);
                if let Err(e) = recover_and_check(state, &history, &acked) {
                    let files: Vec<String> = state
                        .iter()
                        .map(|(n, b)| format!("{n} ({} bytes)", b.len()))
                        .collect();
                    failures.lock().unwrap().push(format!(
                        "{what}, {a} messages acknowledged: {e}\n    files: {}",
                        files.join(", ")
                    ));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    if failures.len() > 5 {
        let more = failures.len() - 5;
        failures.truncate(5);
        failures.push(format!("(and {more} more)"));
    }
    out.failures = failures;
    out
}
