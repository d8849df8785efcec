//! The per-source rate limit (`limits.messages_per_second_per_source`): a
//! token bucket per source, in a fixed table each worker owns.
//!
//! Owns the table and the bucket arithmetic. Never touches the clock (`now`
//! comes in, in whole seconds), a counter or another worker's table. The
//! core asks [`RateLimiter::admit`] once per message, before anything in the
//! message can change state; a refusal is the caller's
//! [`DropReason::RateLimited`](super::DropReason::RateLimited).
//!
//! The table is set-associative ([`SETS`] sets of [`WAYS`] buckets), indexed
//! by SipHash-1-3 of the source under a key clients never see, so sources
//! cannot be chosen to land in one set. A bucket is named by the whole
//! 64-bit hash, not the address: two sources share a bucket only if their
//! keyed hashes are equal. When a new source finds its set full, the bucket
//! that would hold the most tokens now is replaced: a full one loses nothing
//! (a fresh bucket is full too), and a source that is being held back keeps
//! its empty bucket while one-off sources churn around it. A flood of new
//! sources can still push a limited source out, and it starts again with a
//! full bucket: the table fails open for it, never shut for anyone.
//!
//! Refill is by whole seconds (the resolution of [`Timestamp`]): each second
//! adds `rate` tokens, up to [`BURST_SECONDS`] × `rate`.

use std::net::Ipv6Addr;

use super::sip::{sip13_word_then, Sip, Sip24Resume};
use super::Timestamp;

/// Sets in a worker's table (a power of two).
pub const SETS: usize = 1024;
/// Buckets per set.
pub const WAYS: usize = 4;
/// A bucket holds at most this many seconds of tokens: the burst a quiet
/// source may send at once (a client's Solicit, Request and a retransmission
/// or two come close together).
pub const BURST_SECONDS: u32 = 2;

/// Who a message counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A client on one of our links: its source address on that interface
    /// (two links may each have an `fe80::1`).
    Direct {
        /// Interface the message arrived on.
        ifindex: u32,
        /// The client's source address (its link-local).
        addr: Ipv6Addr,
    },
    /// A relayed client: the innermost Relay-forw's peer-address (the
    /// client as the first relay saw it), on that relay's link-address, as
    /// it reached us through `relay`. The relay's own address alone would
    /// put every subscriber behind it in one bucket; the client cannot
    /// change the link-address or the relay path, so qualifying by them
    /// costs the limit nothing.
    Relayed {
        /// Source address of the Relay-forw datagram (the last relay).
        relay: Ipv6Addr,
        /// Link-address of the innermost Relay-forw.
        link: Ipv6Addr,
        /// Peer-address of the innermost Relay-forw.
        peer: Ipv6Addr,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// The source's keyed hash; 0: a free way.
    tag: u64,
    tokens: u32,
    /// Seconds of the last refill (the low 32 bits of [`Timestamp`]).
    stamp: u32,
}

impl Bucket {
    /// Tokens the bucket holds at `now`.
    fn level(&self, rate: u32, burst: u32, now: u32) -> u32 {
        let elapsed = u64::from(now.saturating_sub(self.stamp));
        let level = u64::from(self.tokens) + elapsed * u64::from(rate);
        level.min(u64::from(burst)) as u32
    }
}

/// One worker's token buckets. Allocated once (64 KiB); [`RateLimiter::admit`]
/// never allocates.
pub struct RateLimiter {
    key: Sip,
    sets: Box<[[Bucket; WAYS]]>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("sets", &self.sets.len())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl RateLimiter {
    /// An empty table of [`SETS`] × [`WAYS`] buckets, hashing under `key`.
    pub fn new(key: &[u8; 16]) -> RateLimiter {
        RateLimiter::with_sets(key, SETS)
    }

    /// An empty table of `sets` sets (rounded up to a power of two).
    pub fn with_sets(key: &[u8; 16], sets: usize) -> RateLimiter {
        RateLimiter {
            key: Sip::new(key, false),
            sets: vec![[Bucket::default(); WAYS]; sets.max(1).next_power_of_two()]
                .into_boxed_slice(),
        }
    }

    /// The key of the limiter for a process whose secret is `secret`: its
    /// own key, so that it shares nothing with the binding index's.
    pub fn derive_key(secret: &[u8; 16]) -> [u8; 16] {
        Sip24Resume::new(secret, b"dhcp6d per-source rate limit")
            .finish_tail(|_| 0)
            .to_le_bytes()
    }

    /// Take a token for one message from `source` at `now`, `rate` messages
    /// per second: `false` means over its rate (drop the message).
    pub fn admit(&mut self, source: &Source, rate: u32, now: Timestamp) -> bool {
        // Never 0, which marks a free way.
        let tag = self.hash(source) | 1;
        let mask = self.sets.len() - 1;
        let set = &mut self.sets[(tag >> 32) as usize & mask];
        // The low 32 bits wrap in 2106; a wrap reads as a clock step back
        // (no refill for that one second), nothing worse.
        let now = now.0 as u32;
        let burst = rate.saturating_mul(BURST_SECONDS).max(1);
        let bucket = match set.iter().position(|b| b.tag == tag) {
            Some(i) => &mut set[i],
            None => {
                let i = victim(set, rate, burst, now);
                set[i] = Bucket {
                    tag,
                    tokens: burst,
                    stamp: now,
                };
                &mut set[i]
            }
        };
        // Also clamps a bucket filled under a higher rate (a reload lowered it).
        bucket.tokens = bucket.level(rate, burst, now);
        // A clock stepped back restarts the count from there.
        bucket.stamp = now;
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Buckets in use.
    pub fn in_use(&self) -> usize {
        self.sets.iter().flatten().filter(|b| b.tag != 0).count()
    }

    /// Buckets the table has.
    pub fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    fn hash(&self, source: &Source) -> u64 {
        let mut bytes = [0u8; 48];
        match *source {
            Source::Direct { ifindex, addr } => {
                bytes[..16].copy_from_slice(&addr.octets());
                sip13_word_then(&self.key, u64::from(ifindex), &bytes[..16])
            }
            Source::Relayed { relay, link, peer } => {
                bytes[..16].copy_from_slice(&relay.octets());
                bytes[16..32].copy_from_slice(&link.octets());
                bytes[32..].copy_from_slice(&peer.octets());
                sip13_word_then(&self.key, 1 << 32, &bytes)
            }
        }
    }
}

/// The way a new source takes: a free one, else the one holding the most
/// tokens now (evicting it loses the least), the first of equals.
fn victim(set: &[Bucket; WAYS], rate: u32, burst: u32, now: u32) -> usize {
    if let Some(i) = set.iter().position(|b| b.tag == 0) {
        return i;
    }
    let mut best = 0;
    let mut best_level = 0;
    for (i, b) in set.iter().enumerate() {
        let level = b.level(rate, burst, now);
        if level > best_level {
            best = i;
            best_level = level;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [7; 16];

    fn client(n: u16) -> Source {
        Source::Direct {
            ifindex: 2,
            addr: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n),
        }
    }

    /// How many of `n` messages from `source` at `now` are admitted.
    fn admitted(l: &mut RateLimiter, source: &Source, rate: u32, now: u64, n: u32) -> u32 {
        (0..n)
            .filter(|_| l.admit(source, rate, Timestamp(now)))
            .count() as u32
    }

    #[test]
    fn a_quiet_source_may_burst_two_seconds_of_tokens_then_gets_its_rate() {
        let mut l = RateLimiter::new(&KEY);
        let a = client(1);
        assert_eq!(
            admitted(&mut l, &a, 10, 100, 50),
            20,
            "burst = 2 s of tokens"
        );
        assert_eq!(admitted(&mut l, &a, 10, 100, 5), 0, "same second: empty");
        for t in 101..110 {
            assert_eq!(
                admitted(&mut l, &a, 10, t, 50),
                10,
                "one second's refill at {t}"
            );
        }
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let mut l = RateLimiter::new(&KEY);
        let a = client(1);
        assert_eq!(admitted(&mut l, &a, 3, 100, 6), 6);
        assert_eq!(admitted(&mut l, &a, 3, 101, 1), 1);
        // A long silence refills to the burst and no further.
        assert_eq!(admitted(&mut l, &a, 3, 10_000, 100), 6);
    }

    #[test]
    fn two_sources_are_independent() {
        let mut l = RateLimiter::new(&KEY);
        let (a, b) = (client(1), client(2));
        assert_eq!(admitted(&mut l, &a, 5, 100, 1000), 10);
        assert_eq!(
            admitted(&mut l, &b, 5, 100, 3),
            3,
            "b untouched by a's flood"
        );
        // The same address on another interface, or relayed, is another client.
        let a_on_eth1 = Source::Direct {
            ifindex: 3,
            addr: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        };
        assert_eq!(admitted(&mut l, &a_on_eth1, 5, 100, 3), 3);
        let peer = |link: u16| Source::Relayed {
            relay: "2001:db8:ff::1".parse().unwrap(),
            link: Ipv6Addr::new(0x2001, 0xdb8, link, 0, 0, 0, 0, 1),
            peer: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        };
        assert_eq!(admitted(&mut l, &peer(1), 5, 100, 1000), 10);
        assert_eq!(admitted(&mut l, &peer(2), 5, 100, 3), 3);
    }

    #[test]
    fn a_lower_rate_clamps_a_fuller_bucket_at_once() {
        let mut l = RateLimiter::new(&KEY);
        let a = client(1);
        assert_eq!(admitted(&mut l, &a, 100, 100, 1), 1);
        // 199 tokens left under rate 100; rate 2 allows a burst of 4.
        assert_eq!(admitted(&mut l, &a, 2, 100, 50), 4);
        assert_eq!(admitted(&mut l, &a, 2, 101, 50), 2);
    }

    #[test]
    fn a_clock_stepped_back_refills_nothing() {
        let mut l = RateLimiter::new(&KEY);
        let a = client(1);
        assert_eq!(admitted(&mut l, &a, 1, 1000, 5), 2);
        assert_eq!(admitted(&mut l, &a, 1, 900, 5), 0);
        assert_eq!(admitted(&mut l, &a, 1, 901, 5), 1, "counts on from 900");
    }

    #[test]
    fn a_full_set_evicts_the_fullest_bucket_and_keeps_the_held_back_source() {
        // One set of WAYS buckets: every source lands in it.
        let mut l = RateLimiter::with_sets(&KEY, 1);
        assert_eq!(l.capacity(), WAYS);
        let flooder = client(1);
        assert_eq!(admitted(&mut l, &flooder, 10, 100, 100), 20);
        // A thousand one-message sources churn the other ways...
        for n in 2..1002 {
            assert!(l.admit(&client(n), 10, Timestamp(100)), "new source {n}");
        }
        assert_eq!(l.in_use(), WAYS, "no growth past the table");
        // ...and the flooder, whose bucket is the emptiest, is still held.
        assert_eq!(admitted(&mut l, &flooder, 10, 100, 10), 0);
    }

    #[test]
    fn an_evicted_source_comes_back_with_a_full_bucket() {
        let mut l = RateLimiter::with_sets(&KEY, 1);
        // Every way drained: eviction must take a drained bucket.
        for n in 1..=WAYS as u16 {
            assert_eq!(admitted(&mut l, &client(n), 1, 100, 5), 2);
        }
        assert_eq!(l.in_use(), WAYS);
        // A new source takes the first drained way (client 1's)...
        assert_eq!(admitted(&mut l, &client(99), 1, 100, 5), 2);
        // ...and client 1 comes back fresh (fail-open), in client 99's way.
        assert_eq!(admitted(&mut l, &client(1), 1, 100, 5), 2);
        for n in 2..=WAYS as u16 {
            assert_eq!(admitted(&mut l, &client(n), 1, 100, 5), 0, "{n} kept");
        }
    }

    #[test]
    fn the_key_decides_where_sources_land() {
        let a = RateLimiter::new(&KEY);
        let b = RateLimiter::new(&[8; 16]);
        let sources: Vec<Source> = (0..64).map(client).collect();
        let differ = sources.iter().filter(|s| a.hash(s) != b.hash(s)).count();
        assert_eq!(differ, 64);
        assert_ne!(RateLimiter::derive_key(&KEY), KEY);
        assert_ne!(
            RateLimiter::derive_key(&KEY),
            RateLimiter::derive_key(&[8; 16])
        );
    }
}
