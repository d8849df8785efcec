//! RFC 9915 §18.3.1 (Receipt of Solicit) and §18.3.9 (Creation of Advertise).
use crate::core_harness::*;

use dhcp6d::wire::{code, status, MessageType};

#[test]
fn advertise_carries_server_id_client_id_preference_and_an_ia_na() {
    // §18.3: "These Advertise and Reply messages MUST always contain the Server Identifier
    // option ... and the Client Identifier option ... from the client message".
    let s = server(BASE);
    let out = direct(&s, &solicit(7), T0);
    let m = out.message();
    assert_eq!(m.msg_type, MessageType::Advertise);
    assert_eq!(out.handled.result.unwrap().sent, MessageType::Advertise);
    assert_eq!(out.handled.result.unwrap().port, 546);
    assert_eq!(
        m.xid.get(),
        0x1000 + 7,
        "transaction-id copied from the Solicit"
    );
    assert_eq!(m.options.server_id().unwrap().as_bytes(), SERVER_DUID);
    assert_eq!(
        m.options.client_id().unwrap().as_bytes(),
        client_duid(7).as_slice()
    );
    assert_eq!(m.options.preference(), Some(200));
    let ia = m.options.ia_nas().next().unwrap();
    assert_eq!((ia.iaid, ia.t1, ia.t2), (1, 1000, 2000));
    let (addr, pref, valid) = first_addr(&m).unwrap();
    assert_eq!((pref, valid), (3000, 4000));
    let a = u128::from(addr);
    let first = u128::from("2001:db8:1:1::".parse::<std::net::Ipv6Addr>().unwrap());
    assert!(
        a >= first && a < first + (1 << 63),
        "{addr} is inside the /65 pool"
    );
}

#[test]
fn advertise_writes_no_state() {
    // Issue #4 / §18.3.1: the Advertise commits nothing; only Request does.
    let s = server(BASE);
    let out = direct(&s, &solicit(1), T0);
    assert!(out.changes.is_empty());
    assert!(!out.handled.result.unwrap().needs_durable);
    assert_eq!(s.lease_counts(), (0, 0));
    let again = direct(&s, &solicit(1), T0 + 5);
    assert_eq!(
        first_addr(&out.message()).unwrap().0,
        first_addr(&again.message()).unwrap().0
    );
}

#[test]
fn every_ia_na_and_ia_pd_is_answered_with_identical_t1_t2() {
    // §21.4 / issue: each IA handled independently; T1/T2 identical across the IAs of one reply.
    let s = server(BASE);
    let msg = build(MessageType::Solicit, 9, |e| {
        e.client_id(&client_duid(3))?;
        ia_na(e, 1, &[])?;
        ia_na(e, 2, &[])?;
        ia_pd(e, 5, &[])
    });
    let out = direct(&s, &msg, T0);
    let m = out.message();
    let nas: Vec<_> = m.options.ia_nas().collect();
    let pds: Vec<_> = m.options.ia_pds().collect();
    assert_eq!(nas.iter().map(|i| i.iaid).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(pds.len(), 1);
    let a1 = nas[0].addrs().next().unwrap().addr;
    let a2 = nas[1].addrs().next().unwrap().addr;
    assert_ne!(a1, a2, "two IAs of one client get two addresses");
    let p = pds[0].prefixes().next().unwrap();
    assert_eq!(p.prefix_len, 56);
    assert!(p.prefix.segments()[0] == 0x2001 && p.prefix.segments()[1] == 0x0db8);
    for (t1, t2) in nas
        .iter()
        .map(|i| (i.t1, i.t2))
        .chain(pds.iter().map(|i| (i.t1, i.t2)))
    {
        assert_eq!((t1, t2), (1000, 2000));
    }
}

#[test]
fn ia_ta_is_ignored_and_never_sent() {
    // RFC 9915 obsoletes IA_TA: a received one is ignored; the server never sends one.
    let s = server(BASE);
    let msg = build(MessageType::Solicit, 9, |e| {
        e.client_id(&client_duid(4))?;
        let m = e.begin_option(code::IA_TA)?;
        e.put_u32(77)?;
        e.end_option(m)?;
        ia_na(e, 1, &[])
    });
    let out = direct(&s, &msg, T0);
    let m = out.message();
    assert!(m.options.find(code::IA_TA).is_none());
    assert!(
        m.options.find(code::UNICAST).is_none(),
        "the Unicast option is never sent"
    );
    assert_eq!(m.options.ia_nas().count(), 1);
}

#[test]
fn requested_options_only_when_asked() {
    // §18.3: the server includes options "identified in the Option Request option that the
    // server has been configured to return"; §21.24: "The DHCP server MAY include the
    // SOL_MAX_RT option in any response it sends to a client that has included the
    // SOL_MAX_RT option code in an Option Request option" (we always do).
    let s = server(BASE);
    let plain = direct(&s, &solicit(5), T0);
    let m = plain.message();
    assert!(m.options.dns_servers().is_none());
    assert!(m.options.sol_max_rt().is_none());
    let asked = build(MessageType::Solicit, 2, |e| {
        e.client_id(&client_duid(5))?;
        e.oro(&[code::DNS_SERVERS, code::DOMAIN_LIST, code::SOL_MAX_RT])?;
        ia_na(e, 1, &[])
    });
    let out = direct(&s, &asked, T0);
    let m = out.message();
    let dns: Vec<_> = m.options.dns_servers().unwrap().iter().collect();
    assert_eq!(
        dns,
        vec!["2001:db8::53".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    let names: Vec<String> = m
        .options
        .domain_list()
        .unwrap()
        .iter()
        .map(|n| {
            n.labels()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    assert_eq!(names, vec!["example.net".to_string()]);
    assert_eq!(m.options.sol_max_rt(), Some(3600));
}

#[test]
fn rapid_commit_gives_a_committed_reply_when_enabled() {
    // §18.3.1: "If the client has included a Rapid Commit option and the server has been
    // configured to respond with committed address assignments ... the server responds with
    // a Reply message" including the Rapid Commit option.
    let on = server(&BASE.replace("preference = 200", "preference = 200\nrapid_commit = true"));
    let msg = build(MessageType::Solicit, 3, |e| {
        e.client_id(&client_duid(6))?;
        e.rapid_commit()?;
        ia_na(e, 1, &[])
    });
    let out = direct(&on, &msg, T0);
    let m = out.message();
    assert_eq!(m.msg_type, MessageType::Reply);
    assert!(m.options.rapid_commit());
    assert_eq!(out.changes.len(), 1);
    assert!(out.handled.result.unwrap().needs_durable);
    assert_eq!(on.lease_counts(), (1, 0));
    // Without the configuration the same Solicit gets an ordinary Advertise.
    let off = server(BASE);
    let out = direct(&off, &msg, T0);
    assert_eq!(out.message().msg_type, MessageType::Advertise);
    assert!(!out.message().options.rapid_commit());
    assert_eq!(off.lease_counts(), (0, 0));
}

#[test]
fn full_pool_answers_no_addrs_avail_inside_the_ia() {
    // §18.3.9: an IA the server cannot fill is included "with no addresses in that IA and a
    // Status Code option in the IA containing status code NoAddrsAvail".
    let tiny = BASE.replace(
        r#"pools = ["2001:db8:1:1::/65"]"#,
        r#"pools = ["2001:db8:1:1::10-2001:db8:1:1::13"]"#,
    );
    let s = server(&tiny);
    let mut got = std::collections::HashSet::new();
    for n in 0..4 {
        assert!(got.insert(acquire(&s, n, T0)));
    }
    let out = direct(&s, &solicit(99), T0);
    let m = out.message();
    assert_eq!(ia_status(&m, false), Some(status::NO_ADDRS_AVAIL));
    assert!(first_addr(&m).is_none());
    // The same for IA_PD when its pool is exhausted.
    let pd = BASE.replace("delegated_length = 56", "delegated_length = 41");
    let s = server(&pd);
    for n in 0..2 {
        let msg = build(MessageType::Request, n, |e| {
            e.client_id(&client_duid(n))?;
            e.server_id(SERVER_DUID)?;
            ia_pd(e, 1, &[])
        });
        assert!(direct(&s, &msg, T0)
            .message()
            .options
            .ia_pds()
            .next()
            .unwrap()
            .prefixes()
            .next()
            .is_some());
    }
    let msg = build(MessageType::Solicit, 3, |e| {
        e.client_id(&client_duid(3))?;
        ia_pd(e, 1, &[])
    });
    assert_eq!(
        ia_status(&direct(&s, &msg, T0).message(), true),
        Some(status::NO_PREFIX_AVAIL)
    );
}
