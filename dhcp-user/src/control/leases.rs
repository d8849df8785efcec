//! The `leases` answer from the live bindings: one page at a time, at most
//! [`MAX_LEASE_LIMIT`](super::protocol::MAX_LEASE_LIMIT) entries, built off
//! the shard locks.
//!
//! The walk is [`Bindings::scan`]: one address shard's lock held for at most
//! [`SCAN_STEP`] slots, during which matching bindings of the page are only
//! copied out. Formatting them happens after the lock is let go, so a worker
//! waits behind a `leases` request for one step at most, however large the
//! table or the page. Every page walks the whole table to count `total`.

use std::hash::BuildHasher;

use crate::protocol::bindings::{Bindings, ScanPos, SCAN_STEP};
use crate::protocol::{LeaseKind, LeaseOp, LeaseRecord};

use super::protocol::{LeaseCursor, LeaseEntry, LeaseFilter, LeaseList};

/// A value that tells this server process's cursors from another's: a
/// cursor names places in this process's table, which a restart rebuilds.
pub fn new_run_id() -> u32 {
    let h = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    (h ^ (h >> 32)) as u32
}

/// One page of the bindings that match `filter` and are in force at `now`
/// (Unix seconds), after `filter.after`. `run` is this process's
/// [`new_run_id`]; a cursor from another run is refused.
pub fn page(
    bindings: &Bindings,
    filter: &LeaseFilter,
    now: u64,
    run: u32,
) -> Result<LeaseList, String> {
    page_with(bindings, filter, now, run, entry_of)
}

/// [`page`] with the step that turns a copied binding into its entry as a
/// parameter, so that a test can check that it runs with no lock held.
pub(crate) fn page_with(
    bindings: &Bindings,
    filter: &LeaseFilter,
    now: u64,
    run: u32,
    mut entry: impl FnMut(&LeaseRecord) -> LeaseEntry,
) -> Result<LeaseList, String> {
    let start = match filter.after {
        None => ScanPos::default(),
        Some(c) if c.run == run => c.at.next(),
        Some(_) => {
            return Err(
                "bad request: after: the cursor is from an earlier run of the \
                        server (it restarted since); start again without \"after\""
                    .into(),
            )
        }
    };
    let mut list = LeaseList {
        leases: Vec::with_capacity(filter.limit.min(SCAN_STEP as usize)),
        limit: filter.limit as u64,
        ..LeaseList::default()
    };
    let mut copied: Vec<(ScanPos, LeaseRecord)> = Vec::with_capacity(SCAN_STEP as usize);
    let mut last = None;
    let mut at = Some(ScanPos::default());
    while let Some(from) = at {
        let room = filter.limit - list.leases.len();
        let (mut total, mut beyond) = (0, false);
        // Under the shard lock: test, count and copy, nothing else.
        at = bindings.scan(from, |pos, b, duid| {
            // Ended (lease or quarantine) but not swept yet: no longer held.
            if b.valid_until <= now || !filter.matches(duid, b.addr, b.prefix_len) {
                return;
            }
            total += 1;
            if pos < start {
                return;
            }
            if copied.len() == room {
                beyond = true;
                return;
            }
            // Stored DUIDs are never longer than a record holds.
            if let Some(rec) = b.record(duid) {
                copied.push((pos, rec));
            }
        });
        list.total += total;
        list.truncated |= beyond;
        for (pos, rec) in copied.drain(..) {
            list.leases.push(entry(&rec));
            last = Some(pos);
        }
    }
    if list.truncated {
        // With `limit` 0 nothing was listed: the next page starts where this one did.
        list.next = match last {
            Some(at) => Some(LeaseCursor { run, at }.to_string()),
            None => filter.after.map(|c| c.to_string()),
        };
    }
    Ok(list)
}

/// The entry `leases` lists for one binding or quarantine entry.
pub fn entry_of(rec: &LeaseRecord) -> LeaseEntry {
    LeaseEntry {
        kind: kind_name(rec.kind).into(),
        lease: match rec.kind {
            LeaseKind::Na => rec.addr.to_string(),
            LeaseKind::Pd => format!("{}/{}", rec.addr, rec.prefix_len),
        },
        duid: hex::encode(rec.duid()),
        iaid: rec.iaid,
        preferred_until: rec.preferred_until,
        valid_until: rec.valid_until,
        state: match rec.op {
            LeaseOp::Decline => "declined",
            _ => "active",
        }
        .into(),
    }
}

/// `"na"` or `"pd"`, as `leases` and `stats` name the kinds.
pub fn kind_name(k: LeaseKind) -> &'static str {
    match k {
        LeaseKind::Na => "na",
        LeaseKind::Pd => "pd",
    }
}

#[cfg(test)]
mod tests;
