//! Server selection by Preference (RFC 9915 §18.2.1/§18.2.9, RFC 6853 §6.1),
//! seen by dhclient, perfdhcp and on the wire; prefix delegation.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use dhcp6d_tests::capture::{Capture, Packet};
use dhcp6d_tests::dhclient::Ask;
use dhcp6d_tests::netns::BRIDGE;
use dhcp6d_tests::perfdhcp;
use dhcp6d_tests::topology::{node, OneLink, IF};
use dhcproto::v6::MessageType;

use super::{counter, in_pools, only_chosen_server_replied, plan, prefix_in_pool, Model, LONG};

/// Time from a client's first Solicit to its first Request, per client id.
fn solicit_to_request(packets: &[Packet]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for req in packets
        .iter()
        .filter(|p| p.dhcp.msg_type() == MessageType::Request)
    {
        let Some(cid) = req.dhcp.client_id() else {
            continue;
        };
        if out.iter().any(|(c, _)| c == &cid) {
            continue;
        }
        if let Some(sol) = packets.iter().find(|p| {
            p.dhcp.msg_type() == MessageType::Solicit && p.dhcp.client_id().as_ref() == Some(&cid)
        }) {
            out.push((cid, req.time - sol.time));
        }
    }
    out
}

/// Two servers from `dhcp6d plan` (preference 255 and 0). RFC 6853 §6.1: "a
/// DHCPv6 ADVERTISE message with a preference option of 255 is an indicator
/// to a DHCPv6 client to immediately begin a client-initiated message exchange
/// by transmitting a REQUEST message to the server that sent the ADVERTISE."
/// RFC 9915 §16: the other server discards the Request (its Server Identifier
/// is not its own) and counts it `not_for_us`.
pub fn preference_255_wins_at_once(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), LONG)?;
    ensure!(
        cfgs[0].get_preference() == 255,
        "plan's server 1 preference is {}",
        cfgs[0].get_preference()
    );
    let mut lab = OneLink::new(&format!("pref255-{}", model.name()), &cfgs, io_mode)?;
    let capture = Capture::start(lab.link.hub(), BRIDGE, lab.dir.path(), "link")?;
    lab.add_clients(3, Ask::Address)?;
    let leases = lab.wait_all_bound(Duration::from_secs(15))?;
    let s1 = lab.servers[0].duid()?;
    for lease in &leases {
        ensure!(
            lease.server_id().as_deref() == Some(s1.as_str()),
            "a client bound to {:?}, not the preference-255 server {s1}",
            lease.server_id()
        );
        let a = lease.address().context("lease without address")?;
        ensure!(
            in_pools(a, &cfgs[0].pools()),
            "{a} is not in server 1's pools {:?}",
            cfgs[0].pools()
        );
    }
    for c in &mut lab.clients {
        c.stop()?;
    }
    let packets = capture.finish()?;
    let requests = only_chosen_server_replied(&packets)?;
    for (cid, secs) in solicit_to_request(&packets) {
        // With 255 the client does not wait out the first retransmission
        // timeout (IRT 1 s, RAND ±0.1 => at least 0.9 s) collecting Advertises.
        ensure!(
            secs < 0.9,
            "client {cid} waited {secs:.3}s before its Request despite preference 255"
        );
    }
    let other = lab.servers[1].stats()?;
    let not_for_us = counter(&other, "dropped", "not_for_us")?;
    ensure!(
        not_for_us >= requests as u64,
        "server 2 counted {not_for_us} not_for_us for {requests} Requests to server 1"
    );
    ensure!(
        counter(&other, "tx", "reply")? == 0,
        "server 2 sent Replies: {other}"
    );
    Ok(())
}

/// Preferences 0 and 100 only, the higher on the second server. RFC 9915
/// §18.2.1: without a 255 Advertise the client "MUST collect valid Advertise
/// messages" until the first RT elapses, then picks the highest preference.
pub fn highest_preference_wins_after_waiting(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let mut cfgs = plan(model, 2, tmp.path(), LONG)?;
    cfgs[0].preference(0);
    cfgs[1].preference(100);
    let mut lab = OneLink::new(&format!("pref100-{}", model.name()), &cfgs, io_mode)?;
    let capture = Capture::start(lab.link.hub(), BRIDGE, lab.dir.path(), "link")?;
    lab.add_clients(2, Ask::Address)?;
    let leases = lab.wait_all_bound(Duration::from_secs(15))?;
    let s2 = lab.servers[1].duid()?;
    for lease in &leases {
        ensure!(
            lease.server_id().as_deref() == Some(s2.as_str()),
            "a client bound to {:?}, not the preference-100 server {s2}",
            lease.server_id()
        );
        let a = lease.address().context("lease without address")?;
        ensure!(
            in_pools(a, &cfgs[1].pools()),
            "{a} is not in server 2's pools {:?}",
            cfgs[1].pools()
        );
    }
    for c in &mut lab.clients {
        c.stop()?;
    }
    let packets = capture.finish()?;
    let requests = only_chosen_server_replied(&packets)?;
    for (cid, secs) in solicit_to_request(&packets) {
        ensure!(
            secs >= 0.85,
            "client {cid} sent its Request after {secs:.3}s: it did not wait for more Advertises"
        );
    }
    let s1 = lab.servers[0].stats()?;
    let advertised = counter(&s1, "tx", "advertise")?;
    ensure!(
        advertised >= 2,
        "server 1 (preference 0) sent {advertised} Advertises; clients had no choice to make"
    );
    let nfu = counter(&s1, "dropped", "not_for_us")?;
    ensure!(
        nfu >= requests as u64,
        "server 1 counted {nfu} not_for_us for {requests} Requests to server 2"
    );
    Ok(())
}

/// perfdhcp (which takes the first Advertise, not the best: it is a load
/// generator) against both servers: every Request is answered by exactly
/// the server it names and discarded, counted `not_for_us`, by the other.
pub fn perfdhcp_each_request_answered_once(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), LONG)?;
    let lab = OneLink::new(&format!("perf-{}", model.name()), &cfgs, io_mode)?;
    let client = node(&lab.link, "perf")?;
    let report = perfdhcp::run(&client, IF, 50, 50, 10)?;
    ensure!(
        report.requests_sent > 0 && report.replies_received == report.requests_sent,
        "perfdhcp: {} Requests, {} Replies:\n{}",
        report.requests_sent,
        report.replies_received,
        report.output
    );
    let (a, b) = (lab.servers[0].stats()?, lab.servers[1].stats()?);
    let replies = counter(&a, "tx", "reply")? + counter(&b, "tx", "reply")?;
    ensure!(
        replies == report.replies_received,
        "servers sent {replies} Replies, perfdhcp got {}",
        report.replies_received
    );
    let nfu = counter(&a, "dropped", "not_for_us")? + counter(&b, "dropped", "not_for_us")?;
    ensure!(
        nfu == report.requests_sent,
        "{nfu} not_for_us for {} Requests (each must be discarded by exactly one server)",
        report.requests_sent
    );
    Ok(())
}

/// `dhclient -6 -P`: the delegated prefix comes from the preferred server's
/// PD pool (RFC 9915 §6.3, §18.3.2; RFC 6853 §2.1 applies the models to PD).
pub fn prefix_delegation_from_preferred_server(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), LONG)?;
    let mut lab = OneLink::new(&format!("pd-{}", model.name()), &cfgs, io_mode)?;
    lab.add_clients(2, Ask::Prefix)?;
    let leases = lab.wait_all_bound(Duration::from_secs(15))?;
    let s1 = lab.servers[0].duid()?;
    let pools = cfgs[0].pd_pools();
    let mut seen = Vec::new();
    for lease in &leases {
        ensure!(
            lease.server_id().as_deref() == Some(s1.as_str()),
            "PD from {:?}, not server 1",
            lease.server_id()
        );
        let (p, len) = lease.prefix().context("no delegated prefix")?;
        ensure!(len == 56, "delegated /{len}, configured /56");
        ensure!(
            pools.iter().any(|(pool, _)| prefix_in_pool(p, len, pool)),
            "{p}/{len} not in server 1's PD pools {pools:?}"
        );
        ensure!(!seen.contains(&p), "{p}/{len} delegated twice");
        seen.push(p);
    }
    let stats = lab.servers[0].stats()?;
    ensure!(
        counter(&stats, "leases", "prefixes")? >= 2,
        "server 1 reports {stats}"
    );
    Ok(())
}
