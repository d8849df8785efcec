//! RFC 6853 §6 deployment models, driven through two independent cores.
use crate::core_harness::*;

use dhcp6d::wire::{status, MessageType};
use std::net::Ipv6Addr;

const SPLIT_A: &str = r#"
[server]
interfaces = ["eth0"]
preference = 255
[redundancy]
model = "split-prefix"
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/65"]
"#;

fn split_b(creates: bool) -> String {
    SPLIT_A
        .replace(
            "preference = 255",
            &format!("preference = 0\nrebind_creates_bindings = {creates}"),
        )
        .replace("2001:db8:1:1::/65", "2001:db8:1:1:8000::/65")
}

fn rebind(n: u32, addr: Ipv6Addr) -> Vec<u8> {
    build(MessageType::Rebind, 0x5000 + n, |e| {
        e.client_id(&client_duid(n))?;
        ia_na(e, 1, &[addr])
    })
}

fn in_upper_half(a: Ipv6Addr) -> bool {
    a.segments()[4] & 0x8000 != 0
}

#[test]
fn identical_prefix_servers_agree_for_100000_clients() {
    // RFC 6853 §7: "both servers must follow the same address allocation procedure ... In case
    // of a failure of one server, the other server will assign the same address by following
    // the same algorithm and the same policy."
    let a = server_with_duid(BASE, SERVER_DUID);
    let b = server_with_duid(
        &BASE.replace("preference = 200", "preference = 0"),
        OTHER_SERVER_DUID,
    );
    for n in 0..100_000u32 {
        let on_a = direct(&a, &solicit(n), T0);
        let on_b = direct(&b, &solicit(n), T0);
        let (x, ..) = first_addr(&on_a.message()).unwrap();
        let (y, ..) = first_addr(&on_b.message()).unwrap();
        assert_eq!(x, y, "client {n}");
        assert_eq!(on_a.message().options.preference(), Some(200));
        assert_eq!(on_b.message().options.preference(), Some(0));
    }
}

#[test]
fn identical_prefix_failover_rebind_confirms_the_same_address() {
    // RFC 6853 §6.3 + RFC 9915 §18.3.5: B has no binding but the address is what its
    // allocation function gives this client, so B confirms it with lifetimes.
    let a = server_with_duid(BASE, SERVER_DUID);
    let b = server_with_duid(BASE, OTHER_SERVER_DUID);
    for n in 0..200 {
        let addr = acquire(&a, n, T0);
        // A dies; at T2 the client rebinds and B answers.
        let out = direct(&b, &rebind(n, addr), T0 + 2000);
        let m = out.message();
        assert_eq!(m.options.server_id().unwrap().as_bytes(), OTHER_SERVER_DUID);
        assert_eq!(first_addr(&m).unwrap(), (addr, 3000, 4000), "client {n}");
        assert_eq!(out.changes.len(), 1, "B now holds the binding durably");
    }
    assert_eq!(b.lease_counts(), (200, 0));
    // An address that is not this client's allocation is not confirmed: it goes back with
    // lifetimes 0, and (§18.3.5, `rebind_creates_bindings`, the default) the client's own
    // allocation comes with it; without that setting, NoBinding.
    let other = acquire(&a, 1000, T0);
    let out = direct(&b, &rebind(1001, other), T0 + 2000);
    let m = out.message();
    let listed: Vec<_> = m
        .options
        .ia_nas()
        .flat_map(|ia| ia.addrs().map(|x| (x.addr, x.valid)))
        .collect();
    let own = first_addr(&direct(&b, &solicit(1001), T0 + 2000).message())
        .unwrap()
        .0;
    assert_eq!(listed, vec![(other, 0), (own, 4000)]);
    let strict = server_with_duid(
        &BASE.replace(
            "preference = 200",
            "preference = 200\nrebind_creates_bindings = false",
        ),
        OTHER_SERVER_DUID,
    );
    let out = direct(&strict, &rebind(1001, other), T0 + 2000);
    let m = out.message();
    assert_eq!(first_addr(&m).unwrap(), (other, 0, 0));
    assert_eq!(ia_status(&m, false), Some(status::NO_BINDING));
}

#[test]
fn split_prefix_servers_never_hand_out_each_others_addresses() {
    // RFC 6853 §6.1: "each DHCPv6 server is configured with a unique, non-overlapping pool".
    let a = server_with_duid(SPLIT_A, SERVER_DUID);
    let b = server_with_duid(&split_b(false), OTHER_SERVER_DUID);
    let mut seen = std::collections::HashSet::new();
    for n in 0..5000 {
        let x = first_addr(&direct(&a, &solicit(n), T0).message())
            .unwrap()
            .0;
        let y = first_addr(&direct(&b, &solicit(n), T0).message())
            .unwrap()
            .0;
        assert!(!in_upper_half(x) && in_upper_half(y));
        assert!(seen.insert(x) && seen.insert(y));
    }
}

#[test]
fn split_prefix_rebind_of_foreign_address_gets_lifetimes_zero() {
    // RFC 6853 §6.1: the remaining server "will have a different address pool configured,
    // making it technically incorrect to rebind the client ... the client will acquire a new
    // binding"; RFC 9915 §18.3.5: leases not appropriate are returned with lifetimes 0.
    let a = server_with_duid(SPLIT_A, SERVER_DUID);
    let addr = acquire(&a, 1, T0);
    let b = server_with_duid(&split_b(false), OTHER_SERVER_DUID);
    let out = direct(&b, &rebind(1, addr), T0 + 2000);
    let m = out.message();
    assert_eq!(first_addr(&m).unwrap(), (addr, 0, 0));
    assert_eq!(ia_status(&m, false), Some(status::NO_BINDING));
    assert!(out.changes.is_empty());
}

#[test]
fn split_prefix_rebind_creates_a_new_binding_when_configured() {
    // RFC 9915 §18.3.5: a server "configured to create new bindings as a result of processing
    // Rebind messages" SHOULD create one (`rebind_creates_bindings`, independent of
    // rapid_commit, which stays off here).
    let a = server_with_duid(SPLIT_A, SERVER_DUID);
    let addr = acquire(&a, 1, T0);
    let b = server_with_duid(&split_b(true), OTHER_SERVER_DUID);
    let out = direct(&b, &rebind(1, addr), T0 + 2000);
    let m = out.message();
    let addrs: Vec<_> = m
        .options
        .ia_nas()
        .next()
        .unwrap()
        .addrs()
        .map(|x| (x.addr, x.valid))
        .collect();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0], (addr, 0));
    assert!(in_upper_half(addrs[1].0) && addrs[1].1 == 4000);
    assert_eq!(out.changes.len(), 1);
}

#[test]
fn unique_prefix_rebind_of_off_link_address_gets_lifetimes_zero() {
    // RFC 6853 §6.2: each server has its own prefix; B sees A's address as not on its link.
    let a = server_with_duid(SPLIT_A.replace("/65", "/64").as_str(), SERVER_DUID);
    let addr = acquire(&a, 1, T0);
    let b = server_with_duid(
        &SPLIT_A.replace("1:1::", "1:5::").replace("/65", "/64"),
        OTHER_SERVER_DUID,
    );
    let m = direct(&b, &rebind(1, addr), T0 + 2000);
    assert_eq!(first_addr(&m.message()).unwrap(), (addr, 0, 0));
}

#[test]
fn allocation_is_the_same_after_a_restart() {
    // CONTRACT "Allocation is a pure function": same key, pools, DUID, IAID → same address,
    // every restart; a restored server (journal replay) keeps every binding where it was.
    let first = server(BASE);
    let addrs: Vec<_> = (0..500).map(|n| acquire(&first, n, T0)).collect();
    let fresh = server(BASE);
    for (n, want) in addrs.iter().enumerate() {
        assert_eq!(
            first_addr(&direct(&fresh, &solicit(n as u32), T0).message())
                .unwrap()
                .0,
            *want
        );
    }
    let restored = server(BASE);
    first.for_each_binding(|r| restored.apply(r));
    assert_eq!(restored.lease_counts(), (500, 0));
    assert_eq!(restored.pool_usage()[0].used, 500);
    for (n, want) in addrs.iter().enumerate() {
        let renew = build(MessageType::Renew, 1, |e| {
            e.client_id(&client_duid(n as u32))?;
            e.server_id(SERVER_DUID)?;
            ia_na(e, 1, &[*want])
        });
        assert_eq!(
            first_addr(&direct(&restored, &renew, T0 + 100).message()).unwrap(),
            (*want, 3000, 4000)
        );
    }
}

#[test]
fn standalone_without_key_is_stable_per_server_duid() {
    // ALLOCATION.md: without allocation_key the key is derived from the server DUID.
    let text = SPLIT_A.replace("split-prefix", "standalone");
    let x = first_addr(&direct(&server_with_duid(&text, SERVER_DUID), &solicit(1), T0).message())
        .unwrap()
        .0;
    let y = first_addr(&direct(&server_with_duid(&text, SERVER_DUID), &solicit(1), T0).message())
        .unwrap()
        .0;
    let z =
        first_addr(&direct(&server_with_duid(&text, OTHER_SERVER_DUID), &solicit(1), T0).message())
            .unwrap()
            .0;
    assert_eq!(x, y);
    assert_ne!(x, z);
}

#[test]
fn unique_prefix_rebind_of_link_prefix_address_still_gets_a_new_binding() {
    // `link_prefixes` only says which addresses are on the link (Confirm, RFC 9915 §18.3.3);
    // it is no pool. RFC 6853 §6.1 (which §6.2 shares): the survivor has "a different address
    // pool configured, making it technically incorrect to rebind the client in its current
    // state"; RFC 9915 §18.3.5 returns the lease with lifetimes 0 and, configured to create
    // bindings on Rebind (`rebind_creates_bindings`, the default), adds one from our own pool.
    let a = server_with_duid(SPLIT_A.replace("/65", "/64").as_str(), SERVER_DUID);
    let addr = acquire(&a, 1, T0);
    let b_text = SPLIT_A
        .replace("preference = 255", "preference = 0")
        .replace("1:1::", "1:5::")
        .replace("/65", "/64")
        + "link_prefixes = [\"2001:db8:1:1::/64\"]\n";
    let b = server_with_duid(&b_text, OTHER_SERVER_DUID);
    let out = direct(&b, &rebind(1, addr), T0 + 2000);
    let m = out.message();
    let addrs: Vec<_> = m
        .options
        .ia_nas()
        .next()
        .unwrap()
        .addrs()
        .map(|x| (x.addr, x.valid))
        .collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(addrs[0], (addr, 0));
    assert_eq!(addrs[1].0.segments()[..4], [0x2001, 0xdb8, 1, 5]);
    assert_eq!(addrs[1].1, 4000);
    assert_eq!(out.changes.len(), 1, "only the new binding is stored");
}

#[test]
fn rebind_creation_is_its_own_setting_on_by_default() {
    // RFC 9915 §18.3.5 speaks of a server "configured to create new bindings as a result of
    // processing Rebind messages": that is `rebind_creates_bindings`, default true, and
    // Rapid Commit (§18.3.1) neither turns it on nor off.
    let a = server_with_duid(SPLIT_A, SERVER_DUID);
    let addr = acquire(&a, 1, T0);
    let new_leases = |text: &str| {
        let b = server_with_duid(text, OTHER_SERVER_DUID);
        let out = direct(&b, &rebind(1, addr), T0 + 2000);
        let m = out.message();
        let valid: Vec<_> = m
            .options
            .ia_nas()
            .flat_map(|ia| ia.addrs().filter(|x| x.valid > 0).map(|x| x.addr))
            .collect();
        (valid, ia_status(&m, false), out.changes.len())
    };
    let by_default = split_b(true).replace("rebind_creates_bindings = true\n", "");
    assert!(!by_default.contains("rebind_creates_bindings"));
    let (got, status, records) = new_leases(&by_default);
    assert_eq!(got.len(), 1, "a new lease by default");
    assert!(in_upper_half(got[0]), "{got:?}");
    assert_eq!((status, records), (None, 1));
    let off_with_rapid_commit = split_b(false).replace(
        "rebind_creates_bindings = false",
        "rebind_creates_bindings = false\nrapid_commit = true",
    );
    let (got, status, records) = new_leases(&off_with_rapid_commit);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!((status, records), (Some(status::NO_BINDING), 0));
}
