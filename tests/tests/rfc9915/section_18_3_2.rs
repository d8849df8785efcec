//! RFC 9915 §18.3.2 (Receipt of Request), §18.3.4 (Renew), §18.3.5 (Rebind),
//! driven by a simulated clock.
use crate::core_harness::*;

use dhcp6d::protocol::LeaseOp;
use dhcp6d::wire::{status, MessageType};
use std::net::Ipv6Addr;

fn renew(n: u32, addr: Ipv6Addr, t: MessageType, sid: Option<&[u8]>) -> Vec<u8> {
    build(t, 0x3000 + n, |e| {
        e.client_id(&client_duid(n))?;
        if let Some(s) = sid {
            e.server_id(s)?;
        }
        ia_na(e, 1, &[addr])
    })
}

#[test]
fn request_commits_what_was_advertised() {
    // §18.3.2: the server "creates the bindings for that client according to the server's
    // policy and configuration information and records the IAs and other information".
    let s = server(BASE);
    let adv = direct(&s, &solicit(1), T0);
    let (offered, ..) = first_addr(&adv.message()).unwrap();
    let out = direct(&s, &request(1, SERVER_DUID, Some(offered)), T0);
    let m = out.message();
    assert_eq!(m.msg_type, MessageType::Reply);
    assert_eq!(first_addr(&m).unwrap(), (offered, 3000, 4000));
    assert!(out.handled.result.unwrap().needs_durable);
    let recs: Vec<_> = out.changes.iter().copied().collect();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].op, recs[0].addr, recs[0].iaid),
        (LeaseOp::Commit, offered, 1)
    );
    assert_eq!(
        (recs[0].preferred_until, recs[0].valid_until),
        (T0 + 3000, T0 + 4000)
    );
    assert_eq!(recs[0].duid(), client_duid(1).as_slice());
    assert_eq!(s.lease_counts(), (1, 0));
    // A retransmitted Request gets the same binding, not a second one.
    let again = direct(&s, &request(1, SERVER_DUID, None), T0 + 1);
    assert_eq!(first_addr(&again.message()).unwrap().0, offered);
    assert_eq!(s.lease_counts(), (1, 0));
}

#[test]
fn client_address_hints_are_not_honoured() {
    // README: hints are ignored so that identical-prefix servers agree.
    let s = server(BASE);
    let hint: Ipv6Addr = "2001:db8:1:1::1234".parse().unwrap();
    let out = direct(&s, &request(2, SERVER_DUID, Some(hint)), T0);
    let (got, ..) = first_addr(&out.message()).unwrap();
    assert_ne!(got, hint);
    assert_eq!(
        got,
        first_addr(&direct(&server(BASE), &solicit(2), T0).message())
            .unwrap()
            .0
    );
}

#[test]
fn renew_extends_the_lifetimes_on_the_simulated_clock() {
    // §18.3.4: the server "updates the lifetimes and T1/T2 times for the IA".
    let s = server(BASE);
    let a = acquire(&s, 3, T0);
    let later = T0 + 1000;
    let out = direct(
        &s,
        &renew(3, a, MessageType::Renew, Some(SERVER_DUID)),
        later,
    );
    assert_eq!(first_addr(&out.message()).unwrap(), (a, 3000, 4000));
    let rec = out.changes.iter().next().unwrap();
    assert_eq!((rec.op, rec.valid_until), (LeaseOp::Commit, later + 4000));
    // Without the Renew the binding would have expired at T0 + 4000.
    let mut expired = Vec::new();
    s.sweep(dhcp6d::protocol::Timestamp(T0 + 4000), &mut expired);
    assert!(expired.is_empty());
    s.sweep(dhcp6d::protocol::Timestamp(later + 4000), &mut expired);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].op, LeaseOp::Expire);
}

#[test]
fn renew_for_an_unknown_ia_gets_no_binding() {
    // §18.3.4: "If the server cannot find a client entry for the IA, the server returns the IA
    // containing no leases with a Status Code option set to NoBinding".
    let s = server(BASE);
    let foreign: Ipv6Addr = "2001:db8:1:1:8000::77".parse().unwrap();
    let out = direct(
        &s,
        &renew(4, foreign, MessageType::Renew, Some(SERVER_DUID)),
        T0,
    );
    let m = out.message();
    assert_eq!(ia_status(&m, false), Some(status::NO_BINDING));
    assert!(first_addr(&m).is_none());
    assert!(out.changes.is_empty());
}

#[test]
fn rebind_extends_a_known_binding() {
    // §18.3.5: "If the server finds the addresses in the IA for the client ... the server
    // sends back the IA to the client with new lifetimes".
    let s = server(BASE);
    let a = acquire(&s, 5, T0);
    let out = direct(&s, &renew(5, a, MessageType::Rebind, None), T0 + 2000);
    assert_eq!(first_addr(&out.message()).unwrap(), (a, 3000, 4000));
    assert_eq!(out.changes.iter().next().unwrap().valid_until, T0 + 6000);
}

#[test]
fn expired_binding_is_reusable_and_renew_after_expiry_is_no_binding() {
    // §18.3.4 with lazy expiry: after the valid lifetime the server no longer has the binding.
    let tiny = BASE.replace(
        r#"pools = ["2001:db8:1:1::/65"]"#,
        r#"pools = ["2001:db8:1:1::10-2001:db8:1:1::10"]"#,
    );
    let s = server(&tiny);
    let a = acquire(&s, 6, T0);
    assert_eq!(
        ia_status(&direct(&s, &solicit(7), T0 + 3999).message(), false),
        Some(status::NO_ADDRS_AVAIL)
    );
    let b = acquire(&s, 7, T0 + 4000);
    assert_eq!(
        a, b,
        "the only address is reused once the first lease expired"
    );
    let out = direct(
        &s,
        &renew(6, a, MessageType::Renew, Some(SERVER_DUID)),
        T0 + 4001,
    );
    assert_eq!(ia_status(&out.message(), false), Some(status::NO_BINDING));
}

#[test]
fn renew_listing_one_address_many_times_records_every_ia_it_acknowledges() {
    // §18.3.4: the server "updates the lifetimes ... for the IA" and the Reply carries them;
    // a lease the Reply acknowledges must be on disk first, so every IA the Reply extends has
    // its Commit record. A client listing its address 40 times in one IA (more than a
    // message's record budget) must not crowd out the record of its other IA.
    let s = server(BASE);
    let req = build(MessageType::Request, 0x3500, |e| {
        e.client_id(&client_duid(35))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[])?;
        ia_na(e, 2, &[])
    });
    let bound = direct(&s, &req, T0);
    let addrs: Vec<(u32, Ipv6Addr)> = bound
        .message()
        .options
        .ia_nas()
        .map(|ia| (ia.iaid, ia.addrs().next().expect("bound").addr))
        .collect();
    assert_eq!(addrs.len(), 2);
    let (a1, a2) = (addrs[0].1, addrs[1].1);
    let later = T0 + 1000;
    let renew = build(MessageType::Renew, 0x3501, |e| {
        e.client_id(&client_duid(35))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[a1; 40])?;
        ia_na(e, 2, &[a2])
    });
    let out = direct(&s, &renew, later);
    let m = out.message();
    // Every listed copy of a1 is its own lease, extended: none goes back with lifetimes 0.
    let listed: Vec<(u32, Ipv6Addr, u32)> = m
        .options
        .ia_nas()
        .flat_map(|ia| ia.addrs().map(move |a| (ia.iaid, a.addr, a.valid)))
        .collect();
    assert_eq!(listed.len(), 41);
    assert!(
        listed.iter().all(|&(_, _, valid)| valid == 4000),
        "{listed:?}"
    );
    let recs: Vec<(LeaseOp, u32, Ipv6Addr, u64)> = out
        .changes
        .iter()
        .map(|r| (r.op, r.iaid, r.addr, r.valid_until))
        .collect();
    assert_eq!(
        recs,
        vec![
            (LeaseOp::Commit, 1, a1, later + 4000),
            (LeaseOp::Commit, 2, a2, later + 4000),
        ],
        "one record per extended IA, and none missing"
    );
}
