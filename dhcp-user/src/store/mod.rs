//! The durable lease store: journal with group commit, snapshots, recovery.

use crate::core::LeaseChanges;

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
}
