//! `[limits]` caps on what clients can create (issue 13 item 1):
//! `bindings_per_client` and `max_bindings`. An IA past a cap is answered,
//! inside the IA, with NoAddrsAvail / NoPrefixAvail (the message is not
//! dropped), and counted in `Handled::refused` under the key that refused.
use crate::core_harness::*;

use dhcp6d::protocol::{Refusal, Server};
use dhcp6d::wire::{status, MessageType};

fn config_with(limits: &str) -> String {
    format!(
        r#"
[server]
interfaces = ["eth0"]
rebind_creates_bindings = true
[lifetimes]
preferred = 3000
valid = 4000
[limits]
{limits}
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/80"]
pd_pools = [{{ prefix = "2001:db8:100::/40", delegated_length = 56 }}]
"#
    )
}

/// A Request from client `n` with IA_NAs `iaids` and one IA_PD (IAID 0).
fn request_many(s: &Server, n: u32, iaids: std::ops::Range<u32>) -> Vec<u8> {
    let duid = s.server_duid().to_vec();
    build(MessageType::Request, 0x3000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(&duid)?;
        iaids.clone().try_for_each(|iaid| ia_na(e, iaid, &[]))?;
        ia_pd(e, 0, &[])
    })
}

/// (IAs given a lease, IAs answered with `code`) of a reply.
fn tally(out: &Outcome, code: u16) -> (usize, usize) {
    let m = out.message();
    let mut given = 0;
    let mut refused = 0;
    for (has, st) in m
        .options
        .ia_nas()
        .map(|ia| (ia.addrs().any(|a| a.valid > 0), ia.options.status_code()))
        .chain(
            m.options
                .ia_pds()
                .map(|ia| (ia.prefixes().any(|p| p.valid > 0), ia.options.status_code())),
        )
    {
        if has {
            given += 1;
        } else if st.map(|c| c.code) == Some(code)
            || st.map(|c| c.code) == Some(status::NO_PREFIX_AVAIL)
        {
            refused += 1;
        }
    }
    (given, refused)
}

#[test]
fn a_client_gets_at_most_bindings_per_client_and_the_rest_is_refused_inside_the_ia() {
    let s = server(&config_with("bindings_per_client = 3"));
    // Five IAs (four IA_NA, one IA_PD): three are granted in order, the
    // others answered NoAddrsAvail / NoPrefixAvail, and the Reply still goes.
    let out = direct(&s, &request_many(&s, 1, 1..5), T0);
    assert_eq!(tally(&out, status::NO_ADDRS_AVAIL), (3, 2));
    assert_eq!(out.handled.refused.get(Refusal::BindingsPerClient), 2);
    assert_eq!(out.handled.refused.get(Refusal::MaxBindings), 0);
    assert_eq!(s.bindings().held_by(&client_duid(1)), 3);
    assert_eq!(out.changes.len(), 3, "only granted IAs reach the journal");
    // The same Request again: the three bindings are extended, the others
    // still refused; nothing new is created.
    let again = direct(&s, &request_many(&s, 1, 1..5), T0 + 10);
    assert_eq!(tally(&again, status::NO_ADDRS_AVAIL), (3, 2));
    assert_eq!(s.bindings().held_by(&client_duid(1)), 3);
    // Another client is not affected.
    let other = direct(&s, &request_many(&s, 2, 1..3), T0);
    assert_eq!(tally(&other, status::NO_ADDRS_AVAIL), (3, 0));
    assert!(other.handled.refused.is_empty());
}

#[test]
fn a_solicit_offers_no_more_than_a_request_would_grant() {
    let s = server(&config_with("bindings_per_client = 2"));
    let msg = build(MessageType::Solicit, 0x99, |e| {
        e.client_id(&client_duid(7))?;
        e.elapsed_time(0)?;
        (1..5).try_for_each(|iaid| ia_na(e, iaid, &[]))
    });
    let out = direct(&s, &msg, T0);
    assert_eq!(tally(&out, status::NO_ADDRS_AVAIL), (2, 2));
    assert_eq!(out.handled.refused.get(Refusal::BindingsPerClient), 2);
    assert_eq!(
        s.bindings().held_by(&client_duid(7)),
        0,
        "an Advertise commits nothing"
    );
}

#[test]
fn random_duid_rebinds_stop_at_max_bindings() {
    // The flood of issue 13: Rebinds with random DUIDs create bindings
    // (rebind_creates_bindings) without knowing our DUID.
    let s = server(&config_with("max_bindings = 50"));
    let mut granted = 0;
    let mut refused = 0;
    for n in 0..80u32 {
        let msg = build(MessageType::Rebind, 0x5000 + n, |e| {
            e.client_id(&client_duid(10_000 + n))?;
            ia_na(e, 1, &[])
        });
        let out = direct(&s, &msg, T0);
        match ia_status(&out.message(), false) {
            Some(status::NO_ADDRS_AVAIL) => {
                assert_eq!(out.handled.refused.get(Refusal::MaxBindings), 1);
                refused += 1
            }
            _ => {
                assert!(first_addr(&out.message()).is_some_and(|(_, _, v)| v > 0));
                granted += 1
            }
        }
    }
    assert_eq!((granted, refused), (50, 30));
    assert_eq!(s.lease_counts(), (50, 0));
    // A client that already holds a binding keeps renewing it at the cap.
    let first = client_duid(10_000);
    let renew = build(MessageType::Renew, 0x6000, |e| {
        e.client_id(&first)?;
        e.server_id(s.server_duid())?;
        ia_na(e, 1, &[])
    });
    let out = direct(&s, &renew, T0 + 100);
    assert!(first_addr(&out.message()).is_some_and(|(_, _, v)| v > 0));
    assert!(out.handled.refused.is_empty());
    // Once bindings end and are swept, new clients get addresses again.
    let mut expired = Vec::new();
    s.sweep(dhcp6d::protocol::Timestamp(T0 + 4000), &mut expired);
    assert_eq!(expired.len(), 49, "all but the renewed one");
    let late = build(MessageType::Rebind, 0x7000, |e| {
        e.client_id(&client_duid(99_999))?;
        ia_na(e, 1, &[])
    });
    let out = direct(&s, &late, T0 + 4000);
    assert!(first_addr(&out.message()).is_some_and(|(_, _, v)| v > 0));
}

#[test]
fn a_client_whose_bindings_expired_gets_them_back_at_the_cap() {
    // Its slots still count (not yet swept), but a commit reuses them.
    let s = server(&config_with("bindings_per_client = 2"));
    let out = direct(&s, &request_many(&s, 3, 1..2), T0);
    assert_eq!(tally(&out, status::NO_ADDRS_AVAIL), (2, 0));
    let back = direct(&s, &request_many(&s, 3, 1..2), T0 + 5000);
    assert_eq!(tally(&back, status::NO_ADDRS_AVAIL), (2, 0));
    assert!(back.handled.refused.is_empty());
    assert_eq!(s.bindings().held_by(&client_duid(3)), 2);
}
