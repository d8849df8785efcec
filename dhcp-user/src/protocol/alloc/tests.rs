//! Golden vectors and RFC 2526 rules of the allocation function.
//! The expected values were computed by an independent Python SipHash-2-4-128
//! (see ALLOCATION.md), not by this code.

use super::*;
use std::net::Ipv6Addr;

const KEY: AllocKey = AllocKey([
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
]);
const DUID: [u8; 14] = [
    0x00, 0x01, 0x00, 0x01, 0x2a, 0x2b, 0x2c, 0x2d, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
];

fn a(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn pool65() -> NaPool {
    NaPool {
        first: a("2001:db8:1:1::"),
        last: a("2001:db8:1:1:7fff:ffff:ffff:ffff"),
        subnet_prefix: a("2001:db8:1:1::"),
        subnet_len: 64,
    }
}

#[test]
fn siphash128_reference_vector() {
    // SipHash reference implementation, vectors_sip128[0]: key 00..0f, empty message.
    let key = AllocKey(core::array::from_fn(|i| i as u8));
    assert_eq!(
        hash128(&key, b"").to_le_bytes(),
        [
            0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
            0x02, 0x93
        ]
    );
}

#[test]
fn golden_na_vectors() {
    let p = pool65();
    let want = [
        "2001:db8:1:1:292e:9fac:5682:5af1",
        "2001:db8:1:1:4f12:1f11:d1cf:504e",
        "2001:db8:1:1:77a5:d767:a3c6:d214",
    ];
    for (attempt, w) in want.iter().enumerate() {
        assert_eq!(
            p.candidate(&KEY, &DUID, 7, attempt as u32),
            a(w),
            "attempt {attempt}"
        );
    }
    assert_eq!(p.allocate(&KEY, &DUID, 7, true, |_| true), Some(a(want[0])));
    // A collision on attempt 0 moves the client to attempt 1.
    assert_eq!(
        p.allocate(&KEY, &DUID, 7, true, |c| c != a(want[0])),
        Some(a(want[1]))
    );
}

#[test]
fn golden_pd_vectors() {
    let p = PdPool {
        prefix: a("2001:db8:100::"),
        prefix_len: 40,
        delegated_len: 56,
    };
    let want = [
        "2001:db8:147:a200::",
        "2001:db8:12d:4c00::",
        "2001:db8:1d5:c900::",
    ];
    for (attempt, w) in want.iter().enumerate() {
        assert_eq!(
            p.candidate(&KEY, &DUID, 7, attempt as u32),
            a(w),
            "attempt {attempt}"
        );
    }
    assert!(p.contains_slot(a(want[0]), 56));
    assert!(!p.contains_slot(a(want[0]), 60));
    assert!(!p.contains_slot(a("2001:db8:147:a201::"), 56));
}

#[test]
fn rfc4291_subnet_router_anycast_is_reserved() {
    // RFC 4291 §2.6.1: the Subnet-Router anycast address is the prefix with an all-zero interface identifier.
    assert!(is_reserved_na(a("2001:db8:1:1::"), 64));
    assert!(!is_reserved_na(a("2001:db8:1:1::1"), 64));
}

#[test]
fn rfc2526_eui64_reserved_anycast_range() {
    // RFC 2526 §2: for EUI-64 interface IDs, the reserved anycast addresses have the
    // interface ID fdff:ffff:ffff:ff80 .. fdff:ffff:ffff:ffff (u/l bit 0, 7-bit anycast ID).
    assert!(is_reserved_na(a("2001:db8:1:1:fdff:ffff:ffff:ff80"), 64));
    assert!(is_reserved_na(a("2001:db8:1:1:fdff:ffff:ffff:fffe"), 64));
    assert!(is_reserved_na(a("2001:db8:1:1:fdff:ffff:ffff:ffff"), 64));
    assert!(!is_reserved_na(a("2001:db8:1:1:fdff:ffff:ffff:ff7f"), 64));
    assert!(!is_reserved_na(a("2001:db8:1:1:ffff:ffff:ffff:ffff"), 64));
}

#[test]
fn rfc2526_non_eui64_top_128_host_ids_reserved() {
    // RFC 2526 §2: otherwise the anycast addresses are the subnet prefix, 121-n ones and a 7-bit ID.
    assert!(is_reserved_na(a("2001:db8::1:ffff"), 112));
    assert!(!is_reserved_na(a("2001:db8::1:ff"), 112));
    assert!(is_reserved_na(a("2001:db8::1:ff80"), 112));
    assert!(!is_reserved_na(a("2001:db8::1:ff7f"), 112));
    assert!(is_reserved_na(a("2001:db8::1:0"), 112));
}

#[test]
fn allocation_never_returns_a_reserved_address() {
    // A tiny pool spanning a /64 boundary: ::ff..fffe .. next::1. It holds the
    // RFC 2526 top (fdff..) only if in range, and the all-zero ID of the next /64.
    let p = NaPool {
        first: a("2001:db8:1:1:ffff:ffff:ffff:fffe"),
        last: a("2001:db8:1:2::1"),
        subnet_prefix: a("2001:db8:1::"),
        subnet_len: 48,
    };
    assert_eq!(p.capacity(), 3);
    let mut seen = Vec::new();
    for iaid in 0..200 {
        let got = p.allocate(&KEY, &DUID, iaid, true, |_| true).unwrap();
        assert_ne!(got, a("2001:db8:1:2::"));
        seen.push(got);
    }
    // Pool exhausted by the caller's view: nothing usable → None, not a reserved one.
    assert_eq!(p.allocate(&KEY, &DUID, 1, true, |_| false), None);
}

#[test]
fn capacity_counts_reserved_addresses() {
    // A /64 pool: 2^64 minus the subnet-router anycast and the 128 RFC 2526 addresses.
    let p = NaPool {
        first: a("2001:db8:1:1::"),
        last: a("2001:db8:1:1:ffff:ffff:ffff:ffff"),
        subnet_prefix: a("2001:db8:1:1::"),
        subnet_len: 64,
    };
    assert_eq!(p.capacity(), (1u128 << 64) - 129);
    assert_eq!(pool65().capacity(), (1u128 << 63) - 1);
    let small = NaPool {
        first: a("2001:db8::1:0"),
        last: a("2001:db8::1:ffff"),
        subnet_prefix: a("2001:db8::1:0"),
        subnet_len: 112,
    };
    assert_eq!(small.capacity(), 65536 - 129);
    // Brute force agrees.
    let brute = (small.first..=small.last)
        .filter(|x| !small.is_reserved(*x))
        .count();
    assert_eq!(brute as u128, small.capacity());
}

#[test]
fn small_pool_fills_completely_then_refuses() {
    let p = NaPool {
        first: a("2001:db8::1:10"),
        last: a("2001:db8::1:2f"),
        subnet_prefix: a("2001:db8::"),
        subnet_len: 64,
    };
    let mut taken = std::collections::HashSet::new();
    for iaid in 0..32u32 {
        let got = p
            .allocate(&KEY, &DUID, iaid, true, |c| !taken.contains(&c))
            .unwrap();
        assert!(taken.insert(got));
    }
    assert_eq!(
        p.allocate(&KEY, &DUID, 99, true, |c| !taken.contains(&c)),
        None
    );
}

#[test]
fn key_from_duid_is_stable_and_distinct() {
    let k1 = AllocKey::from_server_duid(&DUID);
    assert_eq!(k1, AllocKey::from_server_duid(&DUID));
    assert_ne!(k1, AllocKey::from_server_duid(&DUID[..10]));
}

#[test]
fn streaming_state_equals_one_shot_hash_of_the_documented_bytes() {
    // The precomputed per-pool state must hash exactly the bytes ALLOCATION.md lists.
    let p = pool65();
    for (duid, iaid, attempt) in [
        (&DUID[..], 7u32, 0u32),
        (&[0u8, 3, 0, 1, 9][..], 1, 5),
        (&[7u8; 130][..], u32::MAX, 31),
    ] {
        let mut buf = [0u8; MAX_INPUT];
        let mut identity = [0u8; 32];
        identity[..16].copy_from_slice(&p.first.to_be_bytes());
        identity[16..].copy_from_slice(&p.last.to_be_bytes());
        let n = input_bytes(&mut buf, 1, &identity, duid, iaid, attempt);
        let one_shot = p.first + hash128(&KEY, &buf[..n]) % p.size().unwrap();
        assert_eq!(
            p.candidate_with(&p.hasher(&KEY), duid, iaid, attempt),
            one_shot
        );
    }
}

/// Issue 13 item 6: a search examines at most its budget of candidates and
/// takes what it examined off the budget.
#[test]
fn a_search_examines_no_more_candidates_than_its_budget() {
    let small = NaPool {
        first: a("2001:db8::1:0"),
        last: a("2001:db8::1:ffff"),
        subnet_prefix: a("2001:db8::1:0"),
        subnet_len: 112,
    };
    let ph = small.hasher(&KEY);
    // A full pool: without a bound every hashed probe and every slot is asked.
    let mut asked = 0u32;
    let mut budget = u32::MAX;
    let full = small.allocate_bounded(&ph, &DUID, 1, true, &mut budget, |_| {
        asked += 1;
        false
    });
    assert_eq!(full, None);
    assert!(asked > 65_000, "{asked}");
    assert_eq!(u32::MAX - budget, 32 + 65_536, "reserved ones count too");
    for limit in [0u32, 1, 31, 32, 33, 5000] {
        let mut asked = 0u32;
        let mut budget = limit;
        let got = small.allocate_bounded(&ph, &DUID, 1, true, &mut budget, |_| {
            asked += 1;
            false
        });
        assert_eq!(got, None);
        assert!(asked <= limit, "budget {limit}: asked {asked}");
        assert_eq!(budget, 0, "budget {limit} spent");
    }
    // A budget that suffices finds the one free slot, and keeps the rest.
    let free = small.last - 200;
    let mut budget = MESSAGE_PROBE_BUDGET;
    let got = small.allocate_bounded(&ph, &DUID, 1, true, &mut budget, |c| c == free);
    assert_eq!(got, Some(free));
    assert!(budget > 0 && budget < MESSAGE_PROBE_BUDGET);
}
