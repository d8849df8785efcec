//! The allocation function: which address (IA_NA) or delegated prefix (IA_PD)
//! a client is offered. Documented in `ALLOCATION.md`; a change to the bytes
//! hashed here is a breaking change (identical-prefix servers of different
//! releases would disagree), so golden vectors pin it in the tests below.
//!
//! Pure: no state, no clock. The caller supplies a `usable` predicate that says
//! whether a candidate is free for this client (bindings, quarantine).

use siphasher::sip128::SipHasher24;

use super::lease::MAX_DUID_LEN;
use super::sip::{Sip24Resume, MAX_TAIL};

/// Version tag hashed first: bump it (and the doc) if the input bytes ever change.
pub const ALLOC_VERSION_TAG: [u8; 4] = *b"D6A1";
/// Hashed probes before falling back to a linear scan (or giving up).
pub const HASHED_PROBES: u32 = 32;
/// Pools up to this many slots are scanned linearly after the hashed probes, so
/// a nearly full small pool still finds its last free slots.
pub const LINEAR_SCAN_LIMIT: u128 = 1 << 16;
/// Candidates one message may examine over all its IAs and pools: one full
/// scan of the largest scannable pool plus the hashed probes of 16 IAs.
/// Without it a 16-IA Solicit on a nearly full small pool cost up to
/// 16 × (32 + 65,536) ≈ 1 M probes (issue 13 item 6); an IA left when it is
/// spent gets NoAddrsAvail / NoPrefixAvail.
pub const MESSAGE_PROBE_BUDGET: u32 = LINEAR_SCAN_LIMIT as u32 + 16 * HASHED_PROBES;

/// First interface ID of the RFC 2526 reserved subnet anycast range for
/// EUI-64-format interface IDs (u/l bit 0, 57 ones, 7-bit anycast ID).
pub const RFC2526_EUI64_FIRST: u64 = 0xfdff_ffff_ffff_ff80;
/// Last interface ID of that range.
pub const RFC2526_EUI64_LAST: u64 = 0xfdff_ffff_ffff_ffff;

/// The 16-byte SipHash-2-4 key of the allocation function.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AllocKey(pub [u8; 16]);

impl std::fmt::Debug for AllocKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is not secret, but keep logs short.
        write!(f, "AllocKey({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl AllocKey {
    /// The key used when `allocation_key` is absent: derived from the server
    /// DUID so it is stable across restarts (the DUID is persisted), and
    /// different between servers (which is what split/unique models want).
    /// = SipHash-2-4-128 with the all-zero key over `"D6AK" || duid`.
    pub fn from_server_duid(duid: &[u8]) -> AllocKey {
        let mut buf = [0u8; 4 + 256];
        buf[..4].copy_from_slice(b"D6AK");
        let n = duid.len().min(256);
        buf[4..4 + n].copy_from_slice(&duid[..n]);
        AllocKey(
            SipHasher24::new_with_key(&[0; 16])
                .hash(&buf[..4 + n])
                .as_bytes(),
        )
    }
}

/// An IA_NA pool: the inclusive range `first..=last` inside the subnet
/// `subnet_prefix/subnet_len` (needed for the anycast rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NaPool {
    /// First address of the pool, as a big-endian integer (inclusive).
    pub first: u128,
    /// Last address of the pool, as a big-endian integer (inclusive).
    pub last: u128,
    /// Network address of the pool's subnet, whose anycast addresses are never handed out.
    pub subnet_prefix: u128,
    /// Length of the pool's subnet prefix, 0..=128; above 64 the RFC 2526 §2
    /// non-EUI-64 reserved addresses apply too.
    pub subnet_len: u8,
}

/// An IA_PD pool: `prefix/prefix_len` cut into slots of `/delegated_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdPool {
    /// Network address of the pool, as a big-endian integer (host bits zero).
    pub prefix: u128,
    /// Length of the pool prefix, 0..=128.
    pub prefix_len: u8,
    /// Length of each delegated prefix, `prefix_len..=128`.
    pub delegated_len: u8,
}

/// Longest hashed input: tag 4 + kind 1 + pool 32 + DUID len 2 + DUID + IAID 4 + attempt 4.
pub const MAX_INPUT: usize = 4 + 1 + 32 + 2 + MAX_DUID_LEN + 4 + 4;

/// Build the exact bytes hashed for one attempt; returns their length.
/// Layout (all integers big-endian):
/// `"D6A1" | kind(1) | pool identity(32) | duid_len(2) | duid | iaid(4) | attempt(4)`;
/// NA identity = first(16) | last(16); PD identity = prefix(16) | prefix_len(1) |
/// delegated_len(1) | 14 zero bytes.
pub fn input_bytes(
    buf: &mut [u8; MAX_INPUT],
    kind: u8,
    identity: &[u8; 32],
    duid: &[u8],
    iaid: u32,
    attempt: u32,
) -> usize {
    let duid = &duid[..duid.len().min(MAX_DUID_LEN)];
    buf[..4].copy_from_slice(&ALLOC_VERSION_TAG);
    buf[4] = kind;
    buf[5..37].copy_from_slice(identity);
    buf[37..39].copy_from_slice(&(duid.len() as u16).to_be_bytes());
    let mut n = 39;
    buf[n..n + duid.len()].copy_from_slice(duid);
    n += duid.len();
    buf[n..n + 4].copy_from_slice(&iaid.to_be_bytes());
    buf[n + 4..n + 8].copy_from_slice(&attempt.to_be_bytes());
    n + 8
}

/// SipHash-2-4 with 128-bit output, read as a little-endian u128 (the
/// reference byte order of the output).
pub fn hash128(key: &AllocKey, input: &[u8]) -> u128 {
    u128::from_le_bytes(SipHasher24::new_with_key(&key.0).hash(input).as_bytes())
}

/// The SipHash state after the constant head of the input (tag, kind, pool
/// identity): computed once per pool, copied per candidate, so only the
/// client's bytes are hashed per packet. Same output as [`hash128`] over
/// [`input_bytes`] (tested).
#[derive(Clone, Copy, Debug)]
pub struct PoolHasher(Sip24Resume);

impl PoolHasher {
    fn new(key: &AllocKey, kind: u8, identity: &[u8; 32]) -> PoolHasher {
        let mut head = [0u8; 4 + 1 + 32];
        head[..4].copy_from_slice(&ALLOC_VERSION_TAG);
        head[4] = kind;
        head[5..].copy_from_slice(identity);
        PoolHasher(Sip24Resume::new(&key.0, &head))
    }

    #[inline]
    fn hash(&self, duid: &[u8], iaid: u32, attempt: u32) -> u128 {
        let duid = &duid[..duid.len().min(MAX_DUID_LEN)];
        self.0.finish_tail(|tail| {
            tail[..2].copy_from_slice(&(duid.len() as u16).to_be_bytes());
            tail[2..2 + duid.len()].copy_from_slice(duid);
            let n = 2 + duid.len();
            tail[n..n + 4].copy_from_slice(&iaid.to_be_bytes());
            tail[n + 4..n + 8].copy_from_slice(&attempt.to_be_bytes());
            n + 8
        })
    }
}

const _: () = assert!(2 + MAX_DUID_LEN + 8 <= MAX_TAIL);

/// `h mod size`, with the common power-of-two sizes (a /64, a /65, PD slots)
/// done by a mask instead of a 128-bit division. Same value either way.
#[inline]
fn reduce(h: u128, size: u128) -> u128 {
    if size.is_power_of_two() {
        h & (size - 1)
    } else {
        h % size
    }
}

impl NaPool {
    /// The per-pool hasher state for `key`.
    pub fn hasher(&self, key: &AllocKey) -> PoolHasher {
        PoolHasher::new(key, 1, &self.identity())
    }

    /// Number of addresses in the pool (`None`: all 2^128, only for `::/0`).
    pub fn size(&self) -> Option<u128> {
        (self.last - self.first).checked_add(1)
    }

    fn identity(&self) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&self.first.to_be_bytes());
        id[16..].copy_from_slice(&self.last.to_be_bytes());
        id
    }

    /// The candidate of one attempt, before the reserved-address skip.
    pub fn candidate(&self, key: &AllocKey, duid: &[u8], iaid: u32, attempt: u32) -> u128 {
        self.candidate_with(&self.hasher(key), duid, iaid, attempt)
    }

    /// [`NaPool::candidate`] with the pool's hasher state precomputed.
    pub fn candidate_with(&self, ph: &PoolHasher, duid: &[u8], iaid: u32, attempt: u32) -> u128 {
        let h = ph.hash(duid, iaid, attempt);
        match self.size() {
            Some(size) => self.first + reduce(h, size),
            None => h,
        }
    }

    /// Whether `addr` must never be handed out: the subnet-router anycast
    /// address (RFC 4291 §2.6.1, all-zero interface ID) or an RFC 2526 reserved
    /// subnet anycast address.
    pub fn is_reserved(&self, addr: u128) -> bool {
        is_reserved_na(addr, self.subnet_len)
    }

    /// Addresses in the pool that may be handed out (size minus reserved ones).
    pub fn capacity(&self) -> u128 {
        let size = self.size().unwrap_or(u128::MAX);
        let mut reserved = count_low64_in(self.first, self.last, 0, 0)
            + count_low64_in(
                self.first,
                self.last,
                RFC2526_EUI64_FIRST,
                RFC2526_EUI64_LAST,
            );
        // Subnets longer than /64 also reserve their all-zero and top-128 host
        // IDs (RFC 2526 §2, non-EUI-64 format): at most 129 addresses, so count
        // them one by one, skipping those the /64 rules already counted.
        if self.subnet_len > 64 {
            for a in host_rule_addresses(self.subnet_prefix, self.subnet_len) {
                let low = a as u64;
                let eui = low == 0 || (RFC2526_EUI64_FIRST..=RFC2526_EUI64_LAST).contains(&low);
                if !eui && a >= self.first && a <= self.last {
                    reserved += 1;
                }
            }
        }
        size.saturating_sub(reserved)
    }

    /// Find the first usable candidate: hashed probes, then (small pools, when
    /// `linear` is set) a linear scan from the first probe. `usable` says
    /// whether a candidate is free for this client.
    pub fn allocate(
        &self,
        key: &AllocKey,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        self.allocate_with(&self.hasher(key), duid, iaid, linear, usable)
    }

    /// [`NaPool::allocate`] with the pool's hasher state precomputed.
    pub fn allocate_with(
        &self,
        ph: &PoolHasher,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        let mut unbounded = u32::MAX;
        self.allocate_bounded(ph, duid, iaid, linear, &mut unbounded, usable)
    }

    /// [`NaPool::allocate_with`] examining at most `*budget` candidates;
    /// what it examined is taken off `*budget`.
    pub fn allocate_bounded(
        &self,
        ph: &PoolHasher,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        budget: &mut u32,
        mut usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        search(
            |attempt| self.candidate_with(ph, duid, iaid, attempt),
            linear.then_some(self.size()).flatten(),
            |c| c - self.first,
            |off| self.first + off,
            budget,
            |c| !self.is_reserved(c) && usable(c),
        )
    }
}

/// The host-rule addresses of a subnet longer than /64: all-zero host ID and
/// the top 128 host IDs (when the host part has at least 7 bits).
fn host_rule_addresses(prefix: u128, len: u8) -> impl Iterator<Item = u128> {
    let host_bits = 128 - u32::from(len.min(128));
    let mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    let net = prefix & !mask;
    let top = if host_bits >= 7 { 128u128 } else { 0 };
    std::iter::once(net).chain((0..top).map(move |i| net | (mask - i)))
}

/// Whether `addr` is reserved in a subnet of prefix length `len` that contains it.
pub fn is_reserved_na(addr: u128, len: u8) -> bool {
    let low = addr as u64;
    // EUI-64 interface IDs (every unicast prefix outside 000::/3, RFC 4291 §2.5.1):
    // the all-zero ID of the /64 and the RFC 2526 range.
    if low == 0 || (RFC2526_EUI64_FIRST..=RFC2526_EUI64_LAST).contains(&low) {
        return true;
    }
    if len > 64 {
        let host_bits = 128 - u32::from(len.min(128));
        if host_bits == 0 {
            return false;
        }
        let mask = u128::MAX >> (128 - host_bits);
        let host = addr & mask;
        return host == 0 || (host_bits >= 7 && host > mask - 128);
    }
    false
}

/// Count the x in `[a, b]` whose low 64 bits lie in `[lo, hi]`.
fn count_low64_in(a: u128, b: u128, lo: u64, hi: u64) -> u128 {
    // below(n) = how many x in [0, n) qualify: whole 2^64 blocks, then the partial one.
    fn below(n: u128, lo: u64, hi: u64) -> u128 {
        let (lo, hi) = (u128::from(lo), u128::from(hi));
        let rem = u128::from(n as u64);
        (n >> 64) * (hi - lo + 1) + rem.clamp(lo, hi + 1) - lo
    }
    below(b, lo, hi) + u128::from((lo..=hi).contains(&(b as u64))) - below(a, lo, hi)
}

impl PdPool {
    /// The per-pool hasher state for `key`.
    pub fn hasher(&self, key: &AllocKey) -> PoolHasher {
        PoolHasher::new(key, 2, &self.identity())
    }

    /// Number of delegated-prefix slots (`None` when it exceeds u128).
    pub fn slots(&self) -> Option<u128> {
        let bits = u32::from(self.delegated_len.saturating_sub(self.prefix_len));
        1u128.checked_shl(bits)
    }

    fn identity(&self) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&self.prefix.to_be_bytes());
        id[16] = self.prefix_len;
        id[17] = self.delegated_len;
        id
    }

    /// The prefix of slot `slot`.
    pub fn slot_prefix(&self, slot: u128) -> u128 {
        let shift = 128 - u32::from(self.delegated_len.min(128));
        let base = self.prefix;
        if shift >= 128 {
            base
        } else {
            base + (slot << shift)
        }
    }

    /// The candidate prefix of one attempt.
    pub fn candidate(&self, key: &AllocKey, duid: &[u8], iaid: u32, attempt: u32) -> u128 {
        self.candidate_with(&self.hasher(key), duid, iaid, attempt)
    }

    /// [`PdPool::candidate`] with the pool's hasher state precomputed.
    pub fn candidate_with(&self, ph: &PoolHasher, duid: &[u8], iaid: u32, attempt: u32) -> u128 {
        let h = ph.hash(duid, iaid, attempt);
        let slot = match self.slots() {
            Some(s) => reduce(h, s),
            None => h,
        };
        self.slot_prefix(slot)
    }

    /// Whether `prefix/len` is one of this pool's slots.
    pub fn contains_slot(&self, prefix: u128, len: u8) -> bool {
        if len != self.delegated_len {
            return false;
        }
        let mask = prefix_mask(self.prefix_len);
        prefix & mask == self.prefix & mask && prefix & !prefix_mask(len) == 0
    }

    /// Same search as [`NaPool::allocate`], over slots (no reserved slots).
    pub fn allocate(
        &self,
        key: &AllocKey,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        self.allocate_with(&self.hasher(key), duid, iaid, linear, usable)
    }

    /// [`PdPool::allocate`] with the pool's hasher state precomputed.
    pub fn allocate_with(
        &self,
        ph: &PoolHasher,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        let mut unbounded = u32::MAX;
        self.allocate_bounded(ph, duid, iaid, linear, &mut unbounded, usable)
    }

    /// [`PdPool::allocate_with`] examining at most `*budget` candidates;
    /// what it examined is taken off `*budget`.
    pub fn allocate_bounded(
        &self,
        ph: &PoolHasher,
        duid: &[u8],
        iaid: u32,
        linear: bool,
        budget: &mut u32,
        usable: impl FnMut(u128) -> bool,
    ) -> Option<u128> {
        let shift = 128 - u32::from(self.delegated_len);
        search(
            |attempt| self.candidate_with(ph, duid, iaid, attempt),
            linear.then_some(self.slots()).flatten(),
            |c| (c - self.prefix) >> shift,
            |slot| self.slot_prefix(slot),
            budget,
            usable,
        )
    }
}

/// The search both pool kinds share: `HASHED_PROBES` hashed candidates
/// (`candidate(attempt)`), then, when `linear_slots` is given and at most
/// `LINEAR_SCAN_LIMIT`, every slot once, wrapping, from the one after attempt
/// 0's slot. `slot_of` and `at` convert between a candidate and its slot.
/// Each candidate examined costs one from `budget`; none left ends the search.
fn search(
    candidate: impl Fn(u32) -> u128,
    linear_slots: Option<u128>,
    slot_of: impl Fn(u128) -> u128,
    at: impl Fn(u128) -> u128,
    budget: &mut u32,
    mut acceptable: impl FnMut(u128) -> bool,
) -> Option<u128> {
    let mut examine = |c: u128| {
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        Some(acceptable(c))
    };
    let first = candidate(0);
    for attempt in 0..HASHED_PROBES {
        let c = if attempt == 0 {
            first
        } else {
            candidate(attempt)
        };
        if examine(c)? {
            return Some(c);
        }
    }
    let slots = linear_slots.filter(|&n| n <= LINEAR_SCAN_LIMIT)?;
    let mut slot = slot_of(first);
    for _ in 0..slots {
        slot = (slot + 1) % slots;
        let c = at(slot);
        if examine(c)? {
            return Some(c);
        }
    }
    None
}

/// The network mask of a prefix length.
pub fn prefix_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

#[cfg(test)]
mod tests;
