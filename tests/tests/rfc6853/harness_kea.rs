//! The harness checked against a server nobody here wrote: Kea (kea-dhcp6)
//! configured as RFC 6853 §6.1's Figure 1 (split prefixes). If these pass and
//! the same scenario fails against dhcp6d, the bug is in dhcp6d.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use dhcp6d_tests::capture::Capture;
use dhcp6d_tests::dhclient::{Ask, Dhclient};
use dhcp6d_tests::kea::{Kea, KeaConfig};
use dhcp6d_tests::netns::{Netns, Segment};
use dhcp6d_tests::relay::Dhcrelay;
use dhcp6d_tests::tempdir::TempDir;
use dhcp6d_tests::topology::{node, IF};
use dhcproto::v6::MessageType;

fn figure1(preference: u8, server_id: &str, pool: &str, relayed: Option<&str>) -> KeaConfig {
    KeaConfig {
        interface: IF.into(),
        preference,
        server_id: server_id.into(),
        subnets: vec![("2001:db8:1:1::/64".into(), pool.into())],
        pd_pool: Some(("2001:db8:100::".into(), 40, 56)),
        relayed: relayed.map(str::to_owned),
        lifetimes: (30, 40, 10, 20),
    }
}

/// RFC 6853 §6.1: "a DHCPv6 ADVERTISE message with a preference option of
/// 255 is an indicator to a DHCPv6 client to immediately begin a
/// client-initiated message exchange by transmitting a REQUEST message to the
/// server that sent the ADVERTISE." — dhclient binds to the 255 server, and
/// on the wire only that server answers the Request.
#[test]
fn kea_split_prefix_client_binds_to_preference_255_server() -> Result<()> {
    let dir = TempDir::new("kea-pref")?;
    let link = Segment::new("kpref")?;
    let capture = Capture::start(link.hub(), "br0", dir.path(), "link")?;
    let s1 = node(&link, "s1")?;
    let s2 = node(&link, "s2")?;
    let c1 = node(&link, "c1")?;
    let cfg1 = figure1(255, "0a01", "2001:db8:1:1::/65", None);
    let cfg2 = figure1(0, "0a02", "2001:db8:1:1:8000::/65", None);
    let _k2 = Kea::start(&s2, &cfg2, dir.path(), "kea2")?;
    let _k1 = Kea::start(&s1, &cfg1, dir.path(), "kea1")?;
    let mut client = Dhclient::start(&c1, IF, &dir.subdir("c1")?, Ask::Address)?;
    let lease = client.wait_bound(Duration::from_secs(15))?;
    ensure!(
        lease.server_id() == Some(Kea::duid(&cfg1)),
        "bound to {:?}, expected the preference-255 server",
        lease.server_id()
    );
    let address = lease.address().context("no address")?;
    ensure!(
        address.segments()[4] < 0x8000,
        "{address} is not from server 1's pool 2001:db8:1:1::/65"
    );
    client.stop()?;
    let packets = capture.finish()?;
    let requests: Vec<_> = packets
        .iter()
        .filter(|p| p.dhcp.msg_type() == MessageType::Request)
        .collect();
    ensure!(!requests.is_empty(), "no Request captured");
    for req in requests {
        let repliers: Vec<_> = packets
            .iter()
            .filter(|p| p.dhcp.msg_type() == MessageType::Reply && p.dhcp.xid() == req.dhcp.xid())
            .map(|p| p.dhcp.server_id())
            .collect();
        ensure!(
            repliers == vec![Some(Kea::duid(&cfg1))],
            "Request {:06x} answered by {repliers:?}",
            req.dhcp.xid()
        );
    }
    Ok(())
}

/// RFC 6853 §5.2: relays "must support the ability to relay DHCPv6 messages
/// to more than one destination" — dhcrelay with `-u` twice, the client gets
/// its lease through it, and the Reply travels back as a Relay-reply.
/// Nested: a second relay between the first and the servers (RFC 9915 §19.1.2).
#[test]
fn kea_two_servers_through_nested_dhcrelay() -> Result<()> {
    let dir = TempDir::new("kea-relay")?;
    let clients = Segment::new("krc")?;
    let middle = Segment::new("krm")?;
    let servers = Segment::new("krs")?;
    let capture = Capture::start(servers.hub(), "br0", dir.path(), "servers")?;
    // relay 1: client link below, middle link above.
    let r1 = Netns::new("r1")?;
    clients.attach(&r1, "lower")?;
    middle.attach(&r1, "upper")?;
    r1.add_address("lower", "2001:db8:1:1::1/64")?;
    r1.add_address("upper", "2001:db8:ff01::1/64")?;
    // relay 2: middle link below, servers' link above.
    let r2 = Netns::new("r2")?;
    middle.attach(&r2, "lower")?;
    servers.attach(&r2, "upper")?;
    r2.add_address("lower", "2001:db8:ff01::2/64")?;
    r2.add_address("upper", "2001:db8:ff00::1/64")?;
    let s1 = node(&servers, "s1")?;
    let s2 = node(&servers, "s2")?;
    s1.add_address(IF, "2001:db8:ff00::11/64")?;
    s2.add_address(IF, "2001:db8:ff00::12/64")?;
    let cfg1 = figure1(255, "0b01", "2001:db8:1:1::/65", Some("2001:db8:ff00::11"));
    let cfg2 = figure1(
        0,
        "0b02",
        "2001:db8:1:1:8000::/65",
        Some("2001:db8:ff00::12"),
    );
    let _k1 = Kea::start(&s1, &cfg1, dir.path(), "kea1")?;
    let _k2 = Kea::start(&s2, &cfg2, dir.path(), "kea2")?;
    let _relay2 = Dhcrelay::start(
        &r2,
        "lower",
        &[
            ("2001:db8:ff00::11".parse()?, "upper"),
            ("2001:db8:ff00::12".parse()?, "upper"),
        ],
        dir.path(),
        "relay2",
    )?;
    let _relay1 = Dhcrelay::start(
        &r1,
        "lower",
        &[("2001:db8:ff01::2".parse()?, "upper")],
        dir.path(),
        "relay1",
    )?;
    let c1 = node(&clients, "c1")?;
    let mut client = Dhclient::start(&c1, IF, &dir.subdir("c1")?, Ask::Address)?;
    let lease = client.wait_bound(Duration::from_secs(20))?;
    ensure!(lease.server_id() == Some(Kea::duid(&cfg1)));
    client.stop()?;
    let packets = capture.finish()?;
    let nested = packets
        .iter()
        .find(|p| p.dhcp.msg_type() == MessageType::Request && p.dhcp.relays.len() == 2)
        .context("no doubly relayed Request on the servers' link")?;
    ensure!(
        nested.dhcp.relays[1].link_address == "2001:db8:1:1::1".parse::<std::net::Ipv6Addr>()?,
        "innermost relay's link-address is {}",
        nested.dhcp.relays[1].link_address
    );
    Ok(())
}
