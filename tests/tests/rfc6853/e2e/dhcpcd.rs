//! dhcpcd 9 as a second, independent DHCPv6 client: prefix delegation
//! (RFC 9915 §6.3) from the RFC 6853 servers, and what it does with its
//! prefix when it restarts (RFC 9915 §18.2.12: Rebind, not Confirm).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use dhcp6d_tests::capture::Capture;
use dhcp6d_tests::dhcpcd::Dhcpcd;
use dhcp6d_tests::netns::BRIDGE;
use dhcp6d_tests::topology::{node, OneLink, IF};
use dhcp6d_tests::wait;
use dhcproto::v6::MessageType;

use super::{counter, plan, prefix_in_pool, Model, LONG};

/// The same delegation to a second, independent client: dhcpcd asks for one
/// IA_PD and gets a /56 from the PD pool of the server that granted it.
///
/// dhcpcd 9 sends its Request to the first Advertise it receives, whatever
/// its Preference (it does not collect Advertises as RFC 9915 §18.2.1
/// describes), so either server may be chosen and the test accepts both; what
/// it checks is that the Reply's server holds the prefix, from its own pool,
/// and the other server stayed silent (RFC 9915 §16: a Request naming another
/// server is discarded, counted `not_for_us`).
pub fn prefix_delegation_to_dhcpcd(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), LONG)?;
    let lab = OneLink::new(&format!("pdd-{}", model.name()), &cfgs, io_mode)?;
    let ns = node(&lab.link, "d1")?;
    let mut client = Dhcpcd::start_pd(&ns, IF, &lab.dir.subdir("d1")?)?;
    let lease = client.wait_delegated(Duration::from_secs(15))?;
    let duids = [lab.servers[0].duid()?, lab.servers[1].duid()?];
    let granted = lease
        .server_id()
        .context("no Server ID in dhcpcd's lease")?;
    let chosen = duids
        .iter()
        .position(|d| *d == granted)
        .with_context(|| format!("dhcpcd's lease names {granted}, none of {duids:?}"))?;
    let other = 1 - chosen;
    // Which server dhcpcd picked varies run to run (see above): say so.
    eprintln!(
        "{}: dhcpcd took {p}/{len} from server {} (preference {})",
        model.name(),
        chosen + 1,
        if chosen == 0 { 255 } else { 0 },
        p = lease
            .delegated_prefix()
            .map_or("?".into(), |(p, _)| p.to_string()),
        len = lease.delegated_prefix().map_or(0, |(_, l)| l),
    );
    let (p, len) = lease.delegated_prefix().context("no delegated prefix")?;
    ensure!(len == 56, "delegated /{len}, configured /56");
    let pools = cfgs[chosen].pd_pools();
    ensure!(
        pools.iter().any(|(pool, _)| prefix_in_pool(p, len, pool)),
        "{p}/{len} not in server {}'s PD pools {pools:?}",
        chosen + 1
    );
    ensure!(
        lease.valid_lifetime() == Some(LONG.1),
        "valid lifetime {:?}, configured {}",
        lease.valid_lifetime(),
        LONG.1
    );
    let stats = lab.servers[chosen].stats()?;
    ensure!(
        counter(&stats, "leases", "prefixes")? == 1,
        "server {} granted the prefix but reports {stats}",
        chosen + 1
    );
    // The Request was multicast: the other server saw it and dropped it.
    let silent = wait::until(
        "the other server to count dhcpcd's Request not_for_us",
        Duration::from_secs(5),
        || {
            let st = lab.servers[other].stats()?;
            let dropped = st["dropped"]["not_for_us"].as_u64().unwrap_or(0);
            Ok((dropped >= 1).then_some(st))
        },
    )?;
    ensure!(
        counter(&silent, "leases", "prefixes")? == 0,
        "server {} committed a prefix although dhcpcd chose server {}: {silent}",
        other + 1,
        chosen + 1
    );
    client.stop()?;
    Ok(())
}

/// RFC 9915 §18.2.12: "If the client has any valid delegated prefixes obtained
/// from the DHCP server, the client MUST initiate a Rebind/Reply message
/// exchange" (where a client with addresses only would Confirm). dhcpcd
/// restarted with its saved lease sends Rebind with its prefix and no
/// Confirm; every server answers (Rebind names no server): the one holding
/// the binding extends it (§18.3.5), and in the split and unique models the
/// other returns it with lifetimes 0 (RFC 6853 §6.1), while in the identical
/// model it confirms the same prefix. dhcpcd ends up holding a prefix from
/// the pool of the server whose Reply it took.
pub fn restart_rebinds_the_prefix(model: Model, io_mode: &str) -> Result<()> {
    let tmp = dhcp6d_tests::tempdir::TempDir::new("plan")?;
    let cfgs = plan(model, 2, tmp.path(), LONG)?;
    let lab = OneLink::new(&format!("pdr-{}", model.name()), &cfgs, io_mode)?;
    let ns = node(&lab.link, "d1")?;
    let mut client = Dhcpcd::start_pd(&ns, IF, &lab.dir.subdir("d1")?)?;
    let first = client.wait_delegated(Duration::from_secs(15))?;
    let (p, len) = first.delegated_prefix().context("no delegated prefix")?;
    let me = first
        .client_id()
        .context("no client id in dhcpcd's lease")?;
    let duids = [lab.servers[0].duid()?, lab.servers[1].duid()?];
    let granter = first.server_id().context("no server id")?;
    let capture = Capture::start(lab.link.hub(), BRIDGE, lab.dir.path(), "restart")?;
    let skip = client.events()?.len();
    client.restart()?;
    let again = client.wait_event(skip, Duration::from_secs(15), |e| {
        e.is_bound() && e.delegated_prefix().is_some()
    })?;
    client.stop()?;
    let packets = capture.finish()?;
    let mine: Vec<_> = packets
        .iter()
        .filter(|x| x.dhcp.client_id().as_deref() == Some(me.as_str()))
        .collect();
    let sent = |t: MessageType| mine.iter().filter(|x| x.dhcp.msg_type() == t).count();
    ensure!(
        sent(MessageType::Confirm) == 0,
        "dhcpcd sent Confirm for a delegated prefix"
    );
    let rebind = mine
        .iter()
        .find(|x| x.dhcp.msg_type() == MessageType::Rebind)
        .context("dhcpcd sent no Rebind after its restart")?;
    ensure!(
        rebind
            .dhcp
            .prefixes()
            .iter()
            .any(|q| (q.0, q.1) == (p, len)),
        "its Rebind does not list {p}/{len}: {:?}",
        rebind.dhcp.prefixes()
    );
    // Each server's Reply to that Rebind, by Server ID.
    for (i, duid) in duids.iter().enumerate() {
        let reply = packets
            .iter()
            .find(|x| {
                x.dhcp.msg_type() == MessageType::Reply
                    && x.dhcp.xid() == rebind.dhcp.xid()
                    && x.dhcp.server_id().as_deref() == Some(duid.as_str())
            })
            .with_context(|| format!("server {} did not answer the Rebind", i + 1))?;
        let old = reply
            .dhcp
            .prefixes()
            .into_iter()
            .find(|q| (q.0, q.1) == (p, len))
            .with_context(|| format!("server {}'s Reply leaves out {p}/{len}", i + 1))?;
        let keeps = *duid == granter || model.keeps_address();
        let want = if keeps { LONG.1 } else { 0 };
        ensure!(
            old.3 == want,
            "server {} gave {p}/{len} valid lifetime {}, expected {want}",
            i + 1,
            old.3
        );
    }
    let replier = again.server_id().context("no server id after restart")?;
    let k = duids
        .iter()
        .position(|d| *d == replier)
        .with_context(|| format!("lease names {replier}, none of {duids:?}"))?;
    let (q, qlen) = again
        .delegated_prefix()
        .context("no prefix after restart")?;
    ensure!(
        cfgs[k]
            .pd_pools()
            .iter()
            .any(|(pool, _)| prefix_in_pool(q, qlen, pool)),
        "{q}/{qlen} is not from server {}'s PD pool",
        k + 1
    );
    eprintln!(
        "{}: after restart dhcpcd holds {q}/{qlen} from server {} (first lease {p}/{len} from server {})",
        model.name(),
        k + 1,
        duids.iter().position(|d| *d == granter).map_or(0, |g| g + 1)
    );
    if replier == granter || model.keeps_address() {
        ensure!(
            (q, qlen) == (p, len),
            "kept {p}/{len}, yet now holds {q}/{qlen}"
        );
    }
    Ok(())
}
