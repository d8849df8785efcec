//! Start-up: latest valid snapshot + journal tail → the live bindings.
//!
//! The state is a map (DUID, IAID, kind, address) → latest record: Commit and
//! Decline replace the entry (a Decline stays as quarantine until its
//! `valid_until`), Release removes it. Each of these fully decides the state
//! of its key, so only the last of them per key in the tail matters.
//!
//! An Expire removes only a binding that had ended by its `valid_until`.
//! The sweep takes bindings out of the table under the shard locks and
//! appends their Expire records afterwards, so a worker that gave the same
//! address to the same client in between has its Commit in the file first.
//! That Commit's `valid_until` lies after the Expire's (it was made once the
//! old lifetime was over), and its lifetime is what the table holds: the
//! stale Expire must not erase it (issue 13 item 8).
//!
//! Speed: a snapshot holds one entry per key, so it loads straight into a
//! `Vec` with no hashing; only the (short) tail goes through a map, and the
//! snapshot is then filtered once against the tail's addresses.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::path::{Path, PathBuf};

use super::codec::{next_frame, Binding, Decoder, DuidArena, PassThrough};
use super::dirfd::StateDir;
use super::layout::{
    self, batch_at, HEADER_LEN, SEGMENT_MAGIC, SEGMENT_MAGIC_V1, SNAPSHOT_END, SNAPSHOT_MAGIC,
    TRAILER_LEN,
};
use super::StoreError;
use crate::protocol::{LeaseKind, LeaseOp, LeaseRecord};

/// What start-up found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot the state was built on, when one was valid.
    pub snapshot_gen: Option<u64>,
    /// Bindings loaded from that snapshot.
    pub snapshot_bindings: u64,
    /// Journal records replayed on top.
    pub journal_records: u64,
    /// Journal segments read.
    pub segments: u64,
    /// Bytes of a torn final batch cut off the last segment.
    pub bytes_dropped: u64,
    /// Snapshots that failed their checks (renamed to `.corrupt`).
    pub corrupt_snapshots: u64,
}

/// The bindings recovered at start-up, for the core to load.
#[derive(Debug, Default)]
pub struct Recovered {
    arena: DuidArena,
    bindings: Vec<Binding>,
    /// What recovery found.
    pub report: RecoveryReport,
}

impl Recovered {
    /// Number of live bindings (including declined addresses in quarantine).
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Every binding, as the record that last set it (op Commit or Decline).
    pub fn iter(&self) -> impl Iterator<Item = LeaseRecord> + '_ {
        self.bindings.iter().map(|b| b.to_record(&self.arena))
    }

    /// Forget bindings whose valid lifetime (or quarantine) ended at or before `now`.
    pub fn retain_live(&mut self, now: u64) {
        self.bindings.retain(|b| b.valid_until > now);
    }
}

/// Full key of a binding, fixed-size so the tail map needs no allocation per
/// record: the DUID is represented by a 64-bit SipHash of its bytes (random
/// key per process). Two different DUIDs would have to collide on that hash
/// *and* share address, IAID and kind to be confused.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    addr: u128,
    duid: u64,
    iaid: u32,
    kind: LeaseKind,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(mix(self.addr
            ^ (u128::from(self.duid) << 32)
            ^ u128::from(self.iaid)
            ^ ((self.kind as u128) << 120)));
    }
}

/// Cheap 128 → 64-bit mix for in-memory tables (not persisted, not shared).
fn mix(v: u128) -> u64 {
    let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
    let x = (x ^ (x >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

struct Keys {
    duid_hasher: RandomState,
}

impl Keys {
    fn key(&self, b: &Binding, arena: &DuidArena) -> Key {
        Key {
            addr: u128::from_be_bytes(b.addr),
            duid: self.duid_hasher.hash_one(arena.get(b.duid)),
            iaid: b.iaid,
            kind: b.kind,
        }
    }
}

/// A bitmap of tail addresses: most snapshot bindings are not in the tail,
/// and one bit test tells them apart without hashing the DUID.
struct AddrFilter(Vec<u64>);

impl AddrFilter {
    const BITS: u32 = 23;

    fn new() -> Self {
        AddrFilter(vec![0; 1 << (Self::BITS - 6)])
    }

    fn slot(addr: &[u8; 16]) -> (usize, u64) {
        let h = mix(u128::from_be_bytes(*addr)) >> (64 - Self::BITS);
        ((h >> 6) as usize, 1 << (h & 63))
    }

    fn insert(&mut self, addr: &[u8; 16]) {
        let (i, bit) = Self::slot(addr);
        self.0[i] |= bit;
    }

    fn may_contain(&self, addr: &[u8; 16]) -> bool {
        let (i, bit) = Self::slot(addr);
        self.0[i] & bit != 0
    }
}

/// Outcome of reading one file's frames.
struct Scan {
    /// Bytes of whole, valid frames after the header.
    good_end: usize,
    records: u64,
}

/// Decode frames from `buf[HEADER_LEN..end]` until the first bad one.
fn scan(
    buf: &[u8],
    end: usize,
    arena: &mut DuidArena,
    mut each: impl FnMut(Binding, &DuidArena),
) -> Scan {
    let mut dec = Decoder::new();
    let mut pos = HEADER_LEN;
    let mut records = 0;
    let body = &buf[..end];
    loop {
        let start = pos;
        if pos == end {
            return Scan {
                good_end: pos,
                records,
            };
        }
        let frame = next_frame(body, &mut pos);
        match frame.ok().and_then(|f| dec.decode(f, arena)) {
            Some(b) => {
                each(b, arena);
                records += 1;
            }
            None => {
                return Scan {
                    good_end: start,
                    records,
                }
            }
        }
    }
}

/// Whether binding `b` was set after the binding that `expire` ended: its
/// lifetime reaches past the Expire's, so the Expire is stale for it.
fn outlives(b: &Binding, expire: &Binding) -> bool {
    matches!(b.op, LeaseOp::Commit | LeaseOp::Decline) && b.valid_until > expire.valid_until
}

/// Load snapshot `gen`; `None` when it is not complete and intact.
fn load_snapshot(dir: &StateDir, gen: u64, out: &mut Recovered) -> Result<Option<u64>, StoreError> {
    let buf = dir.read(&layout::snapshot_name(gen, "snap"))?;
    if !layout::header_ok(&buf, SNAPSHOT_MAGIC, gen) || buf.len() < HEADER_LEN + TRAILER_LEN {
        return Ok(None);
    }
    let end = buf.len() - TRAILER_LEN;
    let t = &buf[end..];
    let count = u64::from_le_bytes(t[8..16].try_into().expect("8 bytes"));
    let crc_ok = crc32c::crc32c(&t[..16]).to_le_bytes() == t[16..20];
    if &t[..8] != SNAPSHOT_END || !crc_ok {
        return Ok(None);
    }
    let before = out.bindings.len();
    out.bindings.reserve(count.min(1 << 28) as usize);
    out.arena.reserve(count.min(1 << 28) as usize);
    let bindings = &mut out.bindings;
    let s = scan(&buf, end, &mut out.arena, |b, _| bindings.push(b));
    if s.good_end != end || s.records != count {
        out.bindings.truncate(before);
        return Ok(None);
    }
    Ok(Some(count))
}

/// Damage in the state directory that a crash cannot have left: anything but
/// a torn final batch. Start-up refuses it; `dhcp6d repair` drops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The damaged (or missing) file.
    pub path: PathBuf,
    /// Where in it the damage starts; `None` when the file is missing.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
    /// What a repair drops: the bytes from `offset` to the end of the file …
    pub bytes: u64,
    /// … and how many records the intact batches among them hold (a record
    /// after the damage may name a DUID that only the damaged part defined,
    /// so none of them can be trusted).
    pub records: u64,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(o) = self.offset {
            write!(f, " at byte {o}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How one segment read.
struct SegmentScan {
    records: u64,
    /// End of the part that replays.
    good_end: usize,
    /// Where and why the rest does not, when it does not.
    bad: Option<(usize, &'static str)>,
}

/// Read a segment in batches (`D6JSEG02`). A batch replays whole or not at
/// all: its records are decoded aside first.
fn scan_batches(
    buf: &[u8],
    arena: &mut DuidArena,
    each: &mut impl FnMut(Binding, &DuidArena),
) -> SegmentScan {
    let mut dec = Decoder::new();
    let mut pos = HEADER_LEN;
    let mut records = 0;
    let mut batch = Vec::new();
    while pos < buf.len() {
        let bad = |why| SegmentScan {
            records,
            good_end: pos,
            bad: Some((pos, why)),
        };
        let b = match batch_at(buf, pos) {
            Ok(b) => b,
            Err(e) => return bad(e.describe()),
        };
        batch.clear();
        let frames = &buf[..b.frames.1];
        let mut p = b.frames.0;
        while p < b.frames.1 {
            match next_frame(frames, &mut p)
                .ok()
                .and_then(|f| dec.decode(f, arena))
            {
                Some(r) => batch.push(r),
                None => return bad("a batch whose checksum holds has a malformed record"),
            }
        }
        if batch.len() != b.records as usize {
            return bad("a batch holds another number of records than its header says");
        }
        for r in batch.drain(..) {
            each(r, arena);
        }
        records += u64::from(b.records);
        pos = b.frames.1;
    }
    SegmentScan {
        records,
        good_end: pos,
        bad: None,
    }
}

/// Read a segment of plain frames (`D6JSEG01`, before batches).
fn scan_frames(
    buf: &[u8],
    arena: &mut DuidArena,
    each: &mut impl FnMut(Binding, &DuidArena),
) -> SegmentScan {
    let s = scan(buf, buf.len(), arena, |b, a| each(b, a));
    SegmentScan {
        records: s.records,
        good_end: s.good_end,
        bad: (s.good_end < buf.len())
            .then_some((s.good_end, "a record fails its checksum or is malformed")),
    }
}

/// Records in the intact batches (or frames, for `v1`) after byte `from`:
/// what lies beyond damage. A torn final batch has none after it.
fn intact_after(buf: &[u8], from: usize, v1: bool) -> u64 {
    let mut records = 0;
    let mut pos = from + 1;
    while pos + 4 < buf.len() {
        let mut p = pos;
        let found = if v1 {
            // A frame's body is at least 12 bytes (flags, address half, IAID, DUID id, lifetimes).
            next_frame(buf, &mut p)
                .ok()
                .filter(|f| f.len() >= 12)
                .map(|_| 1)
        } else {
            batch_at(buf, pos).ok().map(|b| {
                p = b.frames.1;
                u64::from(b.records)
            })
        };
        match found {
            Some(n) => {
                records += n;
                pos = p;
            }
            None => pos += 1,
        }
    }
    records
}

/// A file shorter than a header that holds only a header's beginning (or
/// zeros): a segment whose creation a crash cut short. It holds no records.
fn unborn(buf: &[u8], gen: u64) -> bool {
    buf.len() <= HEADER_LEN
        && (buf.iter().all(|&b| b == 0)
            || [SEGMENT_MAGIC, SEGMENT_MAGIC_V1]
                .iter()
                .any(|m| layout::header(m, gen).starts_with(buf)))
}

/// What a read of the state directory found; changes nothing on disk.
pub(crate) struct Found {
    pub(crate) recovered: Recovered,
    pub(crate) max_gen: u64,
    /// The last segment ends in a torn batch: (generation, length to keep).
    pub(crate) torn: Option<(u64, u64)>,
    /// The last segment replayed.
    pub(crate) last_segment: Option<u64>,
    /// Snapshots that failed their checks.
    pub(crate) corrupt_snapshots: Vec<u64>,
    /// Everything else that is wrong, in file order. Replay stopped at each
    /// (the rest of a damaged segment is not replayed).
    pub(crate) damage: Vec<Damage>,
}

/// Read `dir`: the newest valid snapshot, the journal after it.
pub(crate) fn scan_dir(dir: &StateDir) -> Result<Found, StoreError> {
    let listing = layout::list(dir)?;
    let mut out = Recovered::default();
    let mut max_gen = listing
        .segments
        .iter()
        .chain(&listing.snapshots)
        .copied()
        .max()
        .unwrap_or(0);
    let mut base = None;
    let mut corrupt_snapshots = Vec::new();
    let mut damage = Vec::new();
    for &gen in listing.snapshots.iter().rev() {
        if let Some(n) = load_snapshot(dir, gen, &mut out)? {
            base = Some(gen);
            out.report.snapshot_bindings = n;
            break;
        }
        corrupt_snapshots.push(gen);
    }
    out.report.snapshot_gen = base;
    out.report.corrupt_snapshots = corrupt_snapshots.len() as u64;

    let segments: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|&g| g >= base.unwrap_or(0))
        .collect();
    // The journal must cover everything after the snapshot (without one: from
    // segment 1, the first a state directory gets), without a gap.
    let missing = |gen: u64, next: Option<u64>| {
        let lost = next.map_or("every binding".to_string(), |n| {
            format!("the records before segment {n:016x}")
        });
        let reason = match base {
            None if !corrupt_snapshots.is_empty() => format!(
                "is missing, and no snapshot is intact ({} failed their checks): {lost} are lost",
                corrupt_snapshots.len()
            ),
            None => format!("is missing, and there is no snapshot: {lost} are lost"),
            Some(_) => format!("is missing: {lost} are lost"),
        };
        Damage {
            path: layout::segment_path(dir, gen),
            offset: None,
            reason,
            bytes: 0,
            records: 0,
        }
    };
    let mut expect = base.unwrap_or(1);
    for &gen in &segments {
        if gen > expect {
            damage.push(missing(expect, Some(gen)));
        }
        expect = gen + 1;
    }
    if segments.is_empty() && (base.is_some() || !corrupt_snapshots.is_empty()) {
        damage.push(missing(expect, None));
    }

    // Tail: last op per key.
    let keys = Keys {
        duid_hasher: RandomState::new(),
    };
    let mut tail: HashMap<Key, Binding, BuildHasherDefault<PassThrough>> = HashMap::default();
    let mut each = |b: Binding, arena: &DuidArena| {
        let key = keys.key(&b, arena);
        if b.op == LeaseOp::Expire && tail.get(&key).is_some_and(|t| outlives(t, &b)) {
            return;
        }
        tail.insert(key, b);
    };
    let mut torn = None;
    for (i, &gen) in segments.iter().enumerate() {
        let path = layout::segment_path(dir, gen);
        let buf = dir.read(&layout::segment_name(gen))?;
        out.report.segments += 1;
        let last = i + 1 == segments.len();
        let v1 = layout::header_ok(&buf, SEGMENT_MAGIC_V1, gen);
        let scan = if layout::header_ok(&buf, SEGMENT_MAGIC, gen) {
            scan_batches(&buf, &mut out.arena, &mut each)
        } else if v1 {
            scan_frames(&buf, &mut out.arena, &mut each)
        } else if unborn(&buf, gen) {
            SegmentScan {
                records: 0,
                good_end: buf.len(),
                bad: None,
            }
        } else {
            SegmentScan {
                records: 0,
                good_end: 0,
                bad: Some((0, "the segment header is not this segment's")),
            }
        };
        out.report.journal_records += scan.records;
        let Some((at, why)) = scan.bad else { continue };
        let after = intact_after(&buf, at, v1);
        if last && at > 0 && after == 0 {
            // A crash during the last write: what follows the last intact
            // batch was never acknowledged.
            out.report.bytes_dropped = (buf.len() - scan.good_end) as u64;
            torn = Some((gen, scan.good_end as u64));
            continue;
        }
        damage.push(Damage {
            path,
            offset: Some(at as u64),
            reason: if last {
                format!("{why}, and {after} intact records follow: not a torn final write")
            } else {
                format!("{why}, in a segment that is not the last: not a torn final write")
            },
            bytes: (buf.len() - at) as u64,
            records: after,
        });
    }
    max_gen = max_gen.max(segments.last().copied().unwrap_or(0));

    if !tail.is_empty() {
        let mut filter = AddrFilter::new();
        tail.keys()
            .for_each(|k| filter.insert(&k.addr.to_be_bytes()));
        let arena = &out.arena;
        out.bindings.retain(|b| {
            !filter.may_contain(&b.addr)
                || tail
                    .get(&keys.key(b, arena))
                    .is_none_or(|t| t.op == LeaseOp::Expire && outlives(b, t))
        });
        out.bindings.extend(
            tail.into_values()
                .filter(|b| matches!(b.op, LeaseOp::Commit | LeaseOp::Decline)),
        );
    }
    Ok(Found {
        recovered: out,
        max_gen,
        torn,
        last_segment: segments.last().copied(),
        corrupt_snapshots,
        damage,
    })
}

/// Start-up: read `dir` and recover its bindings. Cuts a torn final batch off
/// the last segment and renames snapshots that fail their checks (falling
/// back to the previous one). Any other damage stops the start: the error
/// names the file and offset, and a copy of the damaged file is kept as
/// `<name>.bad`; nothing else is changed ([`repair`] is the way on).
pub(crate) fn recover(dir: &StateDir) -> Result<(Recovered, u64), StoreError> {
    let listing = layout::list(dir)?;
    for &t in &listing.temps {
        dir.remove(&layout::snapshot_name(t, "tmp"))?;
    }
    let found = scan_dir(dir)?;
    if let Some(d) = found.damage.into_iter().next() {
        let copy = d.offset.and_then(|_| keep_copy(dir, &d.path));
        return Err(StoreError::Damaged {
            damage: Box::new(d),
            copy,
        });
    }
    for &gen in &found.corrupt_snapshots {
        let from = layout::snapshot_path(dir, gen, "snap");
        tracing::error!(snapshot = %from.display(), "snapshot is corrupt or incomplete; falling back to the previous one");
        dir.rename(
            &layout::snapshot_name(gen, "snap"),
            &layout::snapshot_name(gen, "corrupt"),
        )?;
    }
    if !found.corrupt_snapshots.is_empty() {
        layout::sync_dir(dir)?;
    }
    if let Some((gen, keep)) = found.torn {
        let path = layout::segment_path(dir, gen);
        tracing::warn!(segment = %path.display(), bytes_dropped = found.recovered.report.bytes_dropped, "journal ends in a torn write (never acknowledged); cutting it off");
        let f = dir.open_write(&layout::segment_name(gen))?;
        f.set_len(keep)
            .and_then(|_| f.sync_all())
            .map_err(|e| StoreError::io(&path, e))?;
    } else if let Some(gen) = found.last_segment {
        // What was replayed must be on disk before a segment after it
        // exists. A process killed between its write and its fdatasync
        // leaves the last batch in the page cache only: this start reads
        // it, and a power loss later would leave it torn (or zeros) in a
        // segment that is no longer the last, which is refused as damage.
        dir.open_read(&layout::segment_name(gen))?
            .sync_all()
            .map_err(|e| StoreError::io(&layout::segment_path(dir, gen), e))?;
    }
    Ok((found.recovered, found.max_gen))
}

/// The damaged file's copy beside it, `<name>.bad`, made through the
/// directory's descriptor; `None` when it could not be made (the refusal
/// still stands, the original is untouched).
fn keep_copy(dir: &StateDir, path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let bad = format!("{name}.bad");
    let made = (|| -> Result<(), StoreError> {
        let bytes = dir.read(name)?;
        dir.remove_if_present(&bad)?;
        let mut f = dir.create_new(&bad)?;
        let at = dir.path_of(&bad);
        std::io::Write::write_all(&mut f, &bytes).map_err(|e| StoreError::io(&at, e))?;
        f.sync_all().map_err(|e| StoreError::io(&at, e))?;
        dir.sync()
    })();
    match made {
        Ok(()) => Some(dir.path_of(&bad)),
        Err(e) => {
            tracing::error!(error = %e, "could not keep a copy of the damaged file");
            None
        }
    }
}
