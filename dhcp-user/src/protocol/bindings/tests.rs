use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn key(duid: &[u8], iaid: u32) -> ClientKey<'_> {
    ClientKey {
        duid,
        iaid,
        kind: LeaseKind::Na,
    }
}

fn addr(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
}

const NOW: Timestamp = Timestamp(1_000);

#[test]
fn commit_find_extend_release() {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let k = key(b"duid-one", 1);
    assert_eq!(b.find(&k, NOW), None);
    assert_eq!(
        b.commit(&k, addr(1), 128, 0, 1500, 2000, NOW),
        Ok(Committed::Created)
    );
    let got = b.find(&k, NOW).unwrap();
    assert_eq!((got.addr, got.valid_until), (addr(1), 2000));
    assert_eq!(
        b.commit(&k, addr(1), 128, 0, 1600, 2100, NOW),
        Ok(Committed::Extended)
    );
    assert_eq!(b.find(&k, NOW).unwrap().valid_until, 2100);
    assert_eq!(b.pool_used(0), 1);
    // Another client cannot take it while it is live.
    assert_eq!(
        b.commit(&key(b"duid-two", 1), addr(1), 128, 0, 1, 3000, NOW),
        Err(Taken)
    );
    // Same DUID, other IAID is another IA.
    assert_eq!(b.find(&key(b"duid-one", 2), NOW), None);
    assert!(
        b.release(&k, addr(2), NOW).is_none(),
        "release of an address the IA does not hold"
    );
    assert_eq!(b.release(&k, addr(1), NOW).map(|x| x.addr), Some(addr(1)));
    assert_eq!(b.find(&k, NOW), None);
    assert_eq!(b.pool_used(0), 0);
    assert_eq!(b.counts(), (0, 0));
}

#[test]
fn expired_binding_is_invisible_and_reclaimable() {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let k1 = key(b"a-very-long-duid-that-does-not-fit-inline-in-the-slot", 1);
    let k2 = key(b"other", 9);
    b.commit(&k1, addr(5), 128, 0, 1100, 1200, NOW).unwrap();
    let later = Timestamp(1200);
    assert_eq!(b.find(&k1, later), None);
    assert!(b.usable(u128::from(addr(5)), &k2, later));
    assert_eq!(
        b.commit(&k2, addr(5), 128, 0, 1300, 1400, later),
        Ok(Committed::Created)
    );
    assert_eq!(b.by_addr(addr(5), later).unwrap().1, b"other".to_vec());
    assert_eq!(b.pool_used(0), 1);
    // The old owner's index entry is gone: it has no binding even before expiry checks.
    assert_eq!(b.find(&k1, Timestamp(0)), None);
}

#[test]
fn decline_quarantines_until_valid_lifetime_ends() {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let k = key(b"d", 3);
    b.commit(&k, addr(9), 128, 0, 1100, 1200, NOW).unwrap();
    assert!(b.decline(&k, addr(9), NOW, 5000).is_some());
    assert_eq!(b.find(&k, NOW), None, "the declined address leaves the IA");
    let other = key(b"e", 3);
    assert!(!b.usable(u128::from(addr(9)), &other, Timestamp(4999)));
    assert!(!b.usable(u128::from(addr(9)), &k, Timestamp(4999)));
    assert_eq!(
        b.commit(&other, addr(9), 128, 0, 1, 6000, Timestamp(4999)),
        Err(Taken)
    );
    assert_eq!(b.pool_used(0), 1, "quarantine still occupies the pool");
    let mut out = Vec::new();
    b.sweep(Timestamp(5000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].op, LeaseOp::Expire);
    assert!(b.usable(u128::from(addr(9)), &other, Timestamp(5000)));
    assert_eq!(b.pool_used(0), 0);
}

#[test]
fn sweep_reports_and_removes_only_expired() {
    let b = Bindings::new(PoolSpans::opaque(1), [1; 16]);
    let duids: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    for (i, d) in duids.iter().enumerate() {
        let valid = if i % 2 == 0 { 1500 } else { 3000 };
        b.commit(&key(d, 0), addr(i as u16 + 1), 128, 0, valid, valid, NOW)
            .unwrap();
    }
    let mut out = Vec::new();
    b.sweep(Timestamp(2000), &mut out);
    assert_eq!(out.len(), 50);
    assert!(out
        .iter()
        .all(|r| r.valid_until == 1500 && r.op == LeaseOp::Expire));
    assert_eq!(b.counts().0, 50);
    let mut n = 0;
    b.for_each(|r| {
        assert_eq!(r.valid_until, 3000);
        n += 1;
    });
    assert_eq!(n, 50);
}

#[test]
fn commit_elsewhere_moves_the_binding() {
    let b = Bindings::new(PoolSpans::opaque(2), [2; 16]);
    let k = key(b"mover", 4);
    b.commit(&k, addr(1), 128, 0, 1500, 2000, NOW).unwrap();
    let r = b.commit(&k, addr(2), 128, 1, 1500, 2000, NOW).unwrap();
    assert!(matches!(r, Committed::Moved(old) if old.addr == addr(1)));
    assert!(b.by_addr(addr(1), NOW).is_none());
    assert_eq!((b.pool_used(0), b.pool_used(1)), (0, 1));
}

#[test]
fn apply_restores_what_for_each_reports() {
    let b = Bindings::new(PoolSpans::opaque(1), [3; 16]);
    for i in 0..300u32 {
        let d = format!("client-{i}-with-some-padding");
        let k = ClientKey {
            duid: d.as_bytes(),
            iaid: i,
            kind: if i % 3 == 0 {
                LeaseKind::Pd
            } else {
                LeaseKind::Na
            },
        };
        b.commit(
            &k,
            addr(i as u16 + 1),
            if i % 3 == 0 { 56 } else { 128 },
            0,
            1500,
            2000 + u64::from(i),
            NOW,
        )
        .unwrap();
    }
    b.decline(
        &ClientKey {
            duid: b"client-1-with-some-padding",
            iaid: 1,
            kind: LeaseKind::Na,
        },
        addr(2),
        NOW,
        9000,
    )
    .unwrap();
    let mut recs = Vec::new();
    b.for_each(|r| recs.push(*r));
    let c = Bindings::new(PoolSpans::opaque(1), [99; 16]);
    for r in &recs {
        c.apply(r, 0);
    }
    let mut again = Vec::new();
    c.for_each(|r| again.push(*r));
    let norm = |v: &mut Vec<LeaseRecord>| v.sort_by_key(|r| (u128::from(r.addr), r.iaid));
    norm(&mut recs);
    norm(&mut again);
    assert_eq!(recs, again);
    assert_eq!(b.counts(), c.counts());
    assert_eq!(c.pool_used(0), 300);
}

#[test]
fn held_by_counts_a_clients_bindings_across_its_ias() {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let duid = b"client-with-ias";
    assert_eq!(b.held_by(duid), 0);
    for iaid in 0..3 {
        b.commit(
            &key(duid, iaid),
            addr(10 + iaid as u16),
            128,
            0,
            1500,
            2000,
            NOW,
        )
        .unwrap();
    }
    let pd = ClientKey {
        kind: LeaseKind::Pd,
        ..key(duid, 0)
    };
    b.commit(&pd, addr(0x100), 64, 0, 1500, 2000, NOW).unwrap();
    assert_eq!(b.held_by(duid), 4, "three addresses and a prefix");
    // Extending or moving a binding is not a new one.
    b.commit(&key(duid, 0), addr(10), 128, 0, 1600, 2100, NOW)
        .unwrap();
    b.commit(&key(duid, 1), addr(50), 128, 0, 1600, 2100, NOW)
        .unwrap();
    assert_eq!(b.held_by(duid), 4);
    assert_eq!(b.held_by(b"someone-else"), 0);
    b.release(&key(duid, 2), addr(12), NOW).unwrap();
    b.decline(&key(duid, 0), addr(10), NOW, 5000).unwrap();
    assert_eq!(b.held_by(duid), 2, "released and declined leave the client");
    // Another client taking over an expired binding takes it from its owner.
    b.commit(
        &key(b"late", 1),
        addr(50),
        128,
        0,
        3000,
        4000,
        Timestamp(2100),
    )
    .unwrap();
    assert_eq!(b.held_by(duid), 1);
    let mut out = Vec::new();
    b.sweep(Timestamp(2100), &mut out);
    assert_eq!(b.held_by(duid), 0, "the swept prefix was its last");
    assert_eq!(b.held_by(b"late"), 1);
}

#[test]
fn slot_memory_under_120_bytes_per_binding() {
    // Heap bytes per binding at 400k bindings of 400k clients: 6250 per shard puts each index just
    // past a doubling (load 0.38), close to the worst case of the layout.
    // The 10M RSS figure is in the bench report.
    let b = Bindings::new(PoolSpans::opaque(1), [4; 16]);
    let n = 400_000u32;
    for i in 0..n {
        let mut duid = [0u8; 14];
        duid[..4].copy_from_slice(&[0, 1, 0, 1]);
        duid[10..].copy_from_slice(&i.to_be_bytes());
        let a = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i));
        b.commit(&key(&duid, 1), a, 128, 0, 1500, 2000, NOW)
            .unwrap();
    }
    let per = b.heap_bytes() as f64 / f64::from(n);
    // 94 bytes in the shards, plus about 20 per client (one binding each
    // here, the worst case) for the per-client counts of bindings_per_client.
    assert!(per < 120.0, "{per} bytes per binding");
}

proptest! {
    /// Invariant: no two live bindings share an address, whatever the order of
    /// commits, releases, declines and sweeps; and the store agrees with a model.
    #[test]
    fn no_two_live_bindings_share_an_address(
        ops in proptest::collection::vec((0u8..4, 0u8..12, 0u32..3, 1u16..10, 0u64..50), 1..300)
    ) {
        let b = Bindings::new(PoolSpans::opaque(1), [5; 16]);
        let mut model: HashMap<(u8, u32), (u16, u64)> = HashMap::new();
        let mut now = 1000u64;
        for (op, client, iaid, a, dt) in ops {
            now += dt;
            let duid = [client; 3];
            let k = key(&duid, iaid);
            let t = Timestamp(now);
            model.retain(|_, (_, v)| *v > now);
            match op {
                0 => {
                    let taken = model.iter().any(|(c, (x, _))| *x == a && *c != (client, iaid));
                    let r = b.commit(&k, addr(a), 128, 0, now + 30, now + 60, t);
                    if b.by_addr(addr(a), t).is_some_and(|(x, _)| x.declined) {
                        prop_assert!(r.is_err());
                    } else if taken {
                        prop_assert_eq!(r, Err(Taken));
                    } else {
                        prop_assert!(r.is_ok());
                        model.insert((client, iaid), (a, now + 60));
                    }
                }
                1 => {
                    let had = model.get(&(client, iaid)).is_some_and(|(x, _)| *x == a);
                    prop_assert_eq!(b.release(&k, addr(a), t).is_some(), had);
                    if had { model.remove(&(client, iaid)); }
                }
                2 => {
                    let had = model.get(&(client, iaid)).is_some_and(|(x, _)| *x == a);
                    let got = b.decline(&k, addr(a), t, now + 40);
                    prop_assert_eq!(got.is_some(), had);
                    if had { model.remove(&(client, iaid)); }
                }
                _ => {
                    let mut out = Vec::new();
                    b.sweep(t, &mut out);
                    prop_assert!(out.iter().all(|r| r.valid_until <= now));
                }
            }
            let mut seen = std::collections::HashSet::new();
            let mut live = 0;
            let mut held: HashMap<Vec<u8>, u32> = HashMap::new();
            b.for_each(|r| {
                if r.valid_until > now && r.op == LeaseOp::Commit { live += 1; }
                if r.op == LeaseOp::Commit { *held.entry(r.duid().to_vec()).or_default() += 1; }
                assert!(seen.insert(r.addr), "two bindings at {}", r.addr);
            });
            prop_assert_eq!(live, model.len());
            // The per-client count agrees with the bindings held (quarantine
            // entries belong to nobody), for every client ever seen.
            for c in 0u8..12 {
                let duid = [c; 3];
                prop_assert_eq!(b.held_by(&duid), held.get(duid.as_slice()).copied().unwrap_or(0));
            }
        }
    }
}

/// What has ended by `now`, counted the slow way (every held entry).
fn ended_slowly(b: &Bindings, now: Timestamp) -> u64 {
    let mut n = 0;
    b.for_each(|r| n += u64::from(r.valid_until <= now.0));
    n
}

#[test]
fn ended_by_is_exact_when_a_shard_outgrows_its_expiry_list() {
    // More short-lived bindings land in the sweep's window than the list has
    // spare room for (without allocating on the packet path): the shards that
    // overflow fall back to a scan, and the count stays exact.
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let mut sink = Vec::new();
    b.sweep(NOW, &mut sink);
    let duids: Vec<[u8; 4]> = (0..8192u32).map(|i| i.to_be_bytes()).collect();
    for (i, d) in duids.iter().enumerate() {
        let a = Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128);
        // Ends 10..=40 s after NOW: inside the 60 s window.
        let end = NOW.0 + 10 + (i as u64 % 31);
        b.commit(&key(d, 1), a, 128, 0, end, end, NOW).unwrap();
    }
    // 128 bindings a shard on average against 64 spare entries: without an
    // overflow this test would check only the list, never the fallback.
    let overflowed = (0..SHARDS)
        .filter(|&s| b.addr_shard(s).overflowed())
        .count();
    assert!(overflowed > 0, "no shard outgrew its expiry list");
    for t in [NOW.0 + 9, NOW.0 + 20, NOW.0 + 40, NOW.0 + 61] {
        let (per_pool, na, pd) = b.ended_by(Timestamp(t));
        let want = ended_slowly(&b, Timestamp(t));
        assert_eq!(
            (per_pool[0], na, pd),
            (want, want, 0),
            "at NOW + {}",
            t - NOW.0
        );
    }
    assert_eq!(b.ended_by(Timestamp(NOW.0 + 40)).0[0], 8192);
}

#[test]
fn ended_by_counts_a_slot_listed_twice_once() {
    // One slot's end changes inside the expiry window twice (a commit, then
    // an extension), then the slot is freed and reused by another client
    // that also ends inside the window. It is listed once and counted once.
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let mut sink = Vec::new();
    b.sweep(NOW, &mut sink);
    let a = addr(1);
    let hash = b.addr_hash(u128::from(a));
    let shard = shard_of(hash);
    let k = key(b"renews-twice", 1);
    b.commit(&k, a, 128, 0, NOW.0 + 10, NOW.0 + 10, NOW)
        .unwrap();
    let first = b.addr_shard(shard).find_addr(hash, u128::from(a)).unwrap();
    assert_eq!(
        b.commit(&k, a, 128, 0, NOW.0 + 20, NOW.0 + 20, NOW),
        Ok(Committed::Extended)
    );
    b.release(&k, a, NOW).unwrap();
    b.commit(
        &key(b"reuses-it", 2),
        a,
        128,
        0,
        NOW.0 + 30,
        NOW.0 + 30,
        NOW,
    )
    .unwrap();
    assert_eq!(
        b.addr_shard(shard).find_addr(hash, u128::from(a)),
        Some(first),
        "the freed slot is reused"
    );
    assert_eq!(
        b.addr_shard(shard).listed_len(),
        1,
        "listed once, not three times"
    );
    assert_eq!(b.ended_by(Timestamp(NOW.0 + 25)), (vec![0], 0, 0));
    assert_eq!(b.ended_by(Timestamp(NOW.0 + 30)), (vec![1], 1, 0));
    assert_eq!(ended_slowly(&b, Timestamp(NOW.0 + 30)), 1);
}

/// Panic while holding the locks `client` and `addr` (indices into the
/// shard arrays), as a buggy worker would before its supervisor restarts it.
fn poison(b: &Bindings, client: usize, addr: Option<usize>) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _index = b.client_shards[client].lock().unwrap();
        let _shard = addr.map(|s| b.addr_shards[s].lock().unwrap());
        panic!("test: a worker panics holding binding shards");
    }));
    assert!(r.is_err());
    assert!(b.client_shards[client].is_poisoned());
}

#[test]
fn a_poisoned_shard_keeps_serving_and_is_counted_once() {
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let k = key(b"poisoned", 1);
    b.commit(&k, addr(1), 128, 0, 1500, 2000, NOW).unwrap();
    let a = shard_of(b.addr_hash(u128::from(addr(1))));
    let c = shard_of(b.client_hash(&k));
    poison(&b, c, Some(a));
    assert!(b.addr_shards[a].is_poisoned());
    assert_eq!(b.poisoned(), 0, "nothing has locked them since");
    // The next operations work on the shards as the panic left them.
    assert_eq!(b.find(&k, NOW).map(|x| x.addr), Some(addr(1)));
    assert_eq!(b.poisoned(), 2, "the client shard and the address shard");
    assert!(!b.client_shards[c].is_poisoned() && !b.addr_shards[a].is_poisoned());
    assert_eq!(
        b.commit(&k, addr(1), 128, 0, 1600, 2100, NOW),
        Ok(Committed::Extended)
    );
    assert_eq!(b.ended_by(Timestamp(2100)), (vec![1], 1, 0));
    assert_eq!(b.poisoned(), 2, "counted once per panic, not once per lock");
    poison(&b, c, None);
    assert!(b.release(&k, addr(1), NOW).is_some());
    assert_eq!(b.poisoned(), 3, "a second panic counts again");
    assert_eq!((b.pool_used(0), b.counts()), (0, (0, 0)));
}

#[test]
fn an_expired_address_is_reclaimed_past_a_poisoned_owner_shard() {
    // The commit that reclaims an expired address only try_locks its old
    // owner's client shard (lock order). A poisoned one is not "busy": were
    // it taken for busy, every such address would stay Taken until a restart.
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let old = key(b"expired-owner", 1);
    b.commit(&old, addr(3), 128, 0, 1100, 1200, NOW).unwrap();
    let owner_shard = shard_of(b.client_hash(&old));
    let duids: Vec<[u8; 4]> = (0..64u32).map(|i| i.to_be_bytes()).collect();
    let new = duids
        .iter()
        .map(|d| key(d, 1))
        .find(|k| shard_of(b.client_hash(k)) != owner_shard)
        .unwrap();
    poison(&b, owner_shard, None);
    let later = Timestamp(1200);
    assert_eq!(
        b.commit(&new, addr(3), 128, 0, 1300, 1400, later),
        Ok(Committed::Created)
    );
    assert_eq!(b.poisoned(), 1);
    assert_eq!(
        b.find(&old, Timestamp(0)),
        None,
        "the old owner's entry is gone"
    );
    assert_eq!(b.pool_used(0), 1);
}

#[test]
fn a_count_that_missed_its_increment_stays_at_zero_instead_of_wrapping() {
    // After a panic mid-commit (see `recover`) a binding can exist whose
    // counts were never raised; removing it must not wrap them to 2^64 - 1,
    // which would make the pool look full and turn off its linear scan.
    let b = Bindings::new(PoolSpans::opaque(1), [7; 16]);
    let k = key(b"uncounted", 1);
    b.commit(&k, addr(5), 128, 0, 1500, 2000, NOW).unwrap();
    b.accounts().used[0].store(0, Ordering::Relaxed);
    b.live_na.store(0, Ordering::Relaxed);
    assert!(b.release(&k, addr(5), NOW).is_some());
    assert_eq!((b.pool_used(0), b.counts()), (0, (0, 0)));
}

/// Walk the whole table with `scan`; returns what each step visited.
fn walk(b: &Bindings) -> Vec<Vec<(ScanPos, Ipv6Addr)>> {
    let mut steps = Vec::new();
    let mut at = Some(ScanPos::default());
    while let Some(from) = at {
        let mut step = Vec::new();
        at = b.scan(from, |pos, binding, _| step.push((pos, binding.addr)));
        steps.push(step);
    }
    steps
}

#[test]
fn scan_visits_each_binding_once_a_bounded_step_at_a_time() {
    let b = Bindings::new(PoolSpans::opaque(1), [5; 16]);
    // Enough that some shard holds more than one step's worth of slots.
    let n = 80_000u32;
    for i in 0..n {
        let d = i.to_be_bytes();
        let a = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
        b.commit(&key(&d, 0), a, 128, 0, 1500, 2000, NOW).unwrap();
    }
    let steps = walk(&b);
    assert!(steps.iter().all(|s| s.len() <= SCAN_STEP as usize));
    assert!(steps.iter().any(|s| s.len() == SCAN_STEP as usize));
    let places: Vec<ScanPos> = steps.iter().flatten().map(|(p, _)| *p).collect();
    assert!(places.windows(2).all(|w| w[0] < w[1]), "in place order");
    let mut seen: Vec<Ipv6Addr> = steps.iter().flatten().map(|(_, a)| *a).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n as usize);
    // Places do not move: a Renew keeps its place, a freed place is skipped.
    let (p, a) = steps[3][7];
    let owner = b.by_addr(a, NOW).unwrap().1;
    b.commit(&key(&owner, 0), a, 128, 0, 1600, 2100, NOW)
        .unwrap();
    let again = walk(&b);
    assert!(again.iter().flatten().any(|&(q, x)| q == p && x == a));
    b.release(&key(&owner, 0), a, NOW).unwrap();
    assert!(walk(&b).iter().flatten().all(|&(q, _)| q != p));
    // A place past the end of the table ends the walk.
    let past = ScanPos {
        shard: SHARDS as u32,
        slot: 0,
    };
    assert_eq!(b.scan(past, |_, _, _| panic!("nothing to visit")), None);
}
