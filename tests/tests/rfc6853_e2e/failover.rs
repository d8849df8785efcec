//! Losing a server (RFC 6853 §6.1-§6.3 "In the event of a DHCPv6 server
//! failure") and the identical model's agreement (RFC 6853 §7, first bullet).

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use dhcp6d_tests::capture::Capture;
use dhcp6d_tests::dhclient::{Ask, Dhclient};
use dhcp6d_tests::netns::BRIDGE;
use dhcp6d_tests::tempdir::TempDir;
use dhcp6d_tests::topology::{node, OneLink, IF};
use dhcproto::v6::MessageType;

use super::{in_pools, io, plan, Model, LONG, SHORT};

/// Clients in the failover scenario.
const CLIENTS: usize = 3;

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Kill the preferred server (SIGKILL: a crash) and time until every client
/// again holds a lease a live server confirmed. Split and unique models: the
/// survivor answers the Rebind (RFC 9915 §18.3.5) with lifetimes 0 for the
/// foreign address and a new address of its own pool. Identical model: it
/// confirms the same address. Returns the slowest client's recovery (s).
pub fn kill_preferred_server(model: Model) -> Result<f64> {
    let tmp = TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), SHORT)?;
    let mut lab = OneLink::new(&format!("failover-{}", model.name()), &cfgs, &io())?;
    let capture = Capture::start(lab.link.hub(), BRIDGE, lab.dir.path(), "link")?;
    lab.add_clients(CLIENTS, Ask::Address)?;
    let before = lab.wait_all_bound(Duration::from_secs(15))?;
    let s1 = lab.servers[0].duid()?;
    let s2 = lab.servers[1].duid()?;
    for l in &before {
        ensure!(
            l.server_id().as_deref() == Some(s1.as_str()),
            "bound to {:?} before the failure",
            l.server_id()
        );
    }
    let skips: Vec<usize> = lab
        .clients
        .iter()
        .map(|c| c.events().map(|e| e.len()))
        .collect::<Result<_, _>>()?;
    let killed_at = epoch_now();
    lab.servers[0].kill()?;
    let mut recovery = Vec::new();
    for ((client, skip), old) in lab.clients.iter_mut().zip(skips).zip(&before) {
        let old_addr = old.address().context("no address before")?;
        let s2 = s2.clone();
        let pools = cfgs[1].pools();
        let ev = client.wait_event(
            "a lease from the surviving server",
            skip,
            Duration::from_secs(30),
            move |e| {
                e.is_bound()
                    && e.server_id().as_deref() == Some(s2.as_str())
                    && e.address().is_some_and(|a| {
                        if model.keeps_address() {
                            a == old_addr
                        } else {
                            a != old_addr && in_pools(a, &pools)
                        }
                    })
            },
        )?;
        recovery.push(ev.time - killed_at);
    }
    for c in &mut lab.clients {
        c.stop()?;
    }
    let packets = capture.finish()?;
    let rebinds: Vec<u32> = packets
        .iter()
        .filter(|p| p.dhcp.msg_type() == MessageType::Rebind)
        .map(|p| p.dhcp.xid())
        .collect();
    let replies: Vec<_> = packets
        .iter()
        .filter(|p| p.dhcp.msg_type() == MessageType::Reply && rebinds.contains(&p.dhcp.xid()))
        .collect();
    ensure!(!replies.is_empty(), "no Reply to a Rebind on the wire");
    let old: BTreeSet<Ipv6Addr> = before.iter().filter_map(|l| l.address()).collect();
    for r in &replies {
        ensure!(
            r.dhcp.server_id().as_deref() == Some(s2.as_str()),
            "a dead server answered a Rebind"
        );
        let addrs = r.dhcp.addresses();
        if model.keeps_address() {
            ensure!(
                addrs
                    .iter()
                    .any(|(a, _, valid)| old.contains(a) && *valid > 0),
                "identical model: Rebind Reply {addrs:?} does not extend the address"
            );
        } else {
            ensure!(
                addrs
                    .iter()
                    .any(|(a, p, v)| old.contains(a) && *p == 0 && *v == 0),
                "Rebind Reply {addrs:?} lacks the foreign address with lifetimes 0"
            );
            ensure!(
                addrs
                    .iter()
                    .any(|(a, _, v)| !old.contains(a) && *v > 0 && in_pools(*a, &cfgs[1].pools())),
                "Rebind Reply {addrs:?} lacks a new address"
            );
        }
    }
    let worst = recovery.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "RFC 6853 failover, {} (T1 {} s, T2 {} s, valid {} s, io {}): recovery per client {:?} s, all clients {worst:.2} s",
        model.name(), SHORT.2, SHORT.3, SHORT.1, io(),
        recovery.iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>()
    );
    ensure!(
        worst < f64::from(SHORT.1),
        "recovery {worst:.2}s is longer than the valid lifetime"
    );
    Ok(worst)
}

/// Every IPv6 address (or prefix's address part) found in a JSON document.
fn addresses_in(v: &serde_json::Value, out: &mut BTreeSet<Ipv6Addr>) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(a) = s.split('/').next().unwrap_or("").parse::<Ipv6Addr>() {
                out.insert(a);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| addresses_in(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| addresses_in(x, out)),
        _ => {}
    }
}

/// Binds `clients` fresh dhclients (same namespaces, so same DUID-LL and
/// IAID, new lease files); their addresses in client order.
fn drive(lab: &mut OneLink, round: &str, server: &str) -> Result<Vec<Ipv6Addr>> {
    let mut out = Vec::new();
    for (i, ns) in lab.client_nodes.iter().enumerate() {
        let mut c = Dhclient::start(
            ns,
            IF,
            &lab.dir.subdir(&format!("{round}-c{i}"))?,
            Ask::Address,
        )?;
        let l = c.wait_bound(Duration::from_secs(15))?;
        ensure!(
            l.server_id().as_deref() == Some(server),
            "{round}: bound to {:?}, expected {server}",
            l.server_id()
        );
        out.push(l.address().context("no address")?);
        c.stop()?;
    }
    Ok(out)
}

/// RFC 6853 §7: "both servers must follow the same address allocation
/// procedure ... In case of a failure of one server, the other server will
/// assign the same address by following the same algorithm and the same
/// policy." Drive the same clients at server 1, then (server 1 down) at
/// server 2, then at server 1 again after its restart: same addresses each
/// time, and `dhcp6d leases --json` of both list the same addresses.
pub fn identical_servers_agree() -> Result<()> {
    let tmp = TempDir::new("plan")?;
    let cfgs = plan(Model::Identical, 2, tmp.path(), LONG)?;
    let key = |i: usize| {
        cfgs[i]
            .table
            .get("redundancy")
            .and_then(|r| r.get("allocation_key"))
            .cloned()
    };
    ensure!(
        key(0).is_some() && key(0) == key(1),
        "plan gave the servers different allocation keys: {:?} {:?}",
        key(0),
        key(1)
    );
    let mut lab = OneLink::new("agree", &cfgs, &io())?;
    for i in 0..3 {
        let ns = node(&lab.link, &format!("c{}", i + 1))?;
        lab.client_nodes.push(ns);
    }
    let s1 = lab.servers[0].duid()?;
    let s2 = lab.servers[1].duid()?;
    let first = drive(&mut lab, "at-s1", &s1)?;
    let mut leases1 = BTreeSet::new();
    addresses_in(&lab.servers[0].leases(&[])?, &mut leases1);
    lab.servers[0].stop()?;
    let second = drive(&mut lab, "at-s2", &s2)?;
    ensure!(
        first == second,
        "server 1 gave {first:?}, server 2 gave {second:?}"
    );
    let mut leases2 = BTreeSet::new();
    addresses_in(&lab.servers[1].leases(&[])?, &mut leases2);
    let expected: BTreeSet<Ipv6Addr> = first.iter().copied().collect();
    ensure!(
        expected.is_subset(&leases1) && expected.is_subset(&leases2),
        "leases --json: server 1 {leases1:?}, server 2 {leases2:?}, clients {expected:?}"
    );
    lab.servers[1].restart()?;
    let mut after = BTreeSet::new();
    addresses_in(&lab.servers[1].leases(&[])?, &mut after);
    ensure!(
        expected.is_subset(&after),
        "server 2 lost bindings across restart: {after:?}"
    );
    lab.servers[1].stop()?;
    lab.servers[0].restart()?;
    let third = drive(&mut lab, "at-s1-again", &s1)?;
    ensure!(
        first == third,
        "after restart server 1 gave {third:?}, before {first:?}"
    );
    Ok(())
}
