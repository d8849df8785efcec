//! `leases` against a real binding table: the page cap, paging through a
//! table that changes between pages, and entries built with no lock held.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::*;
use crate::control::protocol::{StatsSnapshot, MAX_LEASE_LIMIT};
use crate::control::server::{respond, ServerView};
use crate::protocol::bindings::{ClientKey, PoolSpans};
use crate::protocol::Timestamp;

const NOW: u64 = 1_000;
const RUN: u32 = 0x5eed;

fn duid(i: u32) -> Vec<u8> {
    let mut d = b"\x00\x04client-".to_vec();
    d.extend_from_slice(&i.to_be_bytes());
    d
}

fn addr(i: u32) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_0001_0001_u128 << 64 | u128::from(i))
}

fn commit(b: &Bindings, i: u32, valid_until: u64) {
    let d = duid(i);
    let key = ClientKey {
        duid: &d,
        iaid: i,
        kind: LeaseKind::Na,
    };
    b.commit(
        &key,
        addr(i),
        128,
        0,
        valid_until,
        valid_until,
        Timestamp(NOW),
    )
    .unwrap();
}

fn release(b: &Bindings, i: u32) {
    let d = duid(i);
    let key = ClientKey {
        duid: &d,
        iaid: i,
        kind: LeaseKind::Na,
    };
    b.release(&key, addr(i), Timestamp(NOW)).unwrap();
}

fn table(n: u32) -> Arc<Bindings> {
    let b = Arc::new(Bindings::new(PoolSpans::opaque(1), [9; 16]));
    for i in 0..n {
        commit(&b, i, 5_000);
    }
    b
}

/// The control server's view of nothing but a binding table.
struct Table(Arc<Bindings>);

impl ServerView for Table {
    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String> {
        page(&self.0, filter, NOW, RUN)
    }
}

fn ask(view: &Table, request: serde_json::Value) -> serde_json::Value {
    respond(request.to_string().as_bytes(), view, &Default::default())
}

fn listed(answer: &serde_json::Value) -> Vec<Ipv6Addr> {
    answer["leases"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["lease"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// A request for ten million on a table larger than a page gets one page of
/// `MAX_LEASE_LIMIT`, says so, and says where the next one starts.
#[test]
fn a_huge_limit_gets_one_capped_page_and_a_cursor() {
    let n = 25_000;
    let view = Table(table(n));
    let v = ask(
        &view,
        serde_json::json!({"command": "leases", "limit": 10_000_000}),
    );
    assert_eq!(listed(&v).len(), MAX_LEASE_LIMIT);
    assert_eq!(v["limit"], MAX_LEASE_LIMIT);
    assert_eq!(v["total"], n);
    assert_eq!(v["truncated"], true);
    assert!(v["next"].is_string(), "{v}");
    // The default page is the cap too.
    let v = ask(&view, serde_json::json!({"command": "leases"}));
    assert_eq!(listed(&v).len(), MAX_LEASE_LIMIT);
}

/// Walk every binding page by page while the table changes between pages:
/// each binding that existed throughout is listed exactly once, nothing is
/// listed twice, and the last page says there is no next.
#[test]
fn paging_lists_every_lasting_binding_exactly_once() {
    let n = 12_000;
    let b = table(n);
    let view = Table(b.clone());
    let mut seen: HashMap<Ipv6Addr, u32> = HashMap::new();
    let mut released = HashSet::new();
    let mut added = 0;
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut request = serde_json::json!({"command": "leases", "limit": 1_000});
        if let Some(c) = &after {
            request["after"] = c.clone().into();
        }
        let v = ask(&view, request);
        for a in listed(&v) {
            *seen.entry(a).or_default() += 1;
        }
        pages += 1;
        match v["next"].as_str() {
            None => {
                assert_eq!(v["truncated"], false, "{v}");
                break;
            }
            Some(c) => after = Some(c.to_string()),
        }
        // Churn between pages: new clients (some land in freed slots
        // behind the cursor, some ahead) and releases on both sides.
        for k in 0..150 {
            release(&b, (pages * 997 + k * 31) % n);
            released.insert((pages * 997 + k * 31) % n);
        }
        for _ in 0..100 {
            commit(&b, n + added, 5_000);
            added += 1;
        }
        assert!(pages < 100, "the walk does not end");
    }
    assert!(pages >= 12, "{pages} pages");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    for i in (0..n).filter(|i| !released.contains(i)) {
        assert_eq!(seen.get(&addr(i)), Some(&1), "{} missed", addr(i));
    }
}

#[test]
fn a_cursor_of_another_run_is_refused_and_limit_0_only_counts() {
    let view = Table(table(10));
    let v = ask(
        &view,
        serde_json::json!({"command": "leases", "after": "0000beef-3-0"}),
    );
    let e = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(e.contains("earlier run of the server"), "{e}");
    let v = ask(&view, serde_json::json!({"command": "leases", "limit": 0}));
    assert_eq!(
        (v["total"].as_u64(), v["truncated"].as_bool()),
        (Some(10), Some(true))
    );
    assert_eq!(listed(&v).len(), 0);
    assert!(v["next"].is_null(), "{v}");
}

/// While `leases` builds its entries, a worker renewing the very binding
/// being built (its client shard, then its address shard) gets through:
/// no shard lock is held. Built under the lock, as `leases` was through
/// `Bindings::for_each`, the renewal waits for the whole shard and this fails.
#[test]
fn entries_are_built_with_no_shard_lock_held() {
    let b = table(5_000);
    let filter = LeaseFilter {
        limit: MAX_LEASE_LIMIT,
        ..LeaseFilter::default()
    };
    let mut renewals = Vec::new();
    let mut blocked = None;
    let list = page_with(&b, &filter, NOW, RUN, |rec| {
        // A sample spread over the shards (the walk goes shard by shard).
        if blocked.is_none() && renewals.len() < 16 && rec.iaid % 7 == 0 {
            let (done, wait) = mpsc::channel();
            let (b, rec) = (b.clone(), *rec);
            renewals.push(std::thread::spawn(move || {
                let key = ClientKey {
                    duid: rec.duid(),
                    iaid: rec.iaid,
                    kind: rec.kind,
                };
                let r = b.commit(&key, rec.addr, 128, 0, 6_000, 6_000, Timestamp(NOW));
                let _ = done.send(());
                r
            }));
            if wait.recv_timeout(Duration::from_secs(5)).is_err() {
                blocked = Some(rec.addr);
            }
        }
        entry_of(rec)
    })
    .unwrap();
    for r in renewals {
        assert!(r.join().unwrap().is_ok());
    }
    assert_eq!(blocked, None, "a renewal waited behind `leases`");
    assert_eq!(list.leases.len(), 5_000);
}
