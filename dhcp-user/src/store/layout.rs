//! What lives in `state_dir`, and the lock that keeps a second server out.
//!
//! ```text
//! state_dir/                    0700 when the store creates it
//!   lock                        flock()ed by the running server; holds its pid
//!   server-duid                 hex DUID, generated once, kept forever
//!   server-duid.tmp             the DUID being written (replaced at the next try)
//!   journal-<gen>.seg           lease journal segments (gen: 16 hex digits)
//!   snapshot-<gen>.snap         bindings as of the start of segment <gen>
//!   snapshot-<gen>.tmp          a snapshot being written (removed at start-up)
//!   snapshot-<gen>.corrupt      a snapshot that failed its checks (kept for a human)
//!   journal-<gen>.seg.bad       a copy of a damaged segment (kept for a human)
//! ```
//!
//! A segment is its header, then batches: one per group commit, each a
//! [`BATCH_HEADER_LEN`]-byte header (length and record count of its frames,
//! CRC32C of the frames, CRC32C of the header) and the frames. The batch is
//! what one `pwrite` + `fdatasync` makes durable, so recovery can tell a torn
//! final batch (cut) from damage anywhere else (refused). Segments written
//! before batches existed (`D6JSEG01`) are plain frames and are still read.
//!
//! Every file is 0600 and reached through the directory's descriptor
//! ([`StateDir`]); a link, a foreign owner or a writable mode is refused.

use std::io;
use std::path::{Path, PathBuf};

use super::dirfd::StateDir;
use super::file::StoreFile;
use super::StoreError;

pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const DUID_FILE: &str = "server-duid";
pub(crate) const DUID_TMP: &str = "server-duid.tmp";

/// Segments of frames in batches (what the writer writes).
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"D6JSEG02";
/// Segments of plain frames, written before batches existed (read only).
pub(crate) const SEGMENT_MAGIC_V1: &[u8; 8] = b"D6JSEG01";
/// Frames' length, record count, frames' CRC32C, CRC32C of those 12 bytes.
pub(crate) const BATCH_HEADER_LEN: usize = 16;
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"D6SNAP01";
pub(crate) const SNAPSHOT_END: &[u8; 8] = b"D6SNEND1";
/// Magic, generation, CRC32C of both.
pub(crate) const HEADER_LEN: usize = 20;
/// End magic, record count, CRC32C of both.
pub(crate) const TRAILER_LEN: usize = 20;

pub(crate) fn segment_name(gen: u64) -> String {
    format!("journal-{gen:016x}.seg")
}

pub(crate) fn snapshot_name(gen: u64, ext: &str) -> String {
    format!("snapshot-{gen:016x}.{ext}")
}

/// Where segment `gen` is, for messages.
pub(crate) fn segment_path(dir: &StateDir, gen: u64) -> PathBuf {
    dir.path_of(&segment_name(gen))
}

/// Where snapshot `gen` with extension `ext` is, for messages.
pub(crate) fn snapshot_path(dir: &StateDir, gen: u64, ext: &str) -> PathBuf {
    dir.path_of(&snapshot_name(gen, ext))
}

/// The generation in `name` when it is `<prefix><16 hex digits><suffix>`.
fn generation(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Whether `name` is one of the files the store keeps in `state_dir`.
pub(crate) fn is_ours(name: &str) -> bool {
    matches!(name, LOCK_FILE | DUID_FILE | DUID_TMP)
        || generation(name, "journal-", ".seg").is_some()
        || [".snap", ".tmp", ".corrupt"]
            .iter()
            .any(|ext| generation(name, "snapshot-", ext).is_some())
}

/// The file header: magic, generation, CRC32C.
pub(crate) fn header(magic: &[u8; 8], gen: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8..16].copy_from_slice(&gen.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Whether `buf` starts with a valid header for `magic` and `gen`.
pub(crate) fn header_ok(buf: &[u8], magic: &[u8; 8], gen: u64) -> bool {
    buf.len() >= HEADER_LEN && buf[..HEADER_LEN] == header(magic, gen)
}

/// The header of the batch whose frames are `frames`.
pub(crate) fn batch_header(frames: &[u8], records: u32) -> [u8; BATCH_HEADER_LEN] {
    let mut h = [0u8; BATCH_HEADER_LEN];
    h[..4].copy_from_slice(&(frames.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&records.to_le_bytes());
    h[8..12].copy_from_slice(&crc32c::crc32c(frames).to_le_bytes());
    let crc = crc32c::crc32c(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A batch found in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Where its frames start and end in the file.
    pub(crate) frames: (usize, usize),
    pub(crate) records: u32,
}

/// Why the bytes at some offset are not a whole, intact batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchError {
    /// Fewer bytes than a batch header are left.
    ShortHeader,
    /// The header's checksum does not hold.
    BadHeader,
    /// The header is intact but its frames run past the end of the file.
    PastEnd,
    /// The frames' checksum does not hold.
    BadFrames,
}

impl BatchError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BatchError::ShortHeader => "the file ends inside a batch header",
            BatchError::BadHeader => "a batch header fails its checksum",
            BatchError::PastEnd => "a batch runs past the end of the file",
            BatchError::BadFrames => "a batch's records fail their checksum",
        }
    }
}

/// The batch starting at `buf[pos..]`.
pub(crate) fn batch_at(buf: &[u8], pos: usize) -> Result<Batch, BatchError> {
    let h = buf
        .get(pos..pos + BATCH_HEADER_LEN)
        .ok_or(BatchError::ShortHeader)?;
    let word = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&h[..12]) != word(12) {
        return Err(BatchError::BadHeader);
    }
    let start = pos + BATCH_HEADER_LEN;
    let end = start
        .checked_add(word(0) as usize)
        .filter(|&e| e <= buf.len())
        .ok_or(BatchError::PastEnd)?;
    if crc32c::crc32c(&buf[start..end]) != word(8) {
        return Err(BatchError::BadFrames);
    }
    Ok(Batch {
        frames: (start, end),
        records: word(4),
    })
}

/// The files of one kind in `dir`, as sorted generations.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: Vec<u64>,
    pub(crate) snapshots: Vec<u64>,
    pub(crate) temps: Vec<u64>,
}

pub(crate) fn list(dir: &StateDir) -> Result<Listing, StoreError> {
    let mut l = Listing::default();
    for name in dir.names()? {
        let parse = |prefix: &str, suffix: &str| generation(&name, prefix, suffix);
        if let Some(g) = parse("journal-", ".seg") {
            l.segments.push(g);
        } else if let Some(g) = parse("snapshot-", ".snap") {
            l.snapshots.push(g);
        } else if let Some(g) = parse("snapshot-", ".tmp") {
            l.temps.push(g);
        }
    }
    l.segments.sort_unstable();
    l.snapshots.sort_unstable();
    Ok(l)
}

/// Make a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &StateDir) -> Result<(), StoreError> {
    dir.sync()
}

/// Holds `state_dir/lock` for as long as it lives.
#[derive(Debug)]
pub struct StateDirLock {
    _file: StoreFile,
    path: PathBuf,
}

impl StateDirLock {
    /// Take the lock, or fail with [`StoreError::Locked`] naming the holder.
    pub fn acquire(dir: &StateDir) -> Result<Self, StoreError> {
        let path = dir.path_of(LOCK_FILE);
        let mut file = dir.open_or_create(LOCK_FILE)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let text = file.read_all().unwrap_or_default();
                return Err(StoreError::Locked {
                    dir: dir.path().to_path_buf(),
                    holder: String::from_utf8_lossy(&text).trim().parse().ok(),
                });
            }
            Err(e) => return Err(StoreError::io(&path, e.into())),
        }
        // The pid is only a hint for the error message of a second server.
        let write_pid = |f: &StoreFile| -> io::Result<()> {
            f.set_len(0)?;
            f.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        };
        // Best effort: on a full disk the lock still holds without the pid.
        let _ = write_pid(&file);
        Ok(StateDirLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
