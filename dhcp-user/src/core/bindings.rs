//! Live bindings, sharded by a stable hash, and declined-address quarantine.
//!
//! Two kinds of shard, each a `Mutex`:
//! - address shards (chosen by a hash of the address) own the binding slots
//!   (the private `slab` module) and the by-address index;
//! - client shards (chosen by a hash of DUID, IAID and IA type) hold only an
//!   index from that hash to the global slot id.
//!
//! Lock order, which makes deadlock impossible: at most one client shard is
//! locked blocking, and only while no other lock is held; address shards are
//! locked after it, one at a time. A second client shard is only ever
//! `try_lock`ed. No lock is held across I/O (the core does none).
//!
//! Expiry is lazy: an expired binding is invisible to its client, its address
//! is reusable (reclaimed by the next commit there), and [`Bindings::sweep`]
//! removes what is left and reports Expire records for the journal.

mod slab;

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use self::slab::{secs32, AddrShard, Slot, STATE_DECLINED, STATE_FREE, STATE_NA, STATE_PD};
use super::lease::{LeaseKind, LeaseOp, LeaseRecord, MAX_DUID_LEN};
use super::sip::{sip13_word_then, Sip};
use super::table::IdTable;
use super::Timestamp;

const SHARD_BITS: u32 = 6;
/// Number of address shards and of client shards.
pub const SHARDS: usize = 1 << SHARD_BITS;
const LOCAL_BITS: u32 = 26;
/// Pool index of a binding outside every configured pool (restored from an older config).
pub const NO_POOL: u16 = u16::MAX;
/// Seconds after a sweep for which ended bindings are found from a list
/// rather than a scan (the server sweeps every 10 s).
pub const EXPIRY_WINDOW: u64 = 60;

/// Who a binding belongs to: RFC 9915 identifies an IA by DUID, IAID and type.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey<'a> {
    /// The client's DUID (RFC 9915 §11), as sent in its Client Identifier option.
    pub duid: &'a [u8],
    /// The IAID of the IA_NA or IA_PD (RFC 9915 §12).
    pub iaid: u32,
    /// Whether the IA is an IA_NA or an IA_PD.
    pub kind: LeaseKind,
}

/// A copy of one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Address binding (IA_NA) or delegated prefix (IA_PD).
    pub kind: LeaseKind,
    /// The address, or the delegated prefix's first address.
    pub addr: Ipv6Addr,
    /// 128 for an address, the delegated length for a prefix.
    pub prefix_len: u8,
    /// The IAID of the IA the binding belongs to.
    pub iaid: u32,
    /// Index into the server's pool list, or [`NO_POOL`] when no configured pool holds it.
    pub pool: u16,
    /// Unix seconds when the preferred lifetime ends.
    pub preferred_until: u64,
    /// Unix seconds when the valid lifetime ends; the binding is gone at that time
    /// (for a declined address, the end of its quarantine).
    pub valid_until: u64,
    /// Quarantined after a Decline (no client owns it any more).
    pub declined: bool,
}

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// A new binding (or the client's own expired one at the same address).
    Created,
    /// The client's live binding at that address got new lifetimes.
    Extended,
    /// The client's previous binding (returned) was replaced by one at a new address.
    Moved(Binding),
}

/// The address is held by another client or quarantined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("address or prefix is bound to another client")]
pub struct Taken;

/// The binding store. `Send + Sync`; share it by reference.
#[derive(Debug)]
pub struct Bindings {
    /// SipHash-1-3 keyed state for the shard and index hashes: keyed, so
    /// clients cannot choose DUIDs that pile up in one shard or bucket.
    hasher: Sip,
    addr_shards: Box<[Mutex<AddrShard>]>,
    client_shards: Box<[Mutex<IdTable>]>,
    pool_used: Box<[AtomicU64]>,
    live_na: AtomicU64,
    live_pd: AtomicU64,
}

fn state_of(kind: LeaseKind) -> u8 {
    match kind {
        LeaseKind::Na => STATE_NA,
        LeaseKind::Pd => STATE_PD,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard would be a bug in this module; the data is
    // still consistent between operations, so keep serving rather than cascade.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn shard_of(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

fn global(shard: usize, local: u32) -> u32 {
    ((shard as u32) << LOCAL_BITS) | local
}

fn split(id: u32) -> (usize, u32) {
    ((id >> LOCAL_BITS) as usize, id & ((1 << LOCAL_BITS) - 1))
}

fn to_binding(s: &Slot) -> Binding {
    Binding {
        kind: if s.state == STATE_PD {
            LeaseKind::Pd
        } else {
            LeaseKind::Na
        },
        addr: Ipv6Addr::from(s.addr()),
        prefix_len: s.prefix_len,
        iaid: s.iaid,
        pool: s.pool,
        preferred_until: u64::from(s.preferred_until),
        valid_until: u64::from(s.valid_until),
        declined: s.state == STATE_DECLINED,
    }
}

impl Bindings {
    /// An empty store for `pools` pools (indices `0..pools` in [`Binding::pool`]).
    /// `hash_key` keys the shard hash (internal, never persisted).
    pub fn new(pools: usize, hash_key: [u8; 16]) -> Bindings {
        Bindings {
            hasher: Sip::new(&hash_key, false),
            addr_shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            client_shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            pool_used: (0..pools).map(|_| AtomicU64::new(0)).collect(),
            live_na: AtomicU64::new(0),
            live_pd: AtomicU64::new(0),
        }
    }

    /// The shard hash of a client key; pass it to the `*_hashed` methods to
    /// hash once per IA instead of once per call.
    pub fn client_hash(&self, key: &ClientKey) -> u64 {
        // Internal only (never persisted or shared), so the layout is free:
        // one word of kind, IAID and DUID length, then the DUID in place.
        let duid = &key.duid[..key.duid.len().min(MAX_DUID_LEN)];
        let head = u64::from(state_of(key.kind))
            | (u64::from(key.iaid) << 8)
            | ((duid.len() as u64) << 40);
        sip13_word_then(&self.hasher, head, duid)
    }

    fn addr_hash(&self, addr: u128) -> u64 {
        // SipHash-1-3 of the 16 address bytes (two words, big-endian halves).
        let mut s = self.hasher;
        s.compress::<1>((addr >> 64) as u64);
        s.compress::<1>(addr as u64);
        s.finish64::<1, 3>(16 << 56)
    }

    /// Client-index lookup with the client shard already locked.
    fn find_in(&self, index: &IdTable, hash: u64, key: &ClientKey) -> Option<u32> {
        let state = state_of(key.kind);
        index.find(hash, |gid| {
            let (s, local) = split(gid);
            lock(&self.addr_shards[s]).matches(local, state, key.iaid, key.duid)
        })
    }

    fn read(&self, gid: u32) -> Binding {
        let (s, local) = split(gid);
        to_binding(lock(&self.addr_shards[s]).slot(local))
    }

    /// The client's binding of this IA type and IAID, if any and still valid at `now`.
    pub fn find(&self, key: &ClientKey, now: Timestamp) -> Option<Binding> {
        self.find_hashed(key, self.client_hash(key), now)
    }

    /// [`Bindings::find`] with `hash = self.client_hash(key)`.
    pub fn find_hashed(&self, key: &ClientKey, hash: u64, now: Timestamp) -> Option<Binding> {
        let index = lock(&self.client_shards[shard_of(hash)]);
        let b = self.read(self.find_in(&index, hash, key)?);
        (b.valid_until > now.0).then_some(b)
    }

    /// Whether `addr` may be given to `key` at `now`: unbound, expired, or already theirs.
    pub fn usable(&self, addr: u128, key: &ClientKey, now: Timestamp) -> bool {
        let hash = self.addr_hash(addr);
        let shard = lock(&self.addr_shards[shard_of(hash)]);
        match shard.find_addr(hash, addr) {
            None => true,
            Some(id) => {
                let s = shard.slot(id);
                u64::from(s.valid_until) <= now.0
                    || shard.matches(id, state_of(key.kind), key.iaid, key.duid)
            }
        }
    }

    /// Who holds `addr` (a live or quarantined binding), with the owner's DUID.
    pub fn by_addr(&self, addr: Ipv6Addr, now: Timestamp) -> Option<(Binding, Vec<u8>)> {
        let a = u128::from(addr);
        let hash = self.addr_hash(a);
        let shard = lock(&self.addr_shards[shard_of(hash)]);
        let id = shard.find_addr(hash, a)?;
        let b = to_binding(shard.slot(id));
        (b.valid_until > now.0).then(|| (b, shard.duid(id).to_vec()))
    }

    /// Bind `addr/prefix_len` to `key` with these lifetimes (Unix seconds).
    /// Replaces the client's binding at another address, if any.
    #[expect(
        clippy::too_many_arguments,
        reason = "a binding is this many facts; a struct would only be rebuilt by every caller"
    )]
    pub fn commit(
        &self,
        key: &ClientKey,
        addr: Ipv6Addr,
        prefix_len: u8,
        pool: u16,
        preferred_until: u64,
        valid_until: u64,
        now: Timestamp,
    ) -> Result<Committed, Taken> {
        let hash = self.client_hash(key);
        self.commit_hashed(
            key,
            hash,
            addr,
            prefix_len,
            pool,
            preferred_until,
            valid_until,
            now,
        )
    }

    /// [`Bindings::commit`] with `chash = self.client_hash(key)`.
    #[expect(
        clippy::too_many_arguments,
        reason = "commit plus the precomputed hash"
    )]
    pub fn commit_hashed(
        &self,
        key: &ClientKey,
        chash: u64,
        addr: Ipv6Addr,
        prefix_len: u8,
        pool: u16,
        preferred_until: u64,
        valid_until: u64,
        now: Timestamp,
    ) -> Result<Committed, Taken> {
        let a = u128::from(addr);
        let cshard = shard_of(chash);
        let mut index = lock(&self.client_shards[cshard]);
        let existing = self.find_in(&index, chash, key);
        if let Some(gid) = existing {
            let (s, local) = split(gid);
            let mut shard = lock(&self.addr_shards[s]);
            let slot = shard.slot_mut(local);
            if slot.addr() == a {
                let was_live = u64::from(slot.valid_until) > now.0;
                slot.preferred_until = secs32(preferred_until);
                slot.valid_until = secs32(valid_until);
                slot.prefix_len = prefix_len;
                shard.note_end(local, secs32(valid_until));
                return Ok(if was_live {
                    Committed::Extended
                } else {
                    Committed::Created
                });
            }
        }
        // Claim the new address first, so a Taken result leaves everything unchanged.
        let ahash = self.addr_hash(a);
        let ashard = shard_of(ahash);
        {
            let mut shard = lock(&self.addr_shards[ashard]);
            if let Some(id) = shard.find_addr(ahash, a) {
                let s = *shard.slot(id);
                if u64::from(s.valid_until) > now.0 {
                    return Err(Taken);
                }
                // Expired: reclaim it. Its owner's index entry lives in another
                // client shard, which we may only try_lock (lock order).
                if s.state != STATE_DECLINED {
                    let owner = ClientKey {
                        duid: shard.duid(id),
                        iaid: s.iaid,
                        kind: to_binding(&s).kind,
                    };
                    let ohash = self.client_hash(&owner);
                    let oshard = shard_of(ohash);
                    if oshard == cshard {
                        index.remove(ohash, global(ashard, id));
                    } else {
                        match self.client_shards[oshard].try_lock() {
                            Ok(mut other) => {
                                other.remove(ohash, global(ashard, id));
                            }
                            Err(_) => return Err(Taken),
                        }
                    }
                }
                self.forget(&s);
                shard.remove(ahash, id);
            }
            let slot = Slot {
                addr: a.to_be_bytes(),
                preferred_until: secs32(preferred_until),
                valid_until: secs32(valid_until),
                iaid: key.iaid,
                pool,
                state: state_of(key.kind),
                prefix_len,
                duid_len: 0,
                duid: [0; slab::INLINE_DUID],
            };
            let local = shard.insert(ahash, slot, key.duid);
            index.insert(chash, global(ashard, local));
            self.count(&slot, 1);
        }
        let Some(old) = existing else {
            return Ok(Committed::Created);
        };
        let (s, local) = split(old);
        let mut shard = lock(&self.addr_shards[s]);
        let slot = *shard.slot(local);
        index.remove(chash, old);
        shard.remove(self.addr_hash(slot.addr()), local);
        self.forget(&slot);
        Ok(Committed::Moved(to_binding(&slot)))
    }

    fn count(&self, s: &Slot, delta: i64) {
        let add = |c: &AtomicU64| {
            if delta > 0 {
                c.fetch_add(1, Ordering::Relaxed);
            } else {
                c.fetch_sub(1, Ordering::Relaxed);
            }
        };
        if let Some(c) = self.pool_used.get(usize::from(s.pool)) {
            add(c);
        }
        match s.state {
            STATE_NA => add(&self.live_na),
            STATE_PD => add(&self.live_pd),
            _ => {}
        }
    }

    fn forget(&self, s: &Slot) {
        self.count(s, -1)
    }

    /// Remove the client's binding at `addr` (Release). Returns it.
    pub fn release(&self, key: &ClientKey, addr: Ipv6Addr, now: Timestamp) -> Option<Binding> {
        self.take(key, addr, now, None)
    }

    /// Quarantine the client's binding at `addr` until `until` (Decline):
    /// it leaves the client and is never handed out before `until`.
    pub fn decline(
        &self,
        key: &ClientKey,
        addr: Ipv6Addr,
        now: Timestamp,
        until: u64,
    ) -> Option<Binding> {
        self.take(key, addr, now, Some(until))
    }

    fn take(
        &self,
        key: &ClientKey,
        addr: Ipv6Addr,
        now: Timestamp,
        quarantine: Option<u64>,
    ) -> Option<Binding> {
        let chash = self.client_hash(key);
        let mut index = lock(&self.client_shards[shard_of(chash)]);
        let gid = self.find_in(&index, chash, key)?;
        let (s, local) = split(gid);
        let mut shard = lock(&self.addr_shards[s]);
        let slot = *shard.slot(local);
        if slot.addr() != u128::from(addr) || u64::from(slot.valid_until) <= now.0 {
            return None;
        }
        index.remove(chash, gid);
        match quarantine {
            None => {
                shard.remove(self.addr_hash(slot.addr()), local);
                self.forget(&slot);
            }
            Some(until) => {
                self.count(&slot, -1);
                let q = shard.slot_mut(local);
                q.state = STATE_DECLINED;
                q.valid_until = secs32(until);
                q.preferred_until = 0;
                let q = *q;
                shard.note_end(local, q.valid_until);
                self.count(&q, 1);
            }
        }
        Some(to_binding(&slot))
    }

    /// Remove every binding (and quarantine entry) whose valid lifetime ended
    /// at or before `now`; append an Expire record for each to `out`.
    /// Also starts each shard's expiry window (now .. now + [`EXPIRY_WINDOW`]),
    /// which [`Bindings::ended_by`] reads.
    pub fn sweep(&self, now: Timestamp, out: &mut Vec<LeaseRecord>) {
        let until = now.0 + EXPIRY_WINDOW;
        let mut soon = Vec::new();
        for s in 0..SHARDS {
            let expired: Vec<u32> = {
                let mut shard = lock(&self.addr_shards[s]);
                soon.clear();
                let mut expired = Vec::new();
                for id in shard.occupied() {
                    let end = u64::from(shard.slot(id).valid_until);
                    if end <= now.0 {
                        expired.push(id);
                    } else if end <= until {
                        soon.push(id);
                    }
                }
                shard.set_window(until, &soon);
                expired
            };
            for local in expired {
                self.remove_if(s, local, |slot| u64::from(slot.valid_until) <= now.0, out);
            }
        }
    }

    /// Remove slot `local` of address shard `s` when `pred` still holds once
    /// both locks are taken in order (client shard, then address shard).
    fn remove_if(
        &self,
        s: usize,
        local: u32,
        pred: impl Fn(&Slot) -> bool,
        out: &mut Vec<LeaseRecord>,
    ) {
        let (slot, duid) = {
            let shard = lock(&self.addr_shards[s]);
            (*shard.slot(local), shard.duid(local).to_vec())
        };
        if slot.state == STATE_FREE || !pred(&slot) {
            return;
        }
        let owner = (slot.state != STATE_DECLINED).then(|| {
            self.client_hash(&ClientKey {
                duid: &duid,
                iaid: slot.iaid,
                kind: to_binding(&slot).kind,
            })
        });
        let mut index = owner.map(|h| lock(&self.client_shards[shard_of(h)]));
        let mut shard = lock(&self.addr_shards[s]);
        let now_slot = *shard.slot(local);
        // Re-check: the slot may have been reused between the two lock phases.
        if now_slot.state != slot.state
            || now_slot.addr != slot.addr
            || shard.duid(local) != duid.as_slice()
            || !pred(&now_slot)
        {
            return;
        }
        if let (Some(index), Some(h)) = (index.as_mut(), owner) {
            index.remove(h, global(s, local));
        }
        shard.remove(self.addr_hash(slot.addr()), local);
        self.forget(&now_slot);
        out.extend(record_of(&now_slot, &duid, LeaseOp::Expire));
    }

    /// Apply one journal record at start-up (or from a peer): the journal's
    /// order is the truth, so a Commit evicts whoever holds that address.
    pub fn apply(&self, rec: &LeaseRecord, pool: u16) {
        let a = u128::from(rec.addr);
        let key = ClientKey {
            duid: rec.duid(),
            iaid: rec.iaid,
            kind: rec.kind,
        };
        let ahash = self.addr_hash(a);
        let s = shard_of(ahash);
        let holder = lock(&self.addr_shards[s]).find_addr(ahash, a);
        let mut sink = Vec::new();
        match rec.op {
            LeaseOp::Commit | LeaseOp::Decline => {
                if let Some(local) = holder {
                    self.remove_if(s, local, |_| true, &mut sink);
                }
                let Ok(_) = self.commit(
                    &key,
                    rec.addr,
                    rec.prefix_len,
                    pool,
                    rec.preferred_until,
                    rec.valid_until,
                    Timestamp(0),
                ) else {
                    return;
                };
                if rec.op == LeaseOp::Decline {
                    self.decline(&key, rec.addr, Timestamp(0), rec.valid_until);
                }
            }
            LeaseOp::Release | LeaseOp::Expire => {
                if let Some(local) = holder {
                    self.remove_if(
                        s,
                        local,
                        |slot| slot.iaid == rec.iaid || slot.state == STATE_DECLINED,
                        &mut sink,
                    );
                }
            }
        }
    }

    /// Call `f` with a record for every binding and quarantine entry
    /// (Commit, or Decline for quarantine). For `leases` and snapshots.
    pub fn for_each(&self, mut f: impl FnMut(&LeaseRecord)) {
        for s in 0..SHARDS {
            let shard = lock(&self.addr_shards[s]);
            for id in shard.occupied() {
                let slot = shard.slot(id);
                let op = if slot.state == STATE_DECLINED {
                    LeaseOp::Decline
                } else {
                    LeaseOp::Commit
                };
                if let Some(r) = record_of(slot, shard.duid(id), op) {
                    f(&r);
                }
            }
        }
    }

    /// What has ended by `now` but is still held until the next sweep: per
    /// pool (bindings and quarantine entries, indexed like [`Binding::pool`]),
    /// and (address bindings, prefix bindings). Subtract it from
    /// [`Bindings::pool_used`] and [`Bindings::counts`] for what is in use at
    /// `now`. Reads each shard's expiry window; scans a shard only when `now`
    /// is outside it (no sweep for a minute, or none yet).
    pub fn ended_by(&self, now: Timestamp) -> (Vec<u64>, u64, u64) {
        let mut per_pool = vec![0u64; self.pool_used.len()];
        let (mut na, mut pd) = (0, 0);
        for shard in self.addr_shards.iter() {
            lock(shard).ended_by(now.0, |slot| {
                if let Some(c) = per_pool.get_mut(usize::from(slot.pool)) {
                    *c += 1;
                }
                match slot.state {
                    STATE_NA => na += 1,
                    STATE_PD => pd += 1,
                    _ => {}
                }
            });
        }
        (per_pool, na, pd)
    }

    /// Bindings plus quarantine entries in pool `pool`.
    pub fn pool_used(&self, pool: u16) -> u64 {
        self.pool_used
            .get(usize::from(pool))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Address and prefix bindings held (including expired ones not yet
    /// swept; see [`Bindings::ended_by`]).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.live_na.load(Ordering::Relaxed),
            self.live_pd.load(Ordering::Relaxed),
        )
    }

    /// Heap bytes held by all shards (for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        self.addr_shards
            .iter()
            .map(|s| lock(s).heap_bytes())
            .sum::<usize>()
            + self
                .client_shards
                .iter()
                .map(|s| lock(s).heap_bytes())
                .sum::<usize>()
    }
}

/// A lease record describing `slot`.
pub fn record_of(slot: &Slot, duid: &[u8], op: LeaseOp) -> Option<LeaseRecord> {
    let b = to_binding(slot);
    LeaseRecord::new(
        op,
        b.kind,
        b.addr,
        b.prefix_len,
        b.iaid,
        duid,
        b.preferred_until,
        b.valid_until,
    )
}

#[cfg(test)]
mod tests;
