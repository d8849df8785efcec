//! Lease records: what the core asks the store to make durable.
//!
//! A record is fixed-size and `Copy` so it moves through the journal channel
//! without a heap allocation per packet.

use std::net::Ipv6Addr;

/// Longest DUID a lease record holds: the codec's limit (RFC 9915 §11.1,
/// one place for the whole workspace, `dhcp-common`).
pub use crate::wire::MAX_DUID_LEN;

/// Kind of binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LeaseKind {
    /// An address in an IA_NA.
    Na = 1,
    /// A delegated prefix in an IA_PD.
    Pd = 2,
}

/// What happened to the binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LeaseOp {
    /// Created or extended (Request, Renew, Rebind, Rapid Commit Solicit).
    Commit = 1,
    /// Released by the client.
    Release = 2,
    /// Declined: quarantined until `valid_until`.
    Decline = 3,
    /// Reclaimed after its valid lifetime ran out.
    Expire = 4,
}

/// One binding change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// What happened: commit, release, decline or expiry.
    pub op: LeaseOp,
    /// Address binding (IA_NA) or delegated prefix (IA_PD).
    pub kind: LeaseKind,
    /// The address, or the delegated prefix's first address.
    pub addr: Ipv6Addr,
    /// 128 for an address, the delegated length for a prefix.
    pub prefix_len: u8,
    /// The IAID of the IA the binding belongs to (RFC 9915 §12).
    pub iaid: u32,
    duid_len: u8,
    duid: [u8; MAX_DUID_LEN],
    /// Unix seconds when the preferred lifetime ends.
    pub preferred_until: u64,
    /// Unix seconds when the valid lifetime ends (quarantine end for Decline).
    pub valid_until: u64,
}

impl LeaseRecord {
    /// Build a record; `None` when the DUID is longer than [`MAX_DUID_LEN`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        op: LeaseOp,
        kind: LeaseKind,
        addr: Ipv6Addr,
        prefix_len: u8,
        iaid: u32,
        duid: &[u8],
        preferred_until: u64,
        valid_until: u64,
    ) -> Option<Self> {
        if duid.len() > MAX_DUID_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_DUID_LEN];
        buf[..duid.len()].copy_from_slice(duid);
        Some(LeaseRecord {
            op,
            kind,
            addr,
            prefix_len,
            iaid,
            duid_len: duid.len() as u8,
            duid: buf,
            preferred_until,
            valid_until,
        })
    }

    /// The client's DUID.
    pub fn duid(&self) -> &[u8] {
        &self.duid[..self.duid_len as usize]
    }
}

/// Most lease changes one message can cause (IAs per message × leases per IA).
pub const MAX_CHANGES: usize = 32;

/// A reusable, fixed-capacity list of lease changes produced by one message.
#[derive(Clone, Debug)]
pub struct LeaseChanges {
    len: usize,
    records: [Option<LeaseRecord>; MAX_CHANGES],
}

impl Default for LeaseChanges {
    fn default() -> Self {
        LeaseChanges {
            len: 0,
            records: [None; MAX_CHANGES],
        }
    }
}

impl LeaseChanges {
    /// Forget all records (call before handling the next message).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Append a record; `false` when full (the caller must treat the message as failed).
    pub fn push(&mut self, record: LeaseRecord) -> bool {
        if self.len == MAX_CHANGES {
            return false;
        }
        self.records[self.len] = Some(record);
        self.len += 1;
        true
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &LeaseRecord> {
        self.records[..self.len].iter().flatten()
    }
}
