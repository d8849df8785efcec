//! Other paths to the servers: through relays (RFC 9915 §19, RFC 6853 §5.2)
//! and a client that moves between links (Confirm, RFC 9915 §18.3.3).

use std::net::Ipv6Addr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use dhcp6d_tests::capture::Capture;
use dhcp6d_tests::dhclient::{Ask, Dhclient};
use dhcp6d_tests::dhcp6d::Dhcp6d;
use dhcp6d_tests::netns::{Netns, Segment, BRIDGE};
use dhcp6d_tests::relay::Dhcrelay;
use dhcp6d_tests::tempdir::TempDir;
use dhcp6d_tests::topology::{node, IF};
use dhcproto::v6::{MessageType, Status};

use super::{in_pools, plan, Model, LONG};

/// `<network>::1/<len>` of a prefix like "2001:db8:1:1::/64".
fn first_host(prefix: &str) -> Result<(Ipv6Addr, String)> {
    let (net, len) = prefix.split_once('/').context("prefix without length")?;
    let a = Ipv6Addr::from(u128::from(net.parse::<Ipv6Addr>()?) + 1);
    Ok((a, format!("{a}/{len}")))
}

/// Clients behind `levels` dhcrelay agents (1 or 2), each relaying to both
/// servers at once (`-u` twice on the last hop). The client binds to the
/// preferred server; Relay-forward arrives with one layer per relay and the
/// innermost link-address inside the client's subnet; the Reply returns as
/// Relay-reply.
pub fn relayed_clients_reach_both_servers(
    model: Model,
    levels: usize,
    io_mode: &str,
) -> Result<()> {
    let dir = TempDir::new(&format!("relay{levels}-{}", model.name()))?;
    let mut cfgs = plan(model, 2, dir.path(), LONG)?;
    let (relay_addr, relay_cidr) = first_host(&cfgs[0].subnet_prefixes()[0])?;
    let client_link = Segment::new("rc")?;
    let server_link = Segment::new("rs")?;
    let capture = Capture::start(server_link.hub(), BRIDGE, dir.path(), "servers")?;
    let mut servers = Vec::new();
    let mut server_nodes = Vec::new();
    let mut server_addrs = Vec::new();
    for (i, cfg) in cfgs.iter_mut().enumerate() {
        let ns = node(&server_link, &format!("s{}", i + 1))?;
        let addr: Ipv6Addr = format!("2001:db8:ff00::{}", 0x11 + i).parse()?;
        ns.add_address(IF, &format!("{addr}/64"))?;
        cfg.relayed_on(IF);
        let name = format!("s{}", i + 1);
        servers.push(Dhcp6d::start(
            &ns,
            cfg,
            &dir.subdir(&name)?,
            &name,
            io_mode,
        )?);
        server_nodes.push(ns);
        server_addrs.push(addr);
    }
    // Relay nearest the servers first, so each hop listens before the one
    // below it forwards. Two levels: client link - r1 - middle link - r2 - servers.
    let to_servers: Vec<(Ipv6Addr, &str)> = server_addrs.iter().map(|a| (*a, "upper")).collect();
    let middle = Segment::new("rm")?;
    let mut relays = Vec::new();
    let mut relay_nodes: Vec<Netns> = Vec::new();
    if levels == 2 {
        let r2 = Netns::new("r2")?;
        server_link.attach(&r2, "upper")?;
        middle.attach(&r2, "lower")?;
        r2.add_address("upper", "2001:db8:ff00::1/64")?;
        r2.add_address("lower", "2001:db8:ff01::2/64")?;
        relays.push(Dhcrelay::start(
            &r2,
            "lower",
            &to_servers,
            dir.path(),
            "relay2",
        )?);
        relay_nodes.push(r2);
    }
    let r1 = Netns::new("r1")?;
    client_link.attach(&r1, "lower")?;
    r1.add_address("lower", &relay_cidr)?;
    let r1_upstream = if levels == 2 {
        middle.attach(&r1, "upper")?;
        r1.add_address("upper", "2001:db8:ff01::1/64")?;
        vec![("2001:db8:ff01::2".parse::<Ipv6Addr>()?, "upper")]
    } else {
        server_link.attach(&r1, "upper")?;
        r1.add_address("upper", "2001:db8:ff00::1/64")?;
        to_servers.clone()
    };
    relays.push(Dhcrelay::start(
        &r1,
        "lower",
        &r1_upstream,
        dir.path(),
        "relay1",
    )?);
    relay_nodes.push(r1);
    let c = node(&client_link, "c1")?;
    let mut client = Dhclient::start(&c, IF, &dir.subdir("c1")?, Ask::Address)?;
    let lease = client.wait_bound(Duration::from_secs(20))?;
    let s1 = servers[0].duid()?;
    ensure!(
        lease.server_id().as_deref() == Some(s1.as_str()),
        "relayed client bound to {:?}, not server 1",
        lease.server_id()
    );
    let a = lease.address().context("no address")?;
    ensure!(in_pools(a, &cfgs[0].pools()), "{a} not in server 1's pools");
    client.stop()?;
    let packets = capture.finish()?;
    let fwd = packets
        .iter()
        .find(|p| p.dhcp.msg_type() == MessageType::Request && !p.dhcp.relays.is_empty())
        .context("no relayed Request on the servers' link")?;
    ensure!(
        fwd.dhcp.relays.len() == levels,
        "{} relay layers, expected {levels}",
        fwd.dhcp.relays.len()
    );
    let innermost = fwd.dhcp.relays.last().context("no layer")?;
    ensure!(
        innermost.link_address == relay_addr,
        "innermost link-address {}",
        innermost.link_address
    );
    let reply = packets
        .iter()
        .find(|p| p.dhcp.msg_type() == MessageType::Reply && p.dhcp.xid() == fwd.dhcp.xid())
        .context("no Reply to the relayed Request")?;
    ensure!(
        reply.dhcp.relays.len() == levels && reply.dhcp.relays.iter().all(|r| r.msg_type == 13),
        "Reply came back in {:?}",
        reply.dhcp.relays
    );
    // Both servers saw the relayed Solicits: the relay forwarded to each.
    for s in &servers {
        let st = s.stats()?;
        ensure!(
            super::counter(&st, "rx", "relay_forw")? > 0,
            "{} received no Relay-forward: {st}",
            s.name()
        );
    }
    drop(relays);
    drop(relay_nodes);
    Ok(())
}

/// RFC 9915 §18.3.3: a Confirm whose addresses are on the client's link gets
/// Success; a client that moved to another link gets NotOnLink (and dhclient
/// then solicits again, getting an address of the new link).
pub fn confirm_success_and_not_on_link(model: Model, io_mode: &str) -> Result<()> {
    let dir = TempDir::new(&format!("confirm-{}", model.name()))?;
    let mut cfgs = plan(model, 2, dir.path(), LONG)?;
    let link_a = Segment::new("ca")?;
    let link_b = Segment::new("cb")?;
    let mut servers = Vec::new();
    let mut nodes = Vec::new();
    for (i, cfg) in cfgs.iter_mut().enumerate() {
        let name = format!("s{}", i + 1);
        let ns = node(&link_a, &name)?;
        link_b.attach(&ns, "eth1")?;
        cfg.direct_on(IF);
        let mut other = toml::Table::new();
        other.insert("prefix".into(), "2001:db8:2:2::/64".into());
        other.insert("interface".into(), "eth1".into());
        let pool = if i == 0 {
            "2001:db8:2:2::/65"
        } else {
            "2001:db8:2:2:8000::/65"
        };
        other.insert("pools".into(), toml::Value::Array(vec![pool.into()]));
        cfg.add_subnet(other);
        cfg.interfaces(&[IF, "eth1"]);
        servers.push(Dhcp6d::start(
            &ns,
            cfg,
            &dir.subdir(&name)?,
            &name,
            io_mode,
        )?);
        nodes.push(ns);
    }
    let stay_ns = node(&link_a, "stay")?;
    let move_ns = node(&link_a, "move")?;
    let mut stay = Dhclient::start(&stay_ns, IF, &dir.subdir("stay")?, Ask::Address)?;
    let mut mover = Dhclient::start(&move_ns, IF, &dir.subdir("move")?, Ask::Address)?;
    let first_stay = stay.wait_bound(Duration::from_secs(15))?;
    let first_move = mover.wait_bound(Duration::from_secs(15))?;
    stay.stop()?;
    mover.stop()?;
    let cap_a = Capture::start(link_a.hub(), BRIDGE, dir.path(), "a")?;
    let cap_b = Capture::start(link_b.hub(), BRIDGE, dir.path(), "b")?;
    // The mover keeps its MAC (so its IAID) and lease file on the new link.
    let mac = move_ns.mac(IF)?;
    link_a.detach(&move_ns, IF)?;
    link_b.attach(&move_ns, IF)?;
    move_ns.set_mac(IF, &mac)?;
    let skip_stay = stay.events()?.len();
    let skip_move = mover.events()?.len();
    stay.restart()?;
    mover.restart()?;
    let again = stay.wait_event(
        "the confirmed lease",
        skip_stay,
        Duration::from_secs(15),
        |e| e.is_bound(),
    )?;
    ensure!(
        again.address() == first_stay.address(),
        "stayed, but now holds {:?} instead of {:?}",
        again.address(),
        first_stay.address()
    );
    let moved = mover.wait_event(
        "a lease on the new link",
        skip_move,
        Duration::from_secs(20),
        |e| {
            e.is_bound()
                && e.address()
                    .is_some_and(|a| in_pools(a, &["2001:db8:2:2::/64".to_owned()]))
        },
    )?;
    ensure!(moved.address() != first_move.address());
    stay.stop()?;
    mover.stop()?;
    let status_of_confirm_replies =
        |packets: &[dhcp6d_tests::capture::Packet]| -> Vec<Option<Status>> {
            let confirms: Vec<u32> = packets
                .iter()
                .filter(|p| p.dhcp.msg_type() == MessageType::Confirm)
                .map(|p| p.dhcp.xid())
                .collect();
            packets
                .iter()
                .filter(|p| {
                    p.dhcp.msg_type() == MessageType::Reply && confirms.contains(&p.dhcp.xid())
                })
                .map(|p| p.dhcp.status())
                .collect()
        };
    let on_a = status_of_confirm_replies(&cap_a.finish()?);
    let on_b = status_of_confirm_replies(&cap_b.finish()?);
    ensure!(
        !on_a.is_empty() && on_a.iter().all(|s| *s == Some(Status::Success)),
        "Confirm on the same link answered {on_a:?}"
    );
    ensure!(
        !on_b.is_empty() && on_b.iter().all(|s| *s == Some(Status::NotOnLink)),
        "Confirm on the new link answered {on_b:?}"
    );
    Ok(())
}
