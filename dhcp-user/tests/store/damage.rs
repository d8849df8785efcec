//! Issue 13 item 10: corruption is not a torn tail.
//!
//! A crash can only tear the batch being written last (one `pwrite`, then
//! `fdatasync`): that is cut, as before. Anything else (a bad batch with
//! intact ones after it, damage in an earlier segment, a missing segment, no
//! intact snapshot where the journal no longer reaches back) stops the start
//! with an error naming the file and the offset, keeps a copy, and leaves the
//! directory as it is. `dhcp6d repair` says what it would drop; `--commit`
//! drops it. And a state directory written before batches existed (segment
//! magic `D6JSEG01`, the checked-in fixture) recovers unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{model_of, pd, rec, Model, TempDir};
use dhcp6d::protocol::{LeaseChanges, LeaseOp, LeaseRecord};
use dhcp6d::store::{repair, Durability, Journal, JournalHandle, StoreError};

const WAIT: Duration = Duration::from_secs(10);

/// Append `recs` in appends of `per` records, each waited for (its own batch).
fn put(h: &JournalHandle, recs: &[LeaseRecord], per: usize, model: &mut Model) {
    for chunk in recs.chunks(per) {
        let mut ch = LeaseChanges::default();
        for r in chunk {
            assert!(ch.push(*r));
            model.apply(r);
        }
        let s = h.append(&ch).expect("healthy");
        assert!(h.wait_durable(s, WAIT));
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

/// Every file of `dir` with its bytes: to show that nothing changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir, "")
        .into_iter()
        .filter(|p| !p.ends_with("lock"))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// `repair`, waiting out a lock held only by a descriptor copy: the kill -9
/// test spawns children all the time, and a child holds copies of every
/// descriptor (our lock's too) between its fork and its exec.
fn repair_unlocked(dir: &Path, commit: bool) -> dhcp6d::store::RepairReport {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match repair(dir, commit) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            r => return r.unwrap(),
        }
    }
}

fn commits(range: std::ops::Range<u64>) -> Vec<LeaseRecord> {
    range.map(|i| rec(LeaseOp::Commit, i)).collect()
}

/// The records the fixture was written with (by the dhcp6d of commit
/// 320c1d8, before batches): two runs, a snapshot in the first.
fn fixture_model() -> Model {
    let mut m = Model::default();
    let runs: [Vec<LeaseRecord>; 3] = [
        commits(0..40)
            .into_iter()
            .chain((0..10).map(|i| pd(LeaseOp::Commit, i)))
            .collect(),
        (0..5)
            .map(|i| rec(LeaseOp::Release, i))
            .chain((5..8).map(|i| rec(LeaseOp::Decline, i)))
            .chain(commits(40..50))
            .collect(),
        commits(50..60)
            .into_iter()
            .chain((0..3).map(|i| pd(LeaseOp::Expire, i)))
            .collect(),
    ];
    runs.iter().flatten().for_each(|r| m.apply(r));
    m
}

fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/store/fixtures/v1-state-dir");
    for f in files(&from, "") {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_state_dir_written_before_batches_recovers_unchanged() {
    let dir = TempDir::new("v1-fixture");
    copy_fixture(dir.path());
    let mut model = fixture_model();
    assert_eq!(model.0.len(), 62);
    {
        let (j, recovered) = Journal::open(dir.path()).expect("the old format opens");
        assert_eq!(recovered.report.snapshot_gen, Some(2));
        assert_eq!(recovered.report.bytes_dropped, 0);
        assert_eq!(model_of(&recovered), model);
        // New records go to a new segment, in batches, beside the old ones.
        put(&j.handle(), &commits(60..70), 4, &mut model);
    }
    let seg4 = std::fs::read(dir.path().join("journal-0000000000000004.seg")).unwrap();
    assert_eq!(&seg4[..8], b"D6JSEG02");
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(model_of(&recovered), model);
}

#[test]
fn damage_in_an_earlier_segment_stops_the_start_and_repair_drops_only_it() {
    let dir = TempDir::new("damage-earlier");
    let mut model = Model::default();
    for run in 0..2u64 {
        let (j, _) = Journal::open(dir.path()).unwrap();
        put(
            &j.handle(),
            &commits(run * 100..run * 100 + 30),
            3,
            &mut model,
        );
    }
    let segs = files(dir.path(), ".seg");
    assert_eq!(segs.len(), 2);
    let first = &segs[0];
    let mut bytes = std::fs::read(first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(first, &bytes).unwrap();
    let before = contents(dir.path());

    let err = Journal::open(dir.path()).expect_err("damage before the last batch is refused");
    let StoreError::Damaged { damage, copy } = &err else {
        panic!("expected Damaged, got {err}");
    };
    assert_eq!(&damage.path, first);
    let offset = damage.offset.unwrap() as usize;
    // The damage starts at the header of the batch holding the flipped byte.
    assert!(
        offset <= at && at - offset < 256,
        "damage at {offset}, flip at {at}"
    );
    assert!(damage.reason.contains("not the last"), "{}", damage.reason);
    let copy = copy.as_ref().expect("a copy");
    assert_eq!(std::fs::read(copy).unwrap(), bytes);
    let msg = err.to_string();
    assert!(
        msg.contains(&first.display().to_string())
            && msg.contains(&format!("at byte {offset}"))
            && msg.contains("dhcp6d repair"),
        "{msg}"
    );
    let mut now = contents(dir.path());
    now.retain(|(p, _)| p != copy);
    assert_eq!(now, before, "nothing but the copy was written");

    // The dry run says what goes and changes nothing.
    let dry = repair_unlocked(dir.path(), false);
    assert!(dry.needs_repair());
    assert_eq!(dry.damage.len(), 1);
    let lost = dry.damage[0].records as usize;
    assert!(lost > 0 && lost < 30, "{lost} records after the damage");
    assert_eq!(dry.damage[0].bytes, (bytes.len() - offset) as u64);
    assert!(dry.snapshot.is_none());
    let mut now = contents(dir.path());
    now.retain(|(p, _)| p != copy);
    assert_eq!(now, before, "a dry run changes nothing");

    // The repair keeps the first segment up to the damage and the second whole.
    let done = repair_unlocked(dir.path(), true);
    assert!(done.snapshot.is_some());
    assert_eq!(done.set_aside, vec![copy.clone()]);
    let (j, recovered) = Journal::open(dir.path()).expect("starts after the repair");
    let got = model_of(&recovered);
    let mut expect = Model::default();
    let kept = 30 - lost;
    commits(0..kept as u64)
        .iter()
        .chain(&commits(100..130))
        .for_each(|r| expect.apply(r));
    // The damaged batch itself (up to 3 records) is gone too.
    assert!(got.0.len() <= expect.0.len() && got.0.len() + 3 >= expect.0.len());
    assert!(
        got.0.iter().all(|(k, r)| model.0.get(k) == Some(r)),
        "nothing invented"
    );
    assert!(commits(100..130)
        .iter()
        .all(|r| got.0.values().any(|g| g == r)));
    assert!(
        matches!(repair(dir.path(), false), Err(StoreError::Locked { .. })),
        "never beside a running server"
    );
    drop(j);
    assert!(!repair_unlocked(dir.path(), false).needs_repair());
}

#[test]
fn no_intact_snapshot_where_the_journal_no_longer_reaches_back_stops_the_start() {
    let dir = TempDir::new("damage-snapshots");
    let mut model = Model::default();
    {
        let (j, _) = Journal::open(dir.path()).unwrap();
        let h = j.handle();
        for part in 0..4u64 {
            put(&h, &commits(part * 20..part * 20 + 20), 5, &mut model);
            let m = model.clone();
            h.snapshot(|emit| m.0.values().for_each(emit)).unwrap();
        }
        put(&h, &commits(200..210), 5, &mut model);
    }
    let snaps = files(dir.path(), ".snap");
    assert_eq!(snaps.len(), 2);
    assert!(
        !dir.path().join("journal-0000000000000001.seg").exists(),
        "compaction removed the first segments"
    );
    for s in &snaps {
        let mut b = std::fs::read(s).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(s, &b).unwrap();
    }
    let err = Journal::open(dir.path()).expect_err("partial state is refused");
    let StoreError::Damaged { damage, .. } = &err else {
        panic!("expected Damaged, got {err}");
    };
    assert!(damage.offset.is_none());
    assert!(damage.reason.contains("no snapshot is intact"), "{err}");

    let done = repair_unlocked(dir.path(), true);
    assert_eq!(done.corrupt_snapshots.len(), 2);
    let (_j, recovered) = Journal::open(dir.path()).expect("starts after the repair");
    let got = model_of(&recovered);
    assert!(commits(200..210)
        .iter()
        .all(|r| got.0.values().any(|g| g == r)));
    assert!(
        got.0.len() < model.0.len(),
        "what only the snapshots held is gone"
    );
    assert_eq!(files(dir.path(), ".corrupt").len(), 2, "kept for a human");
}

#[test]
fn a_missing_segment_stops_the_start() {
    let dir = TempDir::new("damage-missing");
    let mut model = Model::default();
    for run in 0..3u64 {
        let (j, _) = Journal::open(dir.path()).unwrap();
        put(
            &j.handle(),
            &commits(run * 10..run * 10 + 10),
            5,
            &mut model,
        );
    }
    let middle = dir.path().join("journal-0000000000000002.seg");
    std::fs::remove_file(&middle).unwrap();
    let err = Journal::open(dir.path()).expect_err("a gap is refused");
    let StoreError::Damaged { damage, .. } = &err else {
        panic!("expected Damaged, got {err}");
    };
    assert_eq!(damage.path, middle);
    assert!(damage.reason.contains("is missing"), "{err}");
}

/// Something done to a file's bytes.
type Damager = Box<dyn Fn(&mut Vec<u8>)>;

/// A power loss can persist the pages of the final batch in any order: a
/// hole of zeros inside it, or a file extended with zeros, is still a torn
/// final write (never acknowledged) and is cut.
#[test]
fn holes_in_the_final_batch_are_a_torn_write() {
    let src = TempDir::new("hole-src");
    let mut model = Model::default();
    let mut all = Model::default();
    {
        let (j, _) = Journal::open(src.path()).unwrap();
        let h = j.handle();
        put(&h, &commits(0..20), 5, &mut model);
        commits(0..20).iter().for_each(|r| all.apply(r));
        // The final batch: many records in one group commit.
        let hold = h.hold_writer();
        let mut last = 0;
        for r in commits(1000..1200) {
            all.apply(&r);
            let mut ch = LeaseChanges::default();
            ch.push(r);
            last = h.append(&ch).unwrap();
        }
        drop(hold);
        assert!(h.wait_durable(last, WAIT));
    }
    let seg = files(src.path(), ".seg").pop().unwrap();
    let full = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_owned();
    assert!(
        full.len() > 200 * 20,
        "the final batch is the bulk of the file"
    );
    // (what, damage, whether the final batch survives it)
    let cases: [(&str, Damager, bool); 3] = [
        (
            "hole in the middle",
            Box::new(|b: &mut Vec<u8>| {
                let n = b.len();
                b[n - 2500..n - 1500].fill(0)
            }),
            false,
        ),
        (
            "zeros at the end",
            Box::new(|b: &mut Vec<u8>| {
                let n = b.len();
                b[n - 700..].fill(0)
            }),
            false,
        ),
        // Preallocated but never written after the (intact) final batch.
        (
            "file extended with zeros",
            Box::new(|b: &mut Vec<u8>| b.extend_from_slice(&[0; 4096])),
            true,
        ),
    ];
    for (what, damage, kept) in &cases {
        let dir = TempDir::new("hole");
        let mut bytes = full.clone();
        damage(&mut bytes);
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        let (_j, recovered) =
            Journal::open(dir.path()).unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        let expect = if *kept { &all } else { &model };
        let got = model_of(&recovered);
        assert!(
            got == *expect,
            "{what}: {} bindings, not the {} expected",
            got.0.len(),
            expect.0.len()
        );
        assert!(recovered.report.bytes_dropped > 0, "{what}");
    }
}

#[test]
fn serve_refuses_a_damaged_store_and_repair_lists_then_commits() {
    let dir = TempDir::new("damage-cli");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    for run in 0..2u64 {
        let (j, _) = Journal::open(&state).unwrap();
        put(
            &j.handle(),
            &commits(run * 100..run * 100 + 12),
            3,
            &mut Model::default(),
        );
    }
    let first = files(&state, ".seg").remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 4;
    std::fs::write(&first, &bytes).unwrap();
    let config = dir.path().join("dhcp6d.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ninterfaces = [\"lo\"]\nio = \"socket\"\nstate_dir = \"{}\"\ncontrol_socket = \"{}\"\n[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\ninterface = \"lo\"\npools = [\"2001:db8:1:1::/80\"]\n",
            state.display(),
            dir.path().join("control.sock").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dhcp6d"))
            .args(args)
            .arg("-c")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&first.display().to_string())
            && err.contains(" at byte ")
            && err.contains("dhcp6d repair"),
        "{err}"
    );
    let (code, out, err) = run(&["repair"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("damaged: ") && out.contains("nothing was changed"),
        "{out}"
    );
    let (code, out, err) = run(&["repair", "--commit"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("repaired: snapshot"), "{out}");
    let (code, out, _) = run(&["repair"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to repair"), "{out}");
}
