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

mod pools;
mod slab;

use std::hash::BuildHasherDefault;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, TryLockError};

use self::pools::Accounts;
pub use self::pools::{PoolRef, PoolSpan, PoolSpans};
use self::slab::{secs32, AddrShard, Slot, STATE_DECLINED, STATE_FREE, STATE_NA, STATE_PD};
use super::lease::{LeaseKind, LeaseOp, LeaseRecord, MAX_DUID_LEN};
use super::sip::{sip13_word_then, Sip};
use super::table::IdTable;
use super::Timestamp;

/// Bindings per client, keyed by [`Bindings::duid_hash`] (already a keyed
/// SipHash, so the map does not hash it again).
type Holders = dashmap::DashMap<u64, u32, BuildHasherDefault<nohash_hasher::NoHashHasher<u64>>>;

const SHARD_BITS: u32 = 6;
/// Number of address shards and of client shards.
pub const SHARDS: usize = 1 << SHARD_BITS;
const LOCAL_BITS: u32 = 26;
/// Pool index of a binding outside every configured pool (restored from an older config).
pub const NO_POOL: u16 = u16::MAX;
/// Seconds after a sweep for which ended bindings are found from a list
/// rather than a scan (the server sweeps every 10 s).
pub const EXPIRY_WINDOW: u64 = 60;

/// Slots [`Bindings::scan`] visits under one hold of an address-shard lock.
/// It bounds how long a worker can wait behind a walk of the table (the
/// `leases` request), whatever the table's size or the page asked for.
pub const SCAN_STEP: u32 = 1024;

/// A place in the order [`Bindings::scan`] walks: address shard, then slot.
/// A binding keeps its place for as long as it exists (a Renew extends it in
/// its slot), so a walk resumed after a place meets every binding that
/// existed throughout once, however the table changed in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScanPos {
    /// The address shard, `0..SHARDS`.
    pub shard: u32,
    /// The slot inside it, below `2^26`.
    pub slot: u32,
}

impl ScanPos {
    /// The largest slot index a place can name.
    pub const MAX_SLOT: u32 = (1 << LOCAL_BITS) - 1;

    /// The place right after this one (where a walk resumes).
    pub fn next(self) -> ScanPos {
        ScanPos {
            shard: self.shard,
            slot: self.slot.saturating_add(1),
        }
    }
}

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
    /// The pool spans of the policy in force and a use counter per pool.
    /// Every operation that counts holds it shared from start to end;
    /// [`Bindings::adopt`] holds it exclusively to re-index every binding.
    /// Always taken before any shard lock, never while one is held.
    accounts: RwLock<Accounts>,
    live_na: AtomicU64,
    live_pd: AtomicU64,
    /// Address and prefix bindings each client (DUID) holds, expired ones
    /// not yet swept included; quarantine entries belong to nobody. For
    /// `limits.bindings_per_client`. A leaf lock: nothing else is locked
    /// while one of its shards is held. Two DUIDs whose 64-bit hashes
    /// collide would share a count (about one pair in 10^7 at a million
    /// clients), which can only refuse early, never allow more.
    holders: Holders,
    /// Shard locks found poisoned (see [`Bindings::poisoned`]).
    poisoned: AtomicU64,
}

fn state_of(kind: LeaseKind) -> u8 {
    match kind {
        LeaseKind::Na => STATE_NA,
        LeaseKind::Pd => STATE_PD,
    }
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
    /// An empty store counting against `spans` (indices into it in
    /// [`Binding::pool`]). `hash_key` keys the shard hash (internal, never persisted).
    pub fn new(spans: Arc<PoolSpans>, hash_key: [u8; 16]) -> Bindings {
        Bindings {
            hasher: Sip::new(&hash_key, false),
            addr_shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            client_shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            accounts: RwLock::new(Accounts::new(spans)),
            live_na: AtomicU64::new(0),
            live_pd: AtomicU64::new(0),
            holders: Holders::default(),
            poisoned: AtomicU64::new(0),
        }
    }

    /// The accounts, shared. Poison is ignored: nothing that can panic
    /// runs under the exclusive lock between writes that must go together
    /// (see `adopt`), and a shared holder cannot change them.
    fn accounts(&self) -> RwLockReadGuard<'_, Accounts> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner())
    }

    fn addr_shard(&self, s: usize) -> MutexGuard<'_, AddrShard> {
        let m = &self.addr_shards[s];
        m.lock()
            .unwrap_or_else(|p| self.recover(m, p.into_inner(), "address", s))
    }

    fn client_shard(&self, s: usize) -> MutexGuard<'_, IdTable> {
        let m = &self.client_shards[s];
        m.lock()
            .unwrap_or_else(|p| self.recover(m, p.into_inner(), "client", s))
    }

    /// A thread panicked while holding this shard: a bug (nothing here panics
    /// on input), typically in a data plane worker, which its supervisor
    /// (`dataplane/supervise.rs`) restarts. We keep serving with the shard as
    /// the panic left it, rather than refuse every later lease of 1/64 of the
    /// clients or addresses until a restart. What that can cost:
    ///
    /// - Each step of an operation (a slot write, a free-list or index
    ///   update) is a few stores with nothing that panics on valid ids, so a
    ///   panic (an id out of range, say) lands between steps and the slots,
    ///   free list and indexes stay well formed. Address uniqueness holds:
    ///   a commit inserts only after `find_addr` under the same
    ///   address-shard lock found the address free.
    /// - An operation spans several steps and a panic between two of them
    ///   leaves it half done: a binding whose client-index entry is gone or
    ///   not yet written (its client does not find it and gets another
    ///   address; this one stays held until its valid lifetime ends and the
    ///   sweep frees it), a client-index entry to a freed or reused slot
    ///   (harmless: lookups check the slot's key), or `pool_used` and the
    ///   lease counts off by one (a count never incremented for a binding
    ///   that is later removed stays at zero rather than wrapping). A
    ///   restart recovers exact state from the journal.
    ///
    /// So the event is counted ([`Bindings::poisoned`]) and logged once:
    /// the poison flag is cleared, so the next lock of this shard is normal
    /// (a second panic counts again).
    #[cold]
    fn recover<'a, T>(
        &self,
        m: &Mutex<T>,
        guard: MutexGuard<'a, T>,
        kind: &'static str,
        shard: usize,
    ) -> MutexGuard<'a, T> {
        m.clear_poison();
        let n = self.poisoned.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(
            kind,
            shard,
            poisoned = n,
            "a thread panicked holding a binding shard; serving on with the shard as it was left (lease counts may be off until a restart)"
        );
        guard
    }

    /// How many times a shard lock was found poisoned (a thread panicked
    /// while holding it) since start: nonzero means pool and lease counts
    /// may be off by that much, and a bug to report.
    pub fn poisoned(&self) -> u64 {
        self.poisoned.load(Ordering::Relaxed)
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

    /// The key of a client in the per-client counts: the DUID alone (a
    /// client's IAs have their own [`Bindings::client_hash`] each).
    fn duid_hash(&self, duid: &[u8]) -> u64 {
        let duid = &duid[..duid.len().min(MAX_DUID_LEN)];
        // The head's low byte is no slot state, so this never equals a client_hash.
        sip13_word_then(&self.hasher, 0xff | ((duid.len() as u64) << 40), duid)
    }

    /// How many address and prefix bindings `duid` holds (those whose valid
    /// lifetime ended but that the sweep has not removed yet included).
    pub fn held_by(&self, duid: &[u8]) -> u32 {
        self.holders.get(&self.duid_hash(duid)).map_or(0, |n| *n)
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
            self.addr_shard(s).matches(local, state, key.iaid, key.duid)
        })
    }

    fn read(&self, gid: u32) -> Binding {
        let (s, local) = split(gid);
        to_binding(self.addr_shard(s).slot(local))
    }

    /// The client's binding of this IA type and IAID, if any and still valid at `now`.
    pub fn find(&self, key: &ClientKey, now: Timestamp) -> Option<Binding> {
        self.find_hashed(key, self.client_hash(key), now)
    }

    /// [`Bindings::find`] with `hash = self.client_hash(key)`.
    pub fn find_hashed(&self, key: &ClientKey, hash: u64, now: Timestamp) -> Option<Binding> {
        let index = self.client_shard(shard_of(hash));
        let b = self.read(self.find_in(&index, hash, key)?);
        (b.valid_until > now.0).then_some(b)
    }

    /// Whether the IA has a binding here, even one whose valid lifetime has
    /// ended (not yet swept): committing for it then reuses or moves that
    /// binding rather than adding one. `hash = self.client_hash(key)`.
    pub fn indexed(&self, key: &ClientKey, hash: u64) -> bool {
        let index = self.client_shard(shard_of(hash));
        self.find_in(&index, hash, key).is_some()
    }

    /// Whether `addr` may be given to `key` at `now`: unbound, expired, or already theirs.
    pub fn usable(&self, addr: u128, key: &ClientKey, now: Timestamp) -> bool {
        let hash = self.addr_hash(addr);
        let shard = self.addr_shard(shard_of(hash));
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
        let shard = self.addr_shard(shard_of(hash));
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
            PoolRef::current(pool),
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
        pool: PoolRef<'_>,
        preferred_until: u64,
        valid_until: u64,
        now: Timestamp,
    ) -> Result<Committed, Taken> {
        let acc = self.accounts();
        self.commit_in(
            &acc,
            key,
            chash,
            addr,
            prefix_len,
            pool,
            preferred_until,
            valid_until,
            now,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "commit_hashed plus the accounts it holds"
    )]
    fn commit_in(
        &self,
        acc: &Accounts,
        key: &ClientKey,
        chash: u64,
        addr: Ipv6Addr,
        prefix_len: u8,
        pool: PoolRef<'_>,
        preferred_until: u64,
        valid_until: u64,
        now: Timestamp,
    ) -> Result<Committed, Taken> {
        let a = u128::from(addr);
        // The caller chose the pool under its policy; if the store has
        // adopted another policy's spans since, find the pool again.
        let pool = match pool.spans {
            Some(spans) if !std::ptr::eq(spans, &*acc.spans) => {
                acc.spans.find(key.kind, a, prefix_len)
            }
            _ => pool.index,
        };
        let cshard = shard_of(chash);
        let mut index = self.client_shard(cshard);
        let existing = self.find_in(&index, chash, key);
        if let Some(gid) = existing {
            let (s, local) = split(gid);
            let mut shard = self.addr_shard(s);
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
            let mut shard = self.addr_shard(ashard);
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
                        let mut other = match self.client_shards[oshard].try_lock() {
                            Ok(other) => other,
                            Err(TryLockError::Poisoned(p)) => self.recover(
                                &self.client_shards[oshard],
                                p.into_inner(),
                                "client",
                                oshard,
                            ),
                            Err(TryLockError::WouldBlock) => return Err(Taken),
                        };
                        other.remove(ohash, global(ashard, id));
                    }
                }
                self.forget(acc, &s, shard.duid(id));
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
            self.count(acc, &slot, key.duid, 1);
        }
        let Some(old) = existing else {
            return Ok(Committed::Created);
        };
        let (s, local) = split(old);
        let mut shard = self.addr_shard(s);
        let slot = *shard.slot(local);
        index.remove(chash, old);
        shard.remove(self.addr_hash(slot.addr()), local);
        self.forget(acc, &slot, key.duid);
        Ok(Committed::Moved(to_binding(&slot)))
    }

    fn count(&self, acc: &Accounts, s: &Slot, duid: &[u8], delta: i64) {
        let add = |c: &AtomicU64| {
            if delta > 0 {
                c.fetch_add(1, Ordering::Relaxed);
            } else {
                // Saturating: after a panic mid-operation (see `recover`) a
                // count may miss an increment; wrapping would make the pool
                // look full and turn off its linear scan for good.
                let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(1))
                });
            }
        };
        if let Some(c) = acc.used.get(usize::from(s.pool)) {
            add(c);
        }
        match s.state {
            STATE_NA => add(&self.live_na),
            STATE_PD => add(&self.live_pd),
            _ => return,
        }
        let h = self.duid_hash(duid);
        if delta > 0 {
            *self.holders.entry(h).or_insert(0) += 1;
        } else {
            // Saturating for the reason above; an entry at zero goes, so the
            // map holds only clients with bindings.
            self.holders.remove_if_mut(&h, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
    }

    fn forget(&self, acc: &Accounts, s: &Slot, duid: &[u8]) {
        self.count(acc, s, duid, -1)
    }

    /// Remove the client's binding at `addr` (Release). Returns it.
    pub fn release(&self, key: &ClientKey, addr: Ipv6Addr, now: Timestamp) -> Option<Binding> {
        self.take(&self.accounts(), key, addr, now, None)
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
        self.take(&self.accounts(), key, addr, now, Some(until))
    }

    fn take(
        &self,
        acc: &Accounts,
        key: &ClientKey,
        addr: Ipv6Addr,
        now: Timestamp,
        quarantine: Option<u64>,
    ) -> Option<Binding> {
        let chash = self.client_hash(key);
        let mut index = self.client_shard(shard_of(chash));
        let gid = self.find_in(&index, chash, key)?;
        let (s, local) = split(gid);
        let mut shard = self.addr_shard(s);
        let slot = *shard.slot(local);
        if slot.addr() != u128::from(addr) || u64::from(slot.valid_until) <= now.0 {
            return None;
        }
        index.remove(chash, gid);
        match quarantine {
            None => {
                shard.remove(self.addr_hash(slot.addr()), local);
                self.forget(acc, &slot, key.duid);
            }
            Some(until) => {
                self.count(acc, &slot, key.duid, -1);
                let q = shard.slot_mut(local);
                q.state = STATE_DECLINED;
                q.valid_until = secs32(until);
                q.preferred_until = 0;
                let q = *q;
                shard.note_end(local, q.valid_until);
                self.count(acc, &q, key.duid, 1);
            }
        }
        Some(to_binding(&slot))
    }

    /// Remove every binding (and quarantine entry) whose valid lifetime ended
    /// at or before `now`; append an Expire record for each to `out`.
    /// Also starts each shard's expiry window (now .. now + [`EXPIRY_WINDOW`]),
    /// which [`Bindings::ended_by`] reads.
    pub fn sweep(&self, now: Timestamp, out: &mut Vec<LeaseRecord>) {
        let acc = self.accounts();
        let until = now.0 + EXPIRY_WINDOW;
        let mut soon = Vec::new();
        for s in 0..SHARDS {
            let expired: Vec<u32> = {
                let mut shard = self.addr_shard(s);
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
                self.remove_if(
                    &acc,
                    s,
                    local,
                    |slot| u64::from(slot.valid_until) <= now.0,
                    out,
                );
            }
        }
    }

    /// Remove slot `local` of address shard `s` when `pred` still holds once
    /// both locks are taken in order (client shard, then address shard).
    fn remove_if(
        &self,
        acc: &Accounts,
        s: usize,
        local: u32,
        pred: impl Fn(&Slot) -> bool,
        out: &mut Vec<LeaseRecord>,
    ) {
        let (slot, duid) = {
            let shard = self.addr_shard(s);
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
        let mut index = owner.map(|h| self.client_shard(shard_of(h)));
        let mut shard = self.addr_shard(s);
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
        self.forget(acc, &now_slot, &duid);
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
        let holder = self.addr_shard(s).find_addr(ahash, a);
        let mut sink = Vec::new();
        let acc = self.accounts();
        match rec.op {
            LeaseOp::Commit | LeaseOp::Decline => {
                if let Some(local) = holder {
                    self.remove_if(&acc, s, local, |_| true, &mut sink);
                }
                let Ok(_) = self.commit_in(
                    &acc,
                    &key,
                    self.client_hash(&key),
                    rec.addr,
                    rec.prefix_len,
                    PoolRef::current(pool),
                    rec.preferred_until,
                    rec.valid_until,
                    Timestamp(0),
                ) else {
                    return;
                };
                if rec.op == LeaseOp::Decline {
                    self.take(&acc, &key, rec.addr, Timestamp(0), Some(rec.valid_until));
                }
            }
            LeaseOp::Release | LeaseOp::Expire => {
                if let Some(local) = holder {
                    self.remove_if(
                        &acc,
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
            let shard = self.addr_shard(s);
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

    /// One step of a walk over every binding and quarantine entry: visit at
    /// most [`SCAN_STEP`] slots of one address shard from `from`, under one
    /// hold of its lock, calling `f(place, binding, duid)` for each occupied
    /// one. Returns where the next step starts, `None` after the last shard.
    /// `f` runs under the lock, so it should only test and copy: every
    /// worker that needs this shard meanwhile waits.
    pub fn scan(
        &self,
        from: ScanPos,
        mut f: impl FnMut(ScanPos, &Binding, &[u8]),
    ) -> Option<ScanPos> {
        let s = from.shard as usize;
        if s >= SHARDS {
            return None;
        }
        let shard = self.addr_shard(s);
        let taken = shard.slots();
        let end = taken.min(from.slot.saturating_add(SCAN_STEP));
        for id in from.slot..end {
            let slot = shard.slot(id);
            if slot.state != STATE_FREE {
                let at = ScanPos {
                    shard: from.shard,
                    slot: id,
                };
                f(at, &to_binding(slot), shard.duid(id));
            }
        }
        if end < taken {
            Some(ScanPos {
                shard: from.shard,
                slot: end,
            })
        } else if s + 1 < SHARDS {
            Some(ScanPos {
                shard: from.shard + 1,
                slot: 0,
            })
        } else {
            None
        }
    }

    /// What has ended by `now` but is still held until the next sweep: per
    /// pool (bindings and quarantine entries, indexed like [`Binding::pool`]),
    /// and (address bindings, prefix bindings). Subtract it from
    /// [`Bindings::pool_used`] and [`Bindings::counts`] for what is in use at
    /// `now`. Reads each shard's expiry window; scans a shard only when `now`
    /// is outside it (no sweep for a minute, or none yet).
    pub fn ended_by(&self, now: Timestamp) -> (Vec<u64>, u64, u64) {
        let mut per_pool = vec![0u64; self.accounts().used.len()];
        let (mut na, mut pd) = (0, 0);
        for s in 0..SHARDS {
            self.addr_shard(s).ended_by(now.0, |slot| {
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
        self.accounts()
            .used
            .get(usize::from(pool))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// [`Bindings::pool_used`] of pool `pool` of `spans`; 0 while the store
    /// counts against other spans (in the moment of a reload).
    pub fn pool_used_in(&self, spans: &PoolSpans, pool: u16) -> u64 {
        let acc = self.accounts();
        if !std::ptr::eq(spans, &*acc.spans) {
            return 0;
        }
        acc.used
            .get(usize::from(pool))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The spans the store counts against now.
    pub fn spans(&self) -> Arc<PoolSpans> {
        self.accounts().spans.clone()
    }

    /// Count against `spans` from now on (a reload's new policy): every
    /// binding and quarantine entry is given its pool in `spans` (or
    /// [`NO_POOL`]) and the pool counters are rebuilt. Holds the accounts
    /// exclusively, so no commit, release or sweep is half done meanwhile;
    /// lookups go on. Bindings are never copied or moved.
    pub fn adopt(&self, spans: Arc<PoolSpans>) {
        let mut acc = self.accounts.write().unwrap_or_else(|p| p.into_inner());
        let next = Accounts::new(spans);
        for s in 0..SHARDS {
            let mut shard = self.addr_shard(s);
            let ids: Vec<u32> = shard.occupied().collect();
            for id in ids {
                let slot = shard.slot_mut(id);
                let kind = to_binding(slot).kind;
                slot.pool = next.spans.find(kind, slot.addr(), slot.prefix_len);
                if let Some(c) = next.used.get(usize::from(slot.pool)) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        *acc = next;
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
        let holders = self.holders.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        holders
            + (0..SHARDS)
                .map(|s| self.addr_shard(s).heap_bytes() + self.client_shard(s).heap_bytes())
                .sum::<usize>()
    }
}

impl Binding {
    /// This binding of client `duid` as a lease record: Decline for a
    /// quarantine entry, Commit otherwise (`leases`, snapshots).
    pub fn record(&self, duid: &[u8]) -> Option<LeaseRecord> {
        let op = if self.declined {
            LeaseOp::Decline
        } else {
            LeaseOp::Commit
        };
        self.record_as(duid, op)
    }

    /// This binding of client `duid` as a lease record with `op`.
    pub fn record_as(&self, duid: &[u8], op: LeaseOp) -> Option<LeaseRecord> {
        LeaseRecord::new(
            op,
            self.kind,
            self.addr,
            self.prefix_len,
            self.iaid,
            duid,
            self.preferred_until,
            self.valid_until,
        )
    }
}

/// A lease record describing `slot`.
pub fn record_of(slot: &Slot, duid: &[u8], op: LeaseOp) -> Option<LeaseRecord> {
    to_binding(slot).record_as(duid, op)
}

#[cfg(test)]
mod tests;
