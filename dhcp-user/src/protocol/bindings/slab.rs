//! Compact binding storage of one address shard: 52-byte slots in fixed-size
//! chunks (no `Vec` doubling slack at 10 million bindings), an intrusive free
//! list, and the by-address [`IdTable`].

use std::collections::HashMap;

use crate::protocol::table::IdTable;

/// DUIDs up to this length live inside the slot; longer ones spill to a side map.
/// 19 covers DUID-LLT (14), DUID-LL (10) and DUID-UUID (18), the common types.
pub const INLINE_DUID: usize = 19;
/// Slots per chunk (13 KiB): small, so the last chunk of a shard wastes little.
pub const CHUNK: usize = 256;
/// No next free slot.
const NONE: u32 = u32::MAX;

pub const STATE_FREE: u8 = 0;
pub const STATE_NA: u8 = 1;
pub const STATE_PD: u8 = 2;
/// A declined address in quarantine until `valid_until`; in no client index.
pub const STATE_DECLINED: u8 = 3;

/// One binding. Times are Unix seconds as u32 (enough until 2106).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Slot {
    pub addr: [u8; 16],
    pub preferred_until: u32,
    pub valid_until: u32,
    /// The IAID, or the next free slot when `state == STATE_FREE`.
    pub iaid: u32,
    pub pool: u16,
    pub state: u8,
    pub prefix_len: u8,
    pub duid_len: u8,
    pub duid: [u8; INLINE_DUID],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 52);

impl Slot {
    const EMPTY: Slot = Slot {
        addr: [0; 16],
        preferred_until: 0,
        valid_until: 0,
        iaid: NONE,
        pool: 0,
        state: STATE_FREE,
        prefix_len: 0,
        duid_len: 0,
        duid: [0; INLINE_DUID],
    };

    pub fn addr(&self) -> u128 {
        u128::from_be_bytes(self.addr)
    }
}

/// Clamp a u64 Unix time into the slot's u32.
pub fn secs32(t: u64) -> u32 {
    t.min(u64::from(u32::MAX)) as u32
}

/// Slots of one address shard plus the by-address index.
#[derive(Debug, Default)]
pub struct AddrShard {
    chunks: Vec<Box<[Slot]>>,
    free_head: Option<u32>,
    next_unused: u32,
    /// tag = address hash; id = local slot index.
    pub by_addr: IdTable,
    /// DUIDs longer than [`INLINE_DUID`], by local slot index.
    long_duids: HashMap<u32, Box<[u8]>>,
    /// The expiry window: slots whose valid lifetime ends at or before
    /// `soon_until` (Unix seconds; 0 = no window yet) are listed in `soon`,
    /// so "what has expired by now" needs no scan of the whole shard. The
    /// sweep rebuilds it; every later change of a slot's end adds to it,
    /// unless the slot is listed already (see `listed`).
    soon: Vec<u32>,
    /// One bit per slot: set while the slot's id is in `soon`. Keeps `soon`
    /// free of duplicates (a slot whose end changes twice in the window, or
    /// that is freed and reused) without a search on the packet path, so
    /// `ended_by` can read the list as it is, under the lock, with no copy.
    /// Listing is by slot, not by binding: `ended_by` judges the slot as it
    /// is now, so a stale bit (slot freed, reused with a later end) only
    /// costs one look at that slot.
    listed: Vec<u64>,
    soon_until: u64,
    /// A change could not be listed without growing `soon` (no allocation
    /// on the packet path): count by scanning until the next sweep.
    soon_overflow: bool,
}

/// Slack left in the expiry list after a sweep, for slots whose end changes
/// to within the window before the next one (only lifetimes under a minute).
const SOON_SPARE: usize = 64;

impl AddrShard {
    pub fn slot(&self, id: u32) -> &Slot {
        &self.chunks[id as usize / CHUNK][id as usize % CHUNK]
    }

    pub fn slot_mut(&mut self, id: u32) -> &mut Slot {
        &mut self.chunks[id as usize / CHUNK][id as usize % CHUNK]
    }

    /// The slot's DUID bytes.
    pub fn duid(&self, id: u32) -> &[u8] {
        let s = self.slot(id);
        if usize::from(s.duid_len) <= INLINE_DUID {
            &s.duid[..usize::from(s.duid_len)]
        } else {
            self.long_duids.get(&id).map(|b| &b[..]).unwrap_or(&[])
        }
    }

    /// Whether slot `id` holds exactly this client's key.
    pub fn matches(&self, id: u32, state: u8, iaid: u32, duid: &[u8]) -> bool {
        let s = self.slot(id);
        s.state == state && s.iaid == iaid && self.duid(id) == duid
    }

    /// Find the slot holding `addr`.
    pub fn find_addr(&self, hash: u64, addr: u128) -> Option<u32> {
        self.by_addr.find(hash, |id| {
            let s = self.slot(id);
            s.state != STATE_FREE && s.addr() == addr
        })
    }

    /// Take a free slot and fill it; indexes it by address under `hash`.
    pub fn insert(&mut self, hash: u64, mut slot: Slot, duid: &[u8]) -> u32 {
        let id = match self.free_head {
            Some(id) => {
                let next = self.slot(id).iaid;
                self.free_head = (next != NONE).then_some(next);
                id
            }
            None => {
                let id = self.next_unused;
                if id as usize / CHUNK == self.chunks.len() {
                    self.chunks
                        .push(vec![Slot::EMPTY; CHUNK].into_boxed_slice());
                    self.listed.resize(self.chunks.len() * CHUNK / 64, 0);
                }
                self.next_unused += 1;
                id
            }
        };
        self.set_duid(id, &mut slot, duid);
        *self.slot_mut(id) = slot;
        self.by_addr.insert(hash, id);
        self.note_end(id, slot.valid_until);
        id
    }

    /// Slot `id` now ends at `valid_until`: list it if that is inside the
    /// expiry window and it is not listed yet. Never allocates (see
    /// `soon_overflow`).
    #[inline]
    pub fn note_end(&mut self, id: u32, valid_until: u32) {
        if u64::from(valid_until) <= self.soon_until && !self.is_listed(id) {
            if self.soon.len() < self.soon.capacity() {
                self.soon.push(id);
                self.listed[id as usize / 64] |= 1 << (id % 64);
            } else {
                self.soon_overflow = true;
            }
        }
    }

    fn is_listed(&self, id: u32) -> bool {
        self.listed[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// Start a new expiry window ending at `until`, listing `ids` (the
    /// occupied slots ending in it, each once). Called by the sweep, off the
    /// packet path.
    pub fn set_window(&mut self, until: u64, ids: &[u32]) {
        for &id in &self.soon {
            self.listed[id as usize / 64] &= !(1 << (id % 64));
        }
        self.soon.clear();
        self.soon.reserve(ids.len() + SOON_SPARE);
        for &id in ids {
            if !self.is_listed(id) {
                self.soon.push(id);
                self.listed[id as usize / 64] |= 1 << (id % 64);
            }
        }
        self.soon_until = until;
        self.soon_overflow = false;
    }

    /// Entries in the expiry list (tests: a slot is listed at most once).
    #[cfg(test)]
    pub fn listed_len(&self) -> usize {
        self.soon.len()
    }

    /// Whether a change since the last sweep found the expiry list full, so
    /// that `ended_by` scans this shard (tests).
    #[cfg(test)]
    pub fn overflowed(&self) -> bool {
        self.soon_overflow
    }

    /// Call `f` with every occupied slot whose valid lifetime has ended at
    /// `now`: from the expiry list when `now` is inside the window, else by
    /// scanning the shard.
    pub fn ended_by(&self, now: u64, mut f: impl FnMut(&Slot)) {
        let ended = |s: &Slot| s.state != STATE_FREE && u64::from(s.valid_until) <= now;
        if self.soon_until == 0 || now > self.soon_until || self.soon_overflow {
            for id in self.occupied() {
                let s = self.slot(id);
                if ended(s) {
                    f(s);
                }
            }
            return;
        }
        // Each slot is listed once (`listed`), so the list is read in place.
        for &id in &self.soon {
            let s = self.slot(id);
            if ended(s) {
                f(s);
            }
        }
    }

    /// Store `duid` for slot `id` (inline or spilled).
    pub fn set_duid(&mut self, id: u32, slot: &mut Slot, duid: &[u8]) {
        slot.duid_len = duid.len().min(usize::from(u8::MAX)) as u8;
        if duid.len() <= INLINE_DUID {
            slot.duid = [0; INLINE_DUID];
            slot.duid[..duid.len()].copy_from_slice(duid);
            // Skip the map (and its SipHash) in the common case of no long DUIDs.
            if !self.long_duids.is_empty() {
                self.long_duids.remove(&id);
            }
        } else {
            self.long_duids.insert(id, duid.into());
        }
    }

    /// Free slot `id` (its address hash is `hash`).
    pub fn remove(&mut self, hash: u64, id: u32) {
        self.by_addr.remove(hash, id);
        if usize::from(self.slot(id).duid_len) > INLINE_DUID {
            self.long_duids.remove(&id);
        }
        let next = self.free_head.unwrap_or(NONE);
        let s = self.slot_mut(id);
        *s = Slot::EMPTY;
        s.iaid = next;
        self.free_head = Some(id);
    }

    /// Slots ever taken: every occupied slot's id is below it. Slot ids
    /// never move, so `0..slots()` is an order a walk can resume in.
    pub fn slots(&self) -> u32 {
        self.next_unused
    }

    /// Ids of every occupied slot.
    pub fn occupied(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_addr.ids()
    }

    /// Heap bytes held by this shard (slots, index, spilled DUIDs).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<Slot>()
            + self.chunks.capacity() * std::mem::size_of::<Box<[Slot]>>()
            + self.listed.capacity() * 8
            + self.by_addr.heap_bytes()
            + self
                .long_duids
                .values()
                .map(|d| d.len() + 48)
                .sum::<usize>()
    }
}
