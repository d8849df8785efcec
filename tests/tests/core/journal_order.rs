//! The journal's order per binding equals the table's (issue 13 item 8).
//!
//! The sweep removes expired bindings under the shard locks and hands their
//! Expire records to the journal afterwards; a worker that gives the same
//! address to the same client in between writes its Commit first. RFC 9915
//! §18.3.2: the server "records the IP addresses ... assigned"; that record
//! must survive a restart whatever order the two records reach the file in.
use crate::core_harness::*;

use std::time::Duration;

use dhcp6d::protocol::{LeaseChanges, LeaseOp, LeaseRecord, Server, Timestamp};
use dhcp6d::store::{Durability, Journal, JournalHandle};
use dhcp6d_tests::tempdir::TempDir;

/// BASE's valid lifetime.
const VALID: u64 = 4000;

fn write(h: &JournalHandle, changes: &LeaseChanges) {
    let seq = h.append(changes).expect("journal healthy");
    assert!(
        h.wait_durable(seq, Duration::from_secs(10)),
        "seq {seq} durable"
    );
}

/// Solicit + Request for client `n` at `now`; the Request's records go to
/// the journal (a worker's append). Returns the committed address.
fn acquire_journalled(s: &Server, h: &JournalHandle, n: u32, now: u64) -> std::net::Ipv6Addr {
    let adv = direct(s, &solicit(n), now);
    let (offered, _, _) = first_addr(&adv.message()).expect("offered");
    let rep = direct(s, &request(n, s.server_duid(), Some(offered)), now);
    let (got, _, _) = first_addr(&rep.message()).expect("assigned");
    assert!(!rep.changes.is_empty(), "a Request commits");
    write(h, &rep.changes);
    got
}

#[test]
fn an_expire_written_after_the_clients_new_commit_does_not_erase_it() {
    let dir = TempDir::new("journal-order").expect("temp dir");
    let s = server(BASE);
    let later = T0 + VALID + 5;
    let (addr, expired) = {
        let (j, _) = Journal::open(dir.path()).expect("open");
        let h = j.handle();
        let first = acquire_journalled(&s, &h, 7, T0);
        // Housekeeping's sweep: the binding ended, the table drops it …
        let mut expired: Vec<LeaseRecord> = Vec::new();
        s.sweep(Timestamp(later), &mut expired);
        assert_eq!(expired.len(), 1, "the lease ended at T0 + VALID");
        assert_eq!(expired[0].op, LeaseOp::Expire);
        // … the client comes back before the sweep's records are appended
        // and gets the same address (identical-prefix: computed per client) …
        let again = acquire_journalled(&s, &h, 7, later);
        assert_eq!(again, first, "the same address for the same client");
        // … and only now does the Expire reach the journal.
        let mut batch = LeaseChanges::default();
        for r in &expired {
            assert!(batch.push(*r));
        }
        write(&h, &batch);
        (again, expired)
    };
    let (_j, mut recovered) = Journal::open(dir.path()).expect("reopen");
    recovered.retain_live(later);
    let held: Vec<LeaseRecord> = recovered.iter().collect();
    assert_eq!(
        held.len(),
        1,
        "the acknowledged lease survives the stale Expire {:?}: {held:?}",
        expired[0]
    );
    assert_eq!(held[0].addr, addr);
    assert_eq!(held[0].valid_until, later + VALID);
    // And the table built from it is the one the running server had.
    let restarted = server(BASE);
    for r in &held {
        restarted.apply(r);
    }
    let mut live = Vec::new();
    s.for_each_binding(|r| live.push(*r));
    let mut back = Vec::new();
    restarted.for_each_binding(|r| back.push(*r));
    assert_eq!(back, live);
}
