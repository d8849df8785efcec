//! SipHash written out for the per-packet hashes: SipHash-2-4 with 128-bit
//! output resumed from a precomputed per-pool state (the allocation function),
//! and SipHash-1-3 over a one-block header plus a slice (the binding index).
//!
//! Why not the `siphasher` crate here (it is used everywhere else, and the
//! tests check this code against it): resuming its streaming `Hasher` costs
//! about 330 instructions per candidate (byte-wise tail buffering, a generic
//! finish), and its one-shot `hash` needs the header copied in front of the
//! DUID. Written out, the same algorithm runs in roughly two thirds of that,
//! which matters at two hashes per message. The algorithm is the reference one
//! (Aumasson and Bernstein); `alloc/tests.rs` pins it by golden vectors and by
//! equality with `siphasher` over random inputs.

/// The four state words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sip([u64; 4]);

impl Sip {
    /// The initial state for a 16-byte key; `wide` selects the 128-bit output variant.
    pub fn new(key: &[u8; 16], wide: bool) -> Sip {
        let mut k = [0u8; 8];
        k.copy_from_slice(&key[..8]);
        let k0 = u64::from_le_bytes(k);
        k.copy_from_slice(&key[8..]);
        let k1 = u64::from_le_bytes(k);
        let mut v = [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ];
        if wide {
            v[1] ^= 0xee;
        }
        Sip(v)
    }

    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    /// Absorb one 8-byte little-endian message word with `C` rounds.
    #[inline(always)]
    pub fn compress<const C: usize>(&mut self, m: u64) {
        self.0[3] ^= m;
        for _ in 0..C {
            self.round();
        }
        self.0[0] ^= m;
    }

    #[inline(always)]
    fn fold(&self) -> u64 {
        self.0[0] ^ self.0[1] ^ self.0[2] ^ self.0[3]
    }

    /// Finish a 64-bit hash: `last` is the final block (tail bytes and the
    /// length byte), `C` compression and `D` finalization rounds.
    #[inline(always)]
    pub fn finish64<const C: usize, const D: usize>(mut self, last: u64) -> u64 {
        self.compress::<C>(last);
        self.0[2] ^= 0xff;
        for _ in 0..D {
            self.round();
        }
        self.fold()
    }

    /// Finish a 128-bit SipHash-2-4 (state made with `wide`), read as the
    /// little-endian u128 of the reference output bytes.
    #[inline(always)]
    pub fn finish128_24(mut self, last: u64) -> u128 {
        self.compress::<2>(last);
        self.0[2] ^= 0xee;
        for _ in 0..4 {
            self.round();
        }
        let lo = self.fold();
        self.0[1] ^= 0xdd;
        for _ in 0..4 {
            self.round();
        }
        u128::from(lo) | (u128::from(self.fold()) << 64)
    }
}

/// The word of `bytes` (at most 8) read little-endian, zero-padded. Reads in
/// 4-, 2- and 1-byte steps rather than copying a variable length (a `memcpy`
/// call, as costly as the rest of a short hash).
#[inline(always)]
pub fn le_word(bytes: &[u8]) -> u64 {
    if let Ok(w) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(w);
    }
    let mut out = 0u64;
    let mut rest = bytes;
    let mut shift = 0;
    if let Some((four, r)) = rest.split_first_chunk::<4>() {
        out = u64::from(u32::from_le_bytes(*four));
        rest = r;
        shift = 32;
    }
    if let Some((two, r)) = rest.split_first_chunk::<2>() {
        out |= u64::from(u16::from_le_bytes(*two)) << shift;
        rest = r;
        shift += 16;
    }
    if let Some(&b) = rest.first() {
        out |= u64::from(b) << shift;
    }
    out
}

/// Absorb `bytes` whole words at a time; returns the unabsorbed tail (< 8 bytes).
#[inline(always)]
pub fn absorb<const C: usize>(s: &mut Sip, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        s.compress::<C>(le_word(w));
    }
    le_word(words.remainder())
}

/// SipHash-1-3 (64-bit) of `head` (8 bytes, little-endian word) followed by
/// `bytes`: the input is `head.to_le_bytes() || bytes`.
pub fn sip13_word_then(key: &Sip, head: u64, bytes: &[u8]) -> u64 {
    let mut s = *key;
    s.compress::<1>(head);
    let tail = absorb::<1>(&mut s, bytes);
    let len = (8 + bytes.len()) as u64;
    s.finish64::<1, 3>(tail | (len << 56))
}

/// A SipHash-2-4-128 state that has absorbed a constant head, resumable per
/// message: holds the words absorbed so far and the partial word pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sip24Resume {
    state: Sip,
    pending: [u8; 8],
    pending_len: usize,
    absorbed: usize,
}

/// Longest tail [`Sip24Resume::finish_tail`] accepts.
pub const MAX_TAIL: usize = 160;

impl Sip24Resume {
    /// Start from `key` and absorb `head`.
    pub fn new(key: &[u8; 16], head: &[u8]) -> Sip24Resume {
        let mut state = Sip::new(key, true);
        let full = head.len() / 8 * 8;
        absorb::<2>(&mut state, &head[..full]);
        let mut pending = [0u8; 8];
        pending[..head.len() - full].copy_from_slice(&head[full..]);
        Sip24Resume {
            state,
            pending,
            pending_len: head.len() - full,
            absorbed: full,
        }
    }

    /// The hash of head || the bytes `fill` writes into the buffer it gets
    /// (it returns how many it wrote, at most [`MAX_TAIL`]).
    #[inline(always)]
    pub fn finish_tail(&self, fill: impl FnOnce(&mut [u8]) -> usize) -> u128 {
        // Room for the pending bytes, the tail, and one zero-padded last word.
        let mut buf = [0u8; 8 + MAX_TAIL + 8];
        let p = self.pending_len;
        buf[..8].copy_from_slice(&self.pending);
        let n = p + fill(&mut buf[p..p + MAX_TAIL]).min(MAX_TAIL);
        let full = n / 8 * 8;
        let mut s = self.state;
        absorb::<2>(&mut s, &buf[..full]);
        // Bytes past `n` are zero: the last word is the tail, zero-padded.
        let len = (self.absorbed + n) as u64;
        s.finish128_24(le_word(&buf[full..full + 8]) | (len << 56))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher as _;

    use proptest::prelude::*;
    use siphasher::sip::SipHasher13;
    use siphasher::sip128::SipHasher24;

    use super::*;

    fn key_of(k: u128) -> [u8; 16] {
        k.to_le_bytes()
    }

    #[test]
    fn reference_vector_sip128_empty_message() {
        // SipHash reference implementation, vectors_sip128[0]: key 00..0f, empty message.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let h = Sip24Resume::new(&key, b"").finish_tail(|_| 0);
        assert_eq!(
            h.to_le_bytes(),
            [
                0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
                0x02, 0x93
            ]
        );
    }

    proptest! {
        /// Resuming after any head and finishing with any tail equals the
        /// siphasher crate's SipHash-2-4-128 of head || tail.
        #[test]
        fn sip24_resume_equals_siphasher(
            k in any::<u128>(),
            head in proptest::collection::vec(any::<u8>(), 0..80),
            tail in proptest::collection::vec(any::<u8>(), 0..=MAX_TAIL),
        ) {
            let key = key_of(k);
            let ours = Sip24Resume::new(&key, &head).finish_tail(|buf| {
                buf[..tail.len()].copy_from_slice(&tail);
                tail.len()
            });
            let mut all = head.clone();
            all.extend_from_slice(&tail);
            let theirs = u128::from_le_bytes(SipHasher24::new_with_key(&key).hash(&all).as_bytes());
            prop_assert_eq!(ours, theirs);
        }

        /// SipHash-1-3 of a word then a slice equals siphasher's over the same bytes.
        #[test]
        fn sip13_equals_siphasher(
            k in any::<u128>(),
            head in any::<u64>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let key = key_of(k);
            let ours = sip13_word_then(&Sip::new(&key, false), head, &bytes);
            let mut h = SipHasher13::new_with_key(&key);
            h.write(&head.to_le_bytes());
            h.write(&bytes);
            prop_assert_eq!(ours, h.finish());
        }
    }
}
