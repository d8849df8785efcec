//! A compact open-addressing index of `u32` ids with 32-bit hash tags.
//!
//! Why not `HashMap`: the bindings keep their keys (DUID, address) in a slab,
//! and `HashMap<Key, u32>` would store each key a second time (≥ 24 bytes per
//! entry plus control bytes). Here a bucket is 8 bytes: `tag << 32 | (id + 1)`,
//! 0 meaning empty; the caller's `eq(id)` closure checks the real key. Linear
//! probing with backward-shift deletion (no tombstones); the home bucket is
//! recomputed from the stored tag, so growing never touches the slab.
//! (hashbrown's `HashTable` does this, but it is not on the allowed-crate list.)

/// The index. Capacity is a power of two; load stays at or below 3/4.
#[derive(Debug, Default)]
pub struct IdTable {
    buckets: Vec<u64>,
    len: usize,
}

#[inline]
fn tag_of(hash: u64) -> u64 {
    hash & 0xffff_ffff
}

impl IdTable {
    /// Number of ids stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes used by the buckets.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * 8
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Find the id whose tag matches `hash` and for which `eq` holds.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let mask = self.mask();
        let mut i = tag as usize & mask;
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return None;
            }
            if b >> 32 == tag {
                let id = (b as u32).wrapping_sub(1);
                if eq(id) {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Insert `id` under `hash` (the caller has checked it is not present).
    pub fn insert(&mut self, hash: u64, id: u32) {
        debug_assert!(id < u32::MAX);
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        let entry = (tag_of(hash) << 32) | u64::from(id + 1);
        self.place(entry);
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut i = (entry >> 32) as usize & mask;
        while self.buckets[i] != 0 {
            i = (i + 1) & mask;
        }
        self.buckets[i] = entry;
    }

    fn grow(&mut self) {
        let new_cap = (self.buckets.len() * 2).max(16);
        let old = std::mem::replace(&mut self.buckets, vec![0; new_cap]);
        for e in old.into_iter().filter(|e| *e != 0) {
            self.place(e);
        }
    }

    /// Remove the entry `(hash, id)`; `false` when absent.
    pub fn remove(&mut self, hash: u64, id: u32) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let want = (tag_of(hash) << 32) | u64::from(id + 1);
        let mask = self.mask();
        let mut i = tag_of(hash) as usize & mask;
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return false;
            }
            if b == want {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward shift: pull later entries of the cluster into the hole when
        // their home is not strictly between the hole and their position.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let home = (b >> 32) as usize & mask;
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = 0;
        self.len -= 1;
        true
    }

    /// Every stored id (any order).
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .filter(|b| **b != 0)
            .map(|b| (*b as u32).wrapping_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The table behaves like a map from id to hash under random inserts and removes,
        /// including heavy tag collisions (hashes drawn from a tiny range).
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..200, 0u64..40), 1..600)) {
            let mut t = IdTable::default();
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (insert, id, hash) in ops {
                if insert {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(id) {
                        e.insert(hash);
                        t.insert(hash, id);
                    }
                } else if let Some(h) = model.remove(&id) {
                    prop_assert!(t.remove(h, id));
                } else {
                    prop_assert!(!t.remove(hash, id));
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for (id, h) in &model {
                prop_assert_eq!(t.find(*h, |x| x == *id), Some(*id));
            }
            let mut ids: Vec<u32> = t.ids().collect();
            ids.sort_unstable();
            let mut want: Vec<u32> = model.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(ids, want);
        }
    }
}
