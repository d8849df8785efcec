//! `dhcp6d repair`: the explicit way past damage that start-up refuses.
//!
//! Start-up stops on damage a crash cannot have left (see [`super::Damage`]).
//! A repair keeps what replays (each damaged segment up to its damage, every
//! other segment whole, the newest intact snapshot), writes it as a new
//! snapshot with a new segment after everything, and sets the damaged files
//! aside (`.bad`, `.corrupt`) for a human; nothing is deleted. Without
//! `commit` it only says what it would drop.

use std::path::{Path, PathBuf};

use super::dirfd::StateDir;
use super::layout::{self, StateDirLock};
use super::recover::{scan_dir, Damage};
use super::snapshot::{self, SnapshotInfo};
use super::writer::create_segment;
use super::StoreError;

/// What a repair found, and did when committed.
#[derive(Debug)]
pub struct RepairReport {
    /// The state directory.
    pub dir: PathBuf,
    /// Damage start-up refuses; each is dropped from its offset on.
    pub damage: Vec<Damage>,
    /// Snapshots that fail their checks (set aside as `.corrupt`).
    pub corrupt_snapshots: Vec<PathBuf>,
    /// A torn final write at the end of the last segment, in bytes (never
    /// acknowledged; start-up cuts it by itself).
    pub torn_bytes: u64,
    /// Bindings (and quarantined addresses) kept.
    pub bindings: u64,
    /// The snapshot written, when committed and there was something to repair.
    pub snapshot: Option<SnapshotInfo>,
    /// Files set aside, when committed.
    pub set_aside: Vec<PathBuf>,
}

impl RepairReport {
    /// Whether start-up would refuse this directory as it was found.
    pub fn needs_repair(&self) -> bool {
        !self.damage.is_empty()
    }
}

/// Read `dir` (under its lock: never beside a running server) and, when
/// `commit`, repair it.
pub fn repair(path: &Path, commit: bool) -> Result<RepairReport, StoreError> {
    repair_in(&StateDir::open(path, None)?, commit)
}

/// [`repair`] on a state directory already opened (with `server.user`
/// among its allowed owners).
pub fn repair_in(dir: &StateDir, commit: bool) -> Result<RepairReport, StoreError> {
    let _lock = StateDirLock::acquire(dir)?;
    let found = scan_dir(dir)?;
    let mut report = RepairReport {
        dir: dir.path().to_path_buf(),
        corrupt_snapshots: found
            .corrupt_snapshots
            .iter()
            .map(|&g| layout::snapshot_path(dir, g, "snap"))
            .collect(),
        torn_bytes: found.recovered.report.bytes_dropped,
        bindings: found.recovered.len() as u64,
        damage: found.damage,
        snapshot: None,
        set_aside: Vec::new(),
    };
    if !commit || !report.needs_repair() {
        return Ok(report);
    }
    // The new segment first: a snapshot must have its segment, and a crash
    // before the snapshot is written leaves the damage to refuse again.
    let gen = found.max_gen + 1;
    create_segment(dir, gen)?;
    let recovered = &found.recovered;
    report.snapshot = Some(snapshot::write(dir, gen, |emit| {
        recovered.iter().for_each(|r| emit(&r))
    })?);
    let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_string);
    for d in report.damage.iter().filter(|d| d.offset.is_some()) {
        let Some(name) = name_of(&d.path) else {
            continue;
        };
        let bad = format!("{name}.bad");
        dir.rename(&name, &bad)?;
        report.set_aside.push(dir.path_of(&bad));
    }
    for &g in &found.corrupt_snapshots {
        let corrupt = layout::snapshot_name(g, "corrupt");
        dir.rename(&layout::snapshot_name(g, "snap"), &corrupt)?;
        report.set_aside.push(dir.path_of(&corrupt));
    }
    dir.sync()?;
    Ok(report)
}
