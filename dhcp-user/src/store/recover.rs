//! Start-up: latest valid snapshot + journal tail → the live bindings.
//!
//! The state is a map (DUID, IAID, kind, address) → latest record: Commit and
//! Decline replace the entry (a Decline stays as quarantine until its
//! `valid_until`), Release and Expire remove it. Each op fully decides the
//! state of its key, so only the last op per key in the tail matters.
//!
//! Speed: a snapshot holds one entry per key, so it loads straight into a
//! `Vec` with no hashing; only the (short) tail goes through a map, and the
//! snapshot is then filtered once against the tail's addresses.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use super::codec::{next_frame, Binding, Decoder, DuidArena, PassThrough};
use super::dirfd::StateDir;
use super::layout::{self, HEADER_LEN, SEGMENT_MAGIC, SNAPSHOT_END, SNAPSHOT_MAGIC, TRAILER_LEN};
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
    /// Bytes cut off torn or corrupt journal tails.
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

/// Read `dir`, pick the newest valid snapshot, replay the journal after it.
/// Truncates a torn tail of the last segment; renames corrupt snapshots.
pub(crate) fn recover(dir: &StateDir) -> Result<(Recovered, u64), StoreError> {
    let listing = layout::list(dir)?;
    for &t in &listing.temps {
        dir.remove(&layout::snapshot_name(t, "tmp"))?;
    }
    let mut out = Recovered::default();
    let mut max_gen = listing
        .segments
        .iter()
        .chain(&listing.snapshots)
        .copied()
        .max()
        .unwrap_or(0);
    let mut base = None;
    for &gen in listing.snapshots.iter().rev() {
        if let Some(n) = load_snapshot(dir, gen, &mut out)? {
            base = Some(gen);
            out.report.snapshot_bindings = n;
            break;
        }
        let from = layout::snapshot_path(dir, gen, "snap");
        tracing::error!(snapshot = %from.display(), "snapshot is corrupt or incomplete; falling back to the previous one");
        dir.rename(
            &layout::snapshot_name(gen, "snap"),
            &layout::snapshot_name(gen, "corrupt"),
        )?;
        out.report.corrupt_snapshots += 1;
    }
    out.report.snapshot_gen = base;
    if out.report.corrupt_snapshots > 0 {
        layout::sync_dir(dir)?;
    }

    // Tail: last op per key.
    let keys = Keys {
        duid_hasher: RandomState::new(),
    };
    let mut tail: HashMap<Key, Binding, BuildHasherDefault<PassThrough>> = HashMap::default();
    let segments: Vec<u64> = listing
        .segments
        .iter()
        .copied()
        .filter(|&g| g >= base.unwrap_or(0))
        .collect();
    for (i, &gen) in segments.iter().enumerate() {
        let path = layout::segment_path(dir, gen);
        let buf = dir.read(&layout::segment_name(gen))?;
        out.report.segments += 1;
        let good_end = if layout::header_ok(&buf, SEGMENT_MAGIC, gen) {
            let s = scan(&buf, buf.len(), &mut out.arena, |b, arena| {
                tail.insert(keys.key(&b, arena), b);
            });
            out.report.journal_records += s.records;
            s.good_end
        } else {
            0
        };
        if good_end < buf.len() {
            let dropped = (buf.len() - good_end) as u64;
            out.report.bytes_dropped += dropped;
            let last = i + 1 == segments.len();
            if last {
                tracing::warn!(segment = %path.display(), bytes_dropped = dropped, "journal ends in a torn or corrupt record; truncating it");
                let f = dir.open_write(&layout::segment_name(gen))?;
                f.set_len(good_end as u64)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| StoreError::io(&path, e))?;
            } else {
                tracing::error!(segment = %path.display(), bytes_dropped = dropped, "corrupt record inside the journal; the rest of this segment is skipped");
            }
        }
    }
    max_gen = max_gen.max(segments.last().copied().unwrap_or(0));

    if !tail.is_empty() {
        let mut filter = AddrFilter::new();
        tail.keys()
            .for_each(|k| filter.insert(&k.addr.to_be_bytes()));
        let arena = &out.arena;
        out.bindings
            .retain(|b| !filter.may_contain(&b.addr) || !tail.contains_key(&keys.key(b, arena)));
        out.bindings.extend(
            tail.into_values()
                .filter(|b| matches!(b.op, LeaseOp::Commit | LeaseOp::Decline)),
        );
    }
    Ok((out, max_gen))
}
