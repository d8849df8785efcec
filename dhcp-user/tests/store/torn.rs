//! Torn writes: a crash can leave any prefix of the last batch on disk.
//!
//! Issue 5: "a torn tail is truncated at the first bad record and logged with
//! the count of bytes dropped". We cut the journal at every byte offset inside
//! its last records and recover: never a panic, every record before the cut
//! intact, nothing after it invented.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{key, model_of, Model, TempDir, T0};
use dhcp6d::protocol::{LeaseChanges, LeaseKind, LeaseOp, LeaseRecord};
use dhcp6d::store::{Durability, Journal, StoreError};

/// Records that exercise the encoding: shared DUIDs (dictionary references),
/// same-/64 addresses, prefixes, all four ops.
fn records(n: u64) -> Vec<LeaseRecord> {
    (0..n)
        .map(|i| {
            let client = i / 3;
            let duid = [
                0u8,
                1,
                0,
                1,
                9,
                9,
                9,
                9,
                0xa,
                0xb,
                0xc,
                (client >> 8) as u8,
                client as u8,
            ];
            let (kind, addr, plen) = if i % 4 == 3 {
                (
                    LeaseKind::Pd,
                    0x2001_0db8_0200_0000_0000_0000_0000_0000u128 | (u128::from(i) << 72),
                    56,
                )
            } else {
                (
                    LeaseKind::Na,
                    0x2001_0db8_0001_0001_0000_0000_0000_0000u128 | u128::from(i * 104_729),
                    128,
                )
            };
            let op = match i % 11 {
                5 => LeaseOp::Decline,
                _ => LeaseOp::Commit,
            };
            LeaseRecord::new(
                op,
                kind,
                Ipv6Addr::from(addr),
                plen,
                (i % 3) as u32,
                &duid,
                T0 + i,
                T0 + 2 * i + 50,
            )
            .unwrap()
        })
        .collect()
}

/// Write `recs` one append each (so each is its own frame), return the segment file.
fn journal_with(dir: &Path, recs: &[LeaseRecord]) -> PathBuf {
    let (j, _) = Journal::open(dir).unwrap();
    let h = j.handle();
    let mut ch = LeaseChanges::default();
    for r in recs {
        ch.clear();
        ch.push(*r);
        let seq = h.append(&ch).unwrap();
        assert!(h.wait_durable(seq, Duration::from_secs(10)));
    }
    drop(j);
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    // Each open starts one segment; we opened once.
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

fn prefix_model(recs: &[LeaseRecord], k: usize) -> Model {
    let mut m = Model::default();
    recs[..k].iter().for_each(|r| m.apply(r));
    m
}

#[test]
fn journal_cut_at_every_byte_of_its_last_records_recovers_the_prefix() {
    let recs = records(40);
    let src = TempDir::new("torn-src");
    let seg = journal_with(src.path(), &recs);
    let full = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_owned();

    // About the last dozen records (each well under 64 bytes).
    let from = full.len().saturating_sub(400);
    let mut prev_k = 0;
    let mut boundary = 0;
    let mut increments = 0;
    for cut in from..=full.len() {
        let dir = TempDir::new("torn-cut");
        std::fs::write(dir.path().join(&name), &full[..cut]).unwrap();
        let (j, recovered) = Journal::open(dir.path()).unwrap();
        drop(j);
        let got = model_of(&recovered);
        let k = recovered.report.journal_records as usize;
        assert!(
            k >= prev_k,
            "cut {cut}: fewer records ({k}) than a shorter cut ({prev_k})"
        );
        assert_eq!(
            got,
            prefix_model(&recs, k),
            "cut {cut}: not exactly the first {k} records"
        );
        if cut == from {
            boundary = cut - recovered.report.bytes_dropped as usize;
        } else if k > prev_k {
            boundary = cut;
            increments += 1;
        }
        assert_eq!(
            recovered.report.bytes_dropped,
            (cut - boundary) as u64,
            "cut {cut}: dropped count must be the bytes after the last whole record"
        );
        assert_eq!(
            std::fs::metadata(dir.path().join(&name)).unwrap().len(),
            boundary as u64,
            "cut {cut}: torn tail truncated on disk"
        );
        prev_k = k;
    }
    assert_eq!(prev_k, recs.len(), "the uncut journal recovers everything");
    assert!(
        increments >= 10,
        "the cuts crossed {increments} record boundaries"
    );
}

#[test]
fn after_a_torn_tail_new_records_append_and_survive() {
    let recs = records(20);
    let dir = TempDir::new("torn-then-append");
    let seg = journal_with(dir.path(), &recs);
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let more = records(30);
    {
        let (j, recovered) = Journal::open(dir.path()).unwrap();
        assert_eq!(recovered.report.journal_records, 19);
        assert!(recovered.report.bytes_dropped > 0);
        let h = j.handle();
        let mut ch = LeaseChanges::default();
        for r in &more[20..] {
            ch.clear();
            ch.push(*r);
            let s = h.append(&ch).unwrap();
            assert!(h.wait_durable(s, Duration::from_secs(10)));
        }
    }
    let (_j, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(
        recovered.report.bytes_dropped, 0,
        "the torn bytes were cut off once"
    );
    let mut expect = prefix_model(&recs, 19);
    more[20..].iter().for_each(|r| expect.apply(r));
    assert_eq!(model_of(&recovered), expect);
}

/// Issue 13 item 10: only a torn final batch may be cut. A flipped bit in
/// the last batch looks like a torn write and is cut like one (never a wrong
/// record); one in any earlier batch stops the start with an error that
/// names the file and the offset, keeps a copy, and changes nothing else.
#[test]
fn a_flipped_bit_is_cut_only_in_the_final_batch_and_refused_before_it() {
    let recs = records(24);
    let src = TempDir::new("flip-src");
    let seg = journal_with(src.path(), &recs);
    let full = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_owned();
    let originals: Vec<_> = recs.iter().map(key).collect();
    let (mut cut, mut refused) = (0, 0);
    for at in full.len() - 200..full.len() {
        let dir = TempDir::new("flip");
        let mut bytes = full.clone();
        bytes[at] ^= 1 << (at % 8);
        let path = dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        match Journal::open(dir.path()) {
            Ok((_j, recovered)) => {
                let k = recovered.report.journal_records as usize;
                assert_eq!(k, recs.len() - 1, "byte {at}: only the final batch is cut");
                assert_eq!(model_of(&recovered), prefix_model(&recs, k), "byte {at}");
                assert!(recovered.iter().all(|r| originals.contains(&key(&r))));
                cut += 1;
            }
            Err(StoreError::Damaged { damage, copy }) => {
                assert_eq!(damage.path, path, "byte {at}");
                let offset = damage.offset.expect("an offset") as usize;
                assert!(
                    offset <= at && at - offset < 64,
                    "byte {at}: damage reported at {offset}"
                );
                assert!(
                    damage.records > 0,
                    "byte {at}: intact records follow the damage"
                );
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    bytes,
                    "byte {at}: the segment is untouched"
                );
                let copy = copy.expect("a copy is kept");
                assert_eq!(std::fs::read(&copy).unwrap(), bytes, "byte {at}: the copy");
                let msg = StoreError::Damaged {
                    damage,
                    copy: Some(copy),
                }
                .to_string();
                assert!(
                    msg.contains(&format!("at byte {offset}")) && msg.contains("dhcp6d repair"),
                    "{msg}"
                );
                refused += 1;
            }
            Err(e) => panic!("byte {at}: {e}"),
        }
    }
    assert!(cut > 0 && refused > 0, "cut {cut}, refused {refused}");
}
