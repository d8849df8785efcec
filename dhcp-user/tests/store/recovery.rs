//! Lease store: what goes in comes back after a restart.
//!
//! Issue 5: "A Reply is a promise ... dhcp6d sends a Reply only after the lease
//! behind it is on disk". RFC 9915 §18.3.2 (Request): "the server ... records
//! the IP addresses and other information"; §18.3.7 (Release) the server
//! "deletes the leases"; §18.3.8 (Decline) the server "marks the addresses ...
//! so that they will not be assigned"; §6.2 leases end with the valid lifetime.

use std::time::Duration;

use crate::common::{model_of, pd, rec, Model, TempDir, T0};
use dhcp6d::protocol::{LeaseChanges, LeaseOp, LeaseRecord};
use dhcp6d::store::{Durability, Journal, JournalHandle, StoreError};

const WAIT: Duration = Duration::from_secs(10);

fn commit_all(h: &JournalHandle, recs: &[LeaseRecord]) {
    let mut ch = LeaseChanges::default();
    for chunk in recs.chunks(3) {
        ch.clear();
        for r in chunk {
            assert!(ch.push(*r));
        }
        let seq = h.append(&ch).expect("journal healthy");
        assert!(h.wait_durable(seq, WAIT), "seq {seq} not durable");
    }
}

#[test]
fn records_survive_a_restart_with_commit_release_decline_expire_semantics() {
    let dir = TempDir::new("roundtrip");
    let mut model = Model::default();
    let mut all = Vec::new();
    for i in 0..200 {
        all.push(rec(LeaseOp::Commit, i));
        all.push(pd(LeaseOp::Commit, i));
    }
    // Extend some (a later Commit replaces), release some, expire some,
    // decline some (quarantined: kept).
    for i in 0..200 {
        match i % 5 {
            0 => {
                let mut r = rec(LeaseOp::Commit, i);
                r.valid_until += 86_400;
                r.preferred_until += 86_400;
                all.push(r);
            }
            1 => all.push(rec(LeaseOp::Release, i)),
            2 => all.push(pd(LeaseOp::Expire, i)),
            3 => all.push(rec(LeaseOp::Decline, i)),
            _ => {}
        }
    }
    for r in &all {
        model.apply(r);
    }
    {
        let (j, recovered) = Journal::open(dir.path()).expect("open empty");
        assert!(recovered.is_empty());
        commit_all(&j.handle(), &all);
        let st = j.handle().stats();
        assert_eq!(st.records, all.len() as u64);
        assert!(st.bytes > 0 && st.fsyncs > 0);
    }
    let (_j, recovered) = Journal::open(dir.path()).expect("reopen");
    assert_eq!(recovered.report.journal_records, all.len() as u64);
    assert_eq!(recovered.report.bytes_dropped, 0);
    let got = model_of(&recovered);
    assert_eq!(
        got.0.len(),
        200 + 200 - 40 - 40,
        "released and expired are removed"
    );
    assert_eq!(got, model);
    let declined = got.0.values().filter(|r| r.op == LeaseOp::Decline).count();
    assert_eq!(declined, 40, "declined addresses stay as quarantine");
}

#[test]
fn retain_live_drops_ended_leases_and_quarantines() {
    let dir = TempDir::new("retain");
    {
        let (j, _) = Journal::open(dir.path()).unwrap();
        let mut d = rec(LeaseOp::Decline, 1);
        d.valid_until = T0 + 10;
        commit_all(
            &j.handle(),
            &[rec(LeaseOp::Commit, 0), d, rec(LeaseOp::Commit, 2)],
        );
    }
    let (_j, mut recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 3);
    recovered.retain_live(T0 + 4001);
    let left: Vec<_> = recovered.iter().map(|r| r.iaid).collect();
    assert_eq!(
        left,
        vec![2],
        "valid_until T0+4000 and the quarantine ending T0+10 are over"
    );
}

#[test]
fn snapshot_then_tail_recovers_everything_and_compacts_old_segments() {
    let dir = TempDir::new("snap");
    let mut model = Model::default();
    for round in 0..4u64 {
        let (j, recovered) = Journal::open(dir.path()).unwrap();
        assert_eq!(model_of(&recovered), model, "round {round}");
        let h = j.handle();
        let batch: Vec<_> = (round * 100..round * 100 + 150)
            .map(|i| rec(LeaseOp::Commit, i))
            .chain((0..round * 10).map(|i| rec(LeaseOp::Release, i)))
            .collect();
        commit_all(&h, &batch);
        for r in &batch {
            model.apply(r);
        }
        let info = h
            .snapshot(|emit| model.0.values().for_each(emit))
            .expect("snapshot");
        assert_eq!(info.bindings, model.0.len() as u64);
        // Records after the snapshot land in the tail: new leases, renewals
        // and declines of bindings the snapshot holds.
        let tail: Vec<_> = (5000 + round * 10..5000 + round * 10 + 10)
            .map(|i| rec(LeaseOp::Commit, i))
            .chain((round * 100 + 140..round * 100 + 145).map(|i| {
                let mut r = rec(LeaseOp::Commit, i);
                r.valid_until += 7200;
                r
            }))
            .chain(std::iter::once(rec(LeaseOp::Decline, round * 100 + 149)))
            .collect();
        commit_all(&h, &tail);
        for r in &tail {
            model.apply(r);
        }
    }
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert!(recovered.report.snapshot_gen.is_some());
    assert_eq!(model_of(&recovered), model);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let snaps = names.iter().filter(|n| n.ends_with(".snap")).count();
    assert_eq!(snaps, 2, "the newest two snapshots are kept: {names:?}");
    let segs = names.iter().filter(|n| n.ends_with(".seg")).count();
    assert!(
        segs <= 4,
        "segments before the older snapshot are deleted: {names:?}"
    );
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_the_previous_one() {
    let dir = TempDir::new("corrupt-snap");
    let mut model = Model::default();
    {
        let (j, _) = Journal::open(dir.path()).unwrap();
        let h = j.handle();
        for part in 0..3u64 {
            let batch: Vec<_> = (part * 50..part * 50 + 50)
                .map(|i| rec(LeaseOp::Commit, i))
                .collect();
            commit_all(&h, &batch);
            batch.iter().for_each(|r| model.apply(r));
            if part < 2 {
                h.snapshot(|emit| model.0.values().for_each(emit)).unwrap();
            }
        }
    }
    let mut snaps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    snaps.sort();
    assert_eq!(snaps.len(), 2);
    let newest = snaps.pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, &bytes).unwrap();

    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.report.corrupt_snapshots, 1);
    assert!(
        recovered.report.snapshot_gen.is_some(),
        "the older snapshot is used"
    );
    assert_eq!(
        model_of(&recovered),
        model,
        "older snapshot + journal since it = everything"
    );
    assert!(
        newest.with_extension("corrupt").exists(),
        "kept for a human to look at"
    );
}

#[test]
fn a_second_server_on_the_same_state_dir_refuses_to_start() {
    let dir = TempDir::new("lock");
    let (j, _) = Journal::open(dir.path()).unwrap();
    match Journal::open(dir.path()) {
        Err(e @ StoreError::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("in use by another dhcp6d"), "{msg}");
            assert!(
                msg.contains(&format!("pid {}", std::process::id())),
                "{msg}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(j);
    Journal::open(dir.path()).expect("lock released on drop");
}

#[test]
fn server_duid_is_generated_once_and_kept() {
    use dhcp6d::store::{duid_uuid, load_or_create_duid, StateDir};
    let tmp = TempDir::new("duid");
    let dir = StateDir::open(tmp.path(), None).unwrap();
    let first = load_or_create_duid(&dir, || duid_uuid([7; 16])).unwrap();
    assert_eq!(&first[..2], &[0, 4], "RFC 6355 §4: DUID-UUID type 4");
    assert_eq!(first.len(), 18);
    let again = load_or_create_duid(&dir, || panic!("must not generate twice")).unwrap();
    assert_eq!(first, again);
    std::fs::write(tmp.path().join("server-duid"), "zz\n").unwrap();
    let err = load_or_create_duid(&dir, || duid_uuid([1; 16])).unwrap_err();
    assert!(matches!(err, StoreError::BadDuidFile { .. }), "{err}");
}

#[test]
fn snapshot_does_not_pause_appends() {
    let dir = TempDir::new("snap-nopause");
    let (j, _) = Journal::open(dir.path()).unwrap();
    let h = j.handle();
    commit_all(&h, &[rec(LeaseOp::Commit, 0)]);
    let (in_walk_tx, in_walk_rx) = crossbeam_channel::bounded::<()>(0);
    let (finish_tx, finish_rx) = crossbeam_channel::bounded::<()>(0);
    let h2 = h.clone();
    let snap = std::thread::spawn(move || {
        h2.snapshot(|emit| {
            emit(&rec(LeaseOp::Commit, 0));
            in_walk_tx.send(()).unwrap();
            finish_rx.recv().unwrap();
        })
    });
    in_walk_rx.recv().unwrap();
    // The snapshot is mid-walk; workers' records still become durable.
    commit_all(
        &h,
        &(1..50).map(|i| rec(LeaseOp::Commit, i)).collect::<Vec<_>>(),
    );
    finish_tx.send(()).unwrap();
    snap.join().unwrap().expect("snapshot");
    drop(j);
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.len(), 50);
}

/// Issue 13 item 8: the sweep's Expire can reach the journal after the
/// client's new Commit of the same address. An Expire ends only a binding
/// whose lifetime had run out by its `valid_until`, whether that binding is
/// in the tail or in the snapshot.
#[test]
fn an_expire_ends_only_a_binding_that_had_ended_by_it() {
    let dir = TempDir::new("stale-expire");
    let renewed = |i| {
        let mut r = rec(LeaseOp::Commit, i);
        r.valid_until += 5000;
        r.preferred_until += 5000;
        r
    };
    let mut model = Model::default();
    {
        let (j, _) = Journal::open(dir.path()).unwrap();
        let h = j.handle();
        // In the snapshot: 0 and 1 set again after their first lease ended; 2 not.
        let before = [renewed(0), renewed(1), rec(LeaseOp::Commit, 2)];
        commit_all(&h, &before);
        before.iter().for_each(|r| model.apply(r));
        h.snapshot(|emit| model.0.values().for_each(emit))
            .expect("snapshot");
        // In the tail: 3 committed twice, 4 once.
        let tail = [
            rec(LeaseOp::Commit, 3),
            renewed(3),
            rec(LeaseOp::Commit, 4),
            // The stale Expires of the first leases, late.
            rec(LeaseOp::Expire, 0),
            rec(LeaseOp::Expire, 2),
            rec(LeaseOp::Expire, 3),
            rec(LeaseOp::Expire, 4),
            // An Expire of a lease that ended later still ends 1.
            {
                let mut e = renewed(1);
                e.op = LeaseOp::Expire;
                e
            },
        ];
        commit_all(&h, &tail);
        tail.iter().for_each(|r| model.apply(r));
    }
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert!(
        recovered.report.snapshot_gen.is_some(),
        "0, 1, 2 come from the snapshot"
    );
    let got = model_of(&recovered);
    let mut left: Vec<u32> = got.0.values().map(|r| r.iaid).collect();
    left.sort_unstable();
    assert_eq!(
        left,
        vec![0, 3],
        "0 and 3 were set again after the lease the Expire ended"
    );
    for r in got.0.values() {
        assert_eq!(r.valid_until, renewed(u64::from(r.iaid)).valid_until);
    }
    assert_eq!(got, model);
}
