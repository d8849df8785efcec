//! Writing a snapshot of the live bindings, then compacting the journal.
//!
//! A snapshot with generation S holds every binding as of the start of journal
//! segment S: the writer first rotates to segment S, then the caller's
//! iterator walks the live bindings (which already include every record
//! written to segments < S). Records in S that the walk also saw are replayed
//! on top at recovery, which is harmless: replay keeps the last op per key.
//! The newest two snapshots are kept, with every segment from the older one on,
//! so a corrupt newest snapshot can fall back to the previous one.

use std::io::{BufWriter, Write};

use super::codec::Encoder;
use super::dirfd::StateDir;
use super::layout::{self, SNAPSHOT_END, SNAPSHOT_MAGIC};
use super::StoreError;
use crate::protocol::{LeaseOp, LeaseRecord};

/// What a snapshot wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its generation (the first journal segment not covered by it).
    pub gen: u64,
    /// Bindings written (Commit and Decline records; others are skipped).
    pub bindings: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Write `snapshot-<gen>.snap` from what `for_each` emits: temp file, fsync,
/// rename, directory fsync.
pub(crate) fn write<F>(dir: &StateDir, gen: u64, for_each: F) -> Result<SnapshotInfo, StoreError>
where
    F: FnOnce(&mut dyn FnMut(&LeaseRecord)),
{
    let tmp = layout::snapshot_name(gen, "tmp");
    let done = layout::snapshot_name(gen, "snap");
    // A leftover temp file (or a link in its place) is removed, never
    // written through.
    dir.remove_if_present(&tmp)?;
    let file = dir.create_new(&tmp)?;
    let result = (|| -> std::io::Result<SnapshotInfo> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&layout::header(SNAPSHOT_MAGIC, gen))?;
        let mut enc = Encoder::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut count = 0u64;
        let mut bytes = layout::HEADER_LEN as u64;
        let mut failed: Option<std::io::Error> = None;
        for_each(&mut |rec: &LeaseRecord| {
            if failed.is_some() || !matches!(rec.op, LeaseOp::Commit | LeaseOp::Decline) {
                return;
            }
            enc.encode(rec, &mut buf);
            count += 1;
            if buf.len() >= 60 * 1024 {
                bytes += buf.len() as u64;
                failed = w.write_all(&buf).err();
                buf.clear();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        bytes += buf.len() as u64;
        w.write_all(&buf)?;
        let mut trailer = [0u8; layout::TRAILER_LEN];
        trailer[..8].copy_from_slice(SNAPSHOT_END);
        trailer[8..16].copy_from_slice(&count.to_le_bytes());
        let crc = crc32c::crc32c(&trailer[..16]);
        trailer[16..].copy_from_slice(&crc.to_le_bytes());
        w.write_all(&trailer)?;
        bytes += trailer.len() as u64;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(SnapshotInfo {
            gen,
            bindings: count,
            bytes,
        })
    })()
    .map_err(|e| StoreError::io(&dir.path_of(&tmp), e))
    .and_then(|info| dir.rename(&tmp, &done).map(|()| info));
    match result {
        Ok(info) => {
            layout::sync_dir(dir)?;
            Ok(info)
        }
        Err(e) => {
            let _ = dir.remove_if_present(&tmp);
            Err(e)
        }
    }
}

/// Delete what the newest two snapshots make redundant: older snapshots and
/// the segments before the older of the two.
pub(crate) fn compact(dir: &StateDir) -> Result<(), StoreError> {
    let l = layout::list(dir)?;
    if l.snapshots.len() < 2 {
        return Ok(());
    }
    let keep_from = l.snapshots[l.snapshots.len() - 2];
    for &g in l.snapshots.iter().filter(|&&g| g < keep_from) {
        dir.remove(&layout::snapshot_name(g, "snap"))?;
    }
    for &g in l.segments.iter().filter(|&&g| g < keep_from) {
        dir.remove(&layout::segment_name(g))?;
    }
    layout::sync_dir(dir)
}
