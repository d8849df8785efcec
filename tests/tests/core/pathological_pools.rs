//! Pathological pools and crafted DUIDs (issue 13 item 6).
//!
//! The allocation work one message may cause is bounded.
//! A nearly full small pool is scanned linearly to find its last free slots
//! (`LINEAR_SCAN_LIMIT`); without a bound per message, a Solicit with 16
//! IAs made the server scan the whole pool 16 times (~1 M probes). Now all
//! IAs of a message share `MESSAGE_PROBE_BUDGET`: one full scan plus the
//! hashed probes of 16 IAs. An IA left when it is spent is still answered,
//! with NoAddrsAvail (RFC 9915 §18.3.1: "the server MUST include ... the
//! NoAddrsAvail status code" for an IA it assigns nothing to).
use crate::core_harness::*;

use std::net::Ipv6Addr;

use dhcp6d::protocol::bindings::ClientKey;
use dhcp6d::protocol::{LeaseKind, LeaseOp, LeaseRecord, Server};
use dhcp6d::wire::{status, MessageType};

/// One /112 pool: 65,536 slots, small enough for the linear scan.
const SMALL: &str = r#"
[server]
interfaces = ["eth0"]
[lifetimes]
preferred = 3000
valid = 4000
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/112"]
"#;

const BASE_ADDR: u128 = 0x2001_0db8_0001_0001_0000_0000_0000_0000;

/// Every slot of the pool bound to someone else, but `free`.
fn all_taken_but(s: &Server, free: u128) {
    for low in 1..=0xffffu128 {
        let addr = BASE_ADDR | low;
        if addr == free {
            continue;
        }
        let duid = [0u8, 4, (low >> 8) as u8, low as u8, 9, 9, 9, 9];
        let r = LeaseRecord::new(
            LeaseOp::Commit,
            LeaseKind::Na,
            Ipv6Addr::from(addr),
            128,
            1,
            &duid,
            T0 + 3000,
            T0 + 4000,
        )
        .unwrap();
        s.apply(&r);
    }
}

#[test]
fn sixteen_ias_on_a_nearly_full_small_pool_share_one_budget_of_work() {
    let s = server(SMALL);
    let free = BASE_ADDR | 0x8123;
    all_taken_but(&s, free);
    let msg = build(MessageType::Solicit, 0x77, |e| {
        e.client_id(&client_duid(5))?;
        e.elapsed_time(0)?;
        (0..16).try_for_each(|iaid| ia_na(e, iaid, &[]))
    });
    let out = direct(&s, &msg, T0);
    let adv = out.message();
    let ias: Vec<_> = adv.options.ia_nas().collect();
    assert_eq!(ias.len(), 16, "every IA is answered");
    let offered = ias
        .iter()
        .filter(|ia| ia.addrs().any(|a| u128::from(a.addr) == free))
        .count();
    let refused = ias
        .iter()
        .filter(|ia| ia.options.status_code().map(|c| c.code) == Some(status::NO_ADDRS_AVAIL))
        .count();
    assert_eq!(offered + refused, 16);
    // Each IA's scan starts at its own slot, so each needs most of a scan
    // to reach the one free slot: the budget carries one or two of them.
    assert!(
        (1..=2).contains(&offered),
        "{offered} IAs found the free slot: the scans were not bounded per message"
    );
}

/// The binding index is keyed by a key of the process's own, not by the
/// allocation key (which identical-prefix servers share and `plan` may
/// derive from public inputs): crafted DUIDs cannot be aimed at one of its
/// probe chains. The allocation function is unchanged by it: servers with
/// different index keys still give a client the same address.
#[test]
fn the_index_is_keyed_apart_from_the_allocation_function() {
    let settings = config(BASE).settings();
    let ifs = [("eth0".to_string(), ETH0)];
    let a = Server::with_index_key(&settings, SERVER_DUID.to_vec(), &ifs, [1; 16]).unwrap();
    let b = Server::with_index_key(&settings, SERVER_DUID.to_vec(), &ifs, [2; 16]).unwrap();
    let public = server(BASE);
    let (mut same_ab, mut same_public) = (0, 0);
    for n in 0..64u32 {
        let duid = client_duid(n);
        let key = ClientKey {
            duid: &duid,
            iaid: 1,
            kind: LeaseKind::Na,
        };
        let (ha, hb) = (
            a.bindings().client_hash(&key),
            b.bindings().client_hash(&key),
        );
        same_ab += usize::from(ha == hb);
        same_public += usize::from(ha == public.bindings().client_hash(&key));
        assert_eq!(
            acquire(&a, n, T0),
            acquire(&b, n, T0),
            "client {n}: same address"
        );
    }
    assert_eq!(
        (same_ab, same_public),
        (0, 0),
        "the index hashes differ with the key"
    );
}
