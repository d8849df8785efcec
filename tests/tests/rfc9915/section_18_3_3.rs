//! RFC 9915 §18.3.3 (Receipt of Confirm Messages) beyond the basics in
//! `section_18_3_7`: the other prefixes of a unique-prefix link
//! (RFC 6853 §6.2, `link_prefixes`) and delegated prefixes in a Confirm.
use crate::core_harness::*;

use dhcp6d::protocol::DropReason;
use dhcp6d::wire::{status, MessageType};
use std::net::Ipv6Addr;

/// Server 2 of a two-server unique-prefix link (RFC 6853 §6.2 Figure 2): its
/// own /64, and server 1's /64 listed as also on the link.
const UNIQUE_2: &str = r#"
[server]
interfaces = ["eth0"]
preference = 0
[redundancy]
model = "unique-prefix"
[[subnet]]
prefix = "2001:db8:1:5::/64"
interface = "eth0"
pools = ["2001:db8:1:5::/64"]
pd_pools = [ { prefix = "2001:db8:200::/40", delegated_length = 56 } ]
link_prefixes = ["2001:db8:1:1::/64"]
"#;

/// An address server 1 handed out: in its /64, not in any of our pools.
const PARTNERS: &str = "2001:db8:1:1::1234";
const OURS: &str = "2001:db8:1:5::99";
const ELSEWHERE: &str = "2001:db8:9::1";

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn confirm(n: u32, addrs: &[Ipv6Addr], prefixes: &[(Ipv6Addr, u8)]) -> Vec<u8> {
    build(MessageType::Confirm, 0x3300 + n, |e| {
        e.client_id(&client_duid(n))?;
        if !addrs.is_empty() {
            ia_na(e, 1, addrs)?;
        }
        if !prefixes.is_empty() {
            ia_pd(e, 2, prefixes)?;
        }
        Ok(())
    })
}

fn status_of(out: &Outcome) -> u16 {
    out.message().options.status_code().unwrap().code
}

#[test]
fn address_in_a_link_prefix_is_on_link() {
    // §18.3.3: "the server determines whether the addresses in the Confirm message are
    // appropriate for the link to which the client is attached. If all of the addresses in the
    // Confirm message pass this test, the server returns a status of Success." On a
    // unique-prefix link every server's /64 is on the link (RFC 6853 §6.2: the network is
    // "configured to use multiple prefixes on the interface(s) facing the DHCPv6 clients").
    let s = server(UNIQUE_2);
    let partners = direct(&s, &confirm(1, &[a(PARTNERS)], &[]), T0);
    assert_eq!(status_of(&partners), status::SUCCESS);
    assert_eq!(
        partners.message().options.server_id().unwrap().as_bytes(),
        SERVER_DUID
    );
    assert!(partners.changes.is_empty(), "Confirm writes no state");
    let both = direct(&s, &confirm(2, &[a(OURS), a(PARTNERS)], &[]), T0);
    assert_eq!(status_of(&both), status::SUCCESS);
}

#[test]
fn address_outside_every_link_prefix_is_not_on_link() {
    // §18.3.3: "If any of the addresses do not pass this test, the server returns a status of
    // NotOnLink."
    let s = server(UNIQUE_2);
    let off = direct(&s, &confirm(3, &[a(ELSEWHERE)], &[]), T0);
    assert_eq!(status_of(&off), status::NOT_ON_LINK);
    let mixed = direct(&s, &confirm(4, &[a(PARTNERS), a(ELSEWHERE)], &[]), T0);
    assert_eq!(status_of(&mixed), status::NOT_ON_LINK);
}

#[test]
fn without_link_prefixes_the_partners_address_is_not_on_link() {
    // The same server without `link_prefixes` knows only its own /64: this is the answer the
    // key exists to correct (a client that never moved would be told it did).
    let s = server(&UNIQUE_2.replace("link_prefixes = [\"2001:db8:1:1::/64\"]\n", ""));
    let out = direct(&s, &confirm(5, &[a(PARTNERS)], &[]), T0);
    assert_eq!(status_of(&out), status::NOT_ON_LINK);
    assert_eq!(
        status_of(&direct(&s, &confirm(6, &[a(OURS)], &[]), T0)),
        status::SUCCESS
    );
}

#[test]
fn delegated_prefixes_in_a_confirm_are_not_judged() {
    // §18.3.3 tests "the addresses in the Confirm message"; a delegated prefix is not an
    // address of the link, and §18.2.12 sends a client holding delegated prefixes to Rebind:
    // "If the client has any valid delegated prefixes obtained from the DHCP server, the
    // client MUST initiate a Rebind/Reply message exchange". So an IA_PD in a Confirm does not
    // turn Success into NotOnLink, even for a prefix from no pool of ours.
    let s = server(UNIQUE_2);
    let foreign_pd = (a("2001:db8:100:4200::"), 56);
    let out = direct(&s, &confirm(7, &[a(OURS)], &[foreign_pd]), T0);
    assert_eq!(status_of(&out), status::SUCCESS);
    let off = direct(&s, &confirm(8, &[a(ELSEWHERE)], &[foreign_pd]), T0);
    assert_eq!(status_of(&off), status::NOT_ON_LINK);
}

#[test]
fn confirm_with_only_delegated_prefixes_gets_no_reply() {
    // §18.3.3: "If the server is unable to perform this test ... or there were no addresses in
    // any of the IAs sent by the client, the server MUST NOT send a reply to the client."
    // IA_PDs carry prefixes, not addresses.
    let s = server(UNIQUE_2);
    let ours_pd = (a("2001:db8:200:4200::"), 56);
    let out = direct(&s, &confirm(9, &[], &[ours_pd]), T0);
    assert_eq!(out.handled.result, Err(DropReason::NothingToConfirm));
    assert!(out.changes.is_empty());
}
