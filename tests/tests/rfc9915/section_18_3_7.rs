//! RFC 9915 §18.3.3 (Confirm), §18.3.6 (Information-request), §18.3.7 (Release),
//! §18.3.8 (Decline).
use crate::core_harness::*;

use dhcp6d::protocol::DropReason;
use dhcp6d::protocol::LeaseOp;
use dhcp6d::wire::{code, status, MessageType};
use std::net::Ipv6Addr;

fn with_addr(t: MessageType, n: u32, iaid: u32, a: Ipv6Addr) -> Vec<u8> {
    build(t, 0x4000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, iaid, &[a])
    })
}

#[test]
fn release_frees_the_address_and_replies_success() {
    // §18.3.7: the server "deletes the leases from the IAs and makes the leases available for
    // assignment to other clients" and replies with "a Status Code option with the value Success".
    let tiny = BASE.replace(
        r#"pools = ["2001:db8:1:1::/65"]"#,
        r#"pools = ["2001:db8:1:1::10-2001:db8:1:1::10"]"#,
    );
    let s = server(&tiny);
    let a = acquire(&s, 1, T0);
    let out = direct(&s, &with_addr(MessageType::Release, 1, 1, a), T0 + 10);
    let m = out.message();
    assert_eq!(m.options.status_code().unwrap().code, status::SUCCESS);
    assert_eq!(
        m.options.ia_nas().count(),
        0,
        "no IA for a released binding"
    );
    assert_eq!(out.changes.iter().next().unwrap().op, LeaseOp::Release);
    assert_eq!(
        acquire(&s, 2, T0 + 11),
        a,
        "the released address is available again"
    );
}

#[test]
fn release_of_an_unknown_ia_says_no_binding() {
    // §18.3.7: "For each IA in the Release message for which the server has no binding
    // information, the server adds an IA option ... and includes a Status Code option with the
    // value NoBinding in the IA option."
    let s = server(BASE);
    let out = direct(
        &s,
        &with_addr(
            MessageType::Release,
            3,
            9,
            "2001:db8:1:1::5".parse().unwrap(),
        ),
        T0,
    );
    let m = out.message();
    assert_eq!(m.options.status_code().unwrap().code, status::SUCCESS);
    let ia = m.options.ia_nas().next().unwrap();
    assert_eq!(ia.iaid, 9);
    assert_eq!(ia.options.status_code().unwrap().code, status::NO_BINDING);
    assert!(out.changes.is_empty());
}

#[test]
fn declined_address_is_quarantined_for_the_valid_lifetime() {
    // §18.3.8: the server "SHOULD mark the addresses declined by the client so that those
    // addresses are not assigned to other clients".
    let tiny = BASE.replace(
        r#"pools = ["2001:db8:1:1::/65"]"#,
        r#"pools = ["2001:db8:1:1::10-2001:db8:1:1::11"]"#,
    );
    let s = server(&tiny);
    let a = acquire(&s, 1, T0);
    let out = direct(&s, &with_addr(MessageType::Decline, 1, 1, a), T0 + 5);
    assert_eq!(
        out.message().options.status_code().unwrap().code,
        status::SUCCESS
    );
    let rec = out.changes.iter().next().unwrap();
    assert_eq!(
        (rec.op, rec.addr, rec.valid_until),
        (LeaseOp::Decline, a, T0 + 5 + 4000)
    );
    // The client gets the other address; nobody gets the declined one before the quarantine ends.
    let b = acquire(&s, 1, T0 + 6);
    assert_ne!(a, b);
    assert_eq!(
        ia_status(&direct(&s, &solicit(2), T0 + 4004).message(), false),
        Some(status::NO_ADDRS_AVAIL)
    );
    let mut swept = Vec::new();
    s.sweep(dhcp6d::protocol::Timestamp(T0 + 4005), &mut swept);
    assert_eq!(swept.len(), 1);
    assert_eq!(acquire(&s, 2, T0 + 4005), a);
}

#[test]
fn confirm_success_notonlink_and_silence() {
    // §18.3.3: Success when all addresses are appropriate for the link, NotOnLink otherwise,
    // and "MUST NOT send a reply" when there were no addresses in any IA.
    let s = server(BASE);
    let confirm = |addrs: &[Ipv6Addr]| {
        build(MessageType::Confirm, 5, |e| {
            e.client_id(&client_duid(5))?;
            ia_na(e, 1, addrs)
        })
    };
    let on: Ipv6Addr = "2001:db8:1:1:8000::1".parse().unwrap();
    let off: Ipv6Addr = "2001:db8:9::1".parse().unwrap();
    let ok = direct(&s, &confirm(&[on]), T0);
    assert_eq!(
        ok.message().options.status_code().unwrap().code,
        status::SUCCESS
    );
    assert_eq!(
        ok.message().options.server_id().unwrap().as_bytes(),
        SERVER_DUID
    );
    let bad = direct(&s, &confirm(&[on, off]), T0);
    assert_eq!(
        bad.message().options.status_code().unwrap().code,
        status::NOT_ON_LINK
    );
    let none = direct(&s, &confirm(&[]), T0);
    assert_eq!(none.handled.result, Err(DropReason::NothingToConfirm));
}

#[test]
fn information_request_gets_options_and_refresh_time() {
    // §18.3.6: the reply carries the requested options; §21.23 Information Refresh Time;
    // §21.25: INF_MAX_RT when requested.
    let s = server(BASE);
    let msg = build(MessageType::InformationRequest, 8, |e| {
        e.client_id(&client_duid(8))?;
        e.oro(&[code::DNS_SERVERS, code::INF_MAX_RT])
    });
    let out = direct(&s, &msg, T0);
    let m = out.message();
    assert_eq!(m.msg_type, MessageType::Reply);
    assert_eq!(m.options.information_refresh_time(), Some(86_400));
    assert_eq!(m.options.inf_max_rt(), Some(3600));
    assert!(m.options.dns_servers().is_some());
    assert!(m.options.domain_list().is_none(), "not requested");
    assert!(out.changes.is_empty());
}
