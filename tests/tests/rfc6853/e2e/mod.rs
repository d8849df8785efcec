//! Shared scenarios of the RFC 6853 end-to-end tests: the real `dhcp6d`
//! (configs from `dhcp6d plan`) against ISC dhclient, dhcpcd, dhcrelay, perfdhcp and
//! tshark in network namespaces. Each `e2e_*` module of the `rfc6853` test
//! binary (`tests/tests/rfc6853/e2e_*.rs`) runs them for one model. Lifetimes are short (RFC 6853 §6.1 advises short T1/T2) so
//! every scenario finishes in seconds.

pub mod dhcpcd;
pub mod failover;
pub mod paths;
pub mod preference;

use std::net::Ipv6Addr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use dhcp6d_tests::capture::Packet;
use dhcp6d_tests::dhcp6d::{test_io, ServerConfig};
use dhcproto::v6::MessageType;

/// The three models of RFC 6853 §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// §6.1: one /64 cut into a pool per server.
    Split,
    /// §6.2: a /64 per server, all on the link.
    Unique,
    /// §6.3: the same /64 and pool everywhere, same allocation function.
    Identical,
}

impl Model {
    /// The `--model` value of `dhcp6d plan`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Split => "split-prefix",
            Model::Unique => "unique-prefix",
            Model::Identical => "identical-prefix",
        }
    }

    /// The `--prefix` given to `dhcp6d plan` (RFC 6853's example prefixes).
    pub fn plan_prefix(self) -> &'static str {
        match self {
            Model::Unique => "2001:db8:1::/48",
            _ => "2001:db8:1:1::/64",
        }
    }

    /// Whether a surviving server keeps the client's address after a failure.
    pub fn keeps_address(self) -> bool {
        self == Model::Identical
    }

    /// PD pool of server `i` (0-based): disjoint per server except in the
    /// identical model, where every server has the same one.
    fn pd_pool(self, i: usize) -> String {
        match self {
            Model::Identical => "2001:db8:100::/40".into(),
            Model::Split => [
                "2001:db8:100::/41",
                "2001:db8:180::/41",
                "2001:db8:1c0::/42",
            ][i % 3]
                .into(),
            Model::Unique => format!("2001:db8:{}00::/40", i + 1),
        }
    }
}

/// Seconds: preferred, valid, T1, T2. T1/T2 short so a lost server is noticed
/// within seconds; preferred and valid close together (RFC 6853 §6.1: "setting
/// them equal (or nearly equal)").
pub const SHORT: (u32, u32, u32, u32) = (8, 10, 2, 3);
/// Lifetimes long enough that nothing renews during a scenario.
pub const LONG: (u32, u32, u32, u32) = (300, 400, 100, 200);

/// `dhcp6d plan` for `model` with `servers` servers, lifetimes set, each subnet
/// given a PD pool (delegated /56) — `plan` itself writes address pools only.
pub fn plan(
    model: Model,
    servers: usize,
    dir: &Path,
    lifetimes: (u32, u32, u32, u32),
) -> Result<Vec<ServerConfig>> {
    let mut cfgs = ServerConfig::plan(model.name(), model.plan_prefix(), servers, dir)
        .context("dhcp6d plan")?;
    for (i, cfg) in cfgs.iter_mut().enumerate() {
        let (p, v, t1, t2) = lifetimes;
        cfg.lifetimes(p, v, t1, t2);
        let pd = model.pd_pool(i);
        for s in cfg.subnets_mut() {
            let mut pool = toml::Table::new();
            pool.insert("prefix".into(), pd.clone().into());
            pool.insert("delegated_length".into(), 56.into());
            s.insert(
                "pd_pools".into(),
                toml::Value::Array(vec![toml::Value::Table(pool)]),
            );
        }
    }
    Ok(cfgs)
}

/// The I/O mode under test (`DHCP6D_TEST_IO`, default socket).
pub fn io() -> String {
    test_io()
}

/// Whether `addr` is inside one of `pools` ("prefix/len" or "first-last").
pub fn in_pools(addr: Ipv6Addr, pools: &[String]) -> bool {
    pools.iter().any(|p| in_range(u128::from(addr), p))
}

fn in_range(a: u128, pool: &str) -> bool {
    if let Some((first, last)) = pool.split_once('-') {
        let (Ok(f), Ok(l)) = (
            first.trim().parse::<Ipv6Addr>(),
            last.trim().parse::<Ipv6Addr>(),
        ) else {
            return false;
        };
        return a >= u128::from(f) && a <= u128::from(l);
    }
    let Some((net, len)) = pool.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(len)) = (net.parse::<Ipv6Addr>(), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    a & mask == u128::from(net) & mask
}

/// Whether delegated prefix `(p, len)` lies inside PD pool `pool` ("prefix/len").
pub fn prefix_in_pool(p: Ipv6Addr, len: u8, pool: &str) -> bool {
    let pool_len: u8 = pool
        .rsplit('/')
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(129);
    len >= pool_len && in_range(u128::from(p), pool)
}

/// A counter from `dhcp6d stats --json` (`section.key`), failing loudly if absent.
pub fn counter(stats: &serde_json::Value, section: &str, key: &str) -> Result<u64> {
    stats[section][key]
        .as_u64()
        .with_context(|| format!("stats has no {section}.{key}: {stats}"))
}

/// For every Request in the capture: the Server IDs of the Replies with its
/// transaction id. RFC 9915 §16: a server discards a Request whose Server
/// Identifier is not its own, so each list must hold exactly the chosen server.
pub fn repliers_per_request(packets: &[Packet]) -> Vec<(u32, Option<String>, Vec<Option<String>>)> {
    packets
        .iter()
        .filter(|p| p.dhcp.msg_type() == MessageType::Request)
        .map(|req| {
            let repliers = packets
                .iter()
                .filter(|p| {
                    p.dhcp.msg_type() == MessageType::Reply && p.dhcp.xid() == req.dhcp.xid()
                })
                .map(|p| p.dhcp.server_id())
                .collect();
            (req.dhcp.xid(), req.dhcp.server_id(), repliers)
        })
        .collect()
}

/// Fails unless each Request was answered by exactly the server it named.
pub fn only_chosen_server_replied(packets: &[Packet]) -> Result<usize> {
    let per = repliers_per_request(packets);
    if per.is_empty() {
        bail!("the capture holds no Request");
    }
    for (xid, chosen, repliers) in &per {
        if repliers.len() != 1 || &repliers[0] != chosen {
            bail!("Request {xid:06x} to {chosen:?} was answered by {repliers:?}");
        }
    }
    Ok(per.len())
}
