//! The durable lease store: journal with group commit, snapshots, recovery,
//! the server DUID file and the state-dir lock.
//!
//! Owns everything under `server.state_dir` (layout in [`layout`]). Never
//! touches packets or the protocol: the core hands over [`LeaseRecord`]s and
//! gets them back at start-up as [`Recovered`].
//!
//! [`LeaseRecord`]: crate::protocol::LeaseRecord

mod codec;
mod dirfd;
mod duid;
mod file;
mod journal;
pub mod layout;
mod recover;
mod repair;
mod signal;
mod snapshot;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use dirfd::StateDir;
pub use duid::{duid_llt, duid_uuid, load_or_create_duid};
// The hook of the power-loss and fault-injection tests.
#[cfg(any(test, feature = "testing"))]
pub use file::{FileId, FileOp, FileOpHook, Verdict};
pub use journal::{
    Journal, JournalHandle, JournalOptions, JournalStats, SyncFn, WriterDeathFn, WriterHold,
};
pub use layout::StateDirLock;
pub use recover::{Damage, Recovered, RecoveryReport};
pub use repair::{repair, repair_in, RepairReport};
pub use signal::DurableSignal;
// For `dataplane::testing::ManualDurability` only.
#[cfg(any(test, feature = "testing"))]
pub(crate) use signal::Signals;
pub use snapshot::SnapshotInfo;

use crate::protocol::LeaseChanges;

/// What a worker needs from the journal: hand over records, learn when they
/// are on disk. A reply that needs durability is held until
/// `durable_seq() >= seq` for the `seq` that `append` returned.
pub trait Durability: Send + Sync + 'static {
    /// Queue the records for the next group commit. Returns the sequence
    /// number that must become durable before the reply is sent, or `None`
    /// when the journal cannot accept writes (disk full, EIO): the caller then
    /// drops the reply and counts it.
    fn append(&self, changes: &LeaseChanges) -> Option<u64>;

    /// The highest sequence number whose records are on disk (fdatasync returned).
    fn durable_seq(&self) -> u64;

    /// A signal that becomes readable each time `durable_seq` advances, for a
    /// worker to poll beside its socket while it holds replies. `None`: no
    /// such signal; the worker re-checks on a short timeout instead.
    fn subscribe(&self) -> Option<Arc<DurableSignal>> {
        None
    }
}

/// Errors of the lease store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation in the state directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Another process holds the state directory's lock.
    #[error("state directory {dir} is in use by another dhcp6d{}; refusing to start", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The state directory.
        dir: PathBuf,
        /// The pid written in the lock file, when readable.
        holder: Option<u32>,
    },
    /// A file in the state directory, or the directory itself, is not one
    /// the server may trust: a symbolic link, not a regular file (or not a
    /// directory), a file with more than one link, owned by someone other
    /// than root, this process's user or `server.user`, or writable by
    /// group or others.
    #[error("{path}: {reason}")]
    Unsafe {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it and what is required.
        reason: String,
    },
    /// The stored server DUID cannot be read back.
    #[error("{path}: bad server DUID file ({reason}); fix or remove it (removing changes the server's identity)")]
    BadDuidFile {
        /// The DUID file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The generator passed to `load_or_create_duid` returned an impossible DUID.
    #[error("generated server DUID is invalid: {0}")]
    InvalidDuid(String),
    /// The state directory holds damage a crash cannot have left (see
    /// [`Damage`]); nothing was changed but the copy.
    #[error("{damage}. The server does not start on a damaged lease store{}; `dhcp6d repair -c CONFIG` says what a repair drops, and `--commit` does it", copy.as_ref().map(|c| format!(" (a copy is kept as {})", c.display())).unwrap_or_default())]
    Damaged {
        /// What is wrong, where.
        damage: Box<Damage>,
        /// Where a copy of the damaged file was kept.
        copy: Option<PathBuf>,
    },
    /// The journal writer has stopped.
    #[error("the journal writer has stopped")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
