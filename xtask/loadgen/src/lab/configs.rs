//! Server configs of the lab: dhcp6d TOML (as in shared/CONTRACT.md) and Kea JSON
//! describing the same pools, so the two servers are measured on equal terms.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use anyhow::{Context, Result};

use super::{Lab, LabOptions};

/// The shared link (clients, relay's upper side, servers).
pub const LINK_DIRECT: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0), 64);
/// The link behind the relay.
pub const LINK_RELAYED: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0), 64);
/// The allocation key every lab server shares (identical-prefix needs one key).
pub const ALLOCATION_KEY: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];

/// One link's pools as served by one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPools {
    /// Inclusive address ranges (IA_NA).
    pub na: Vec<(Ipv6Addr, Ipv6Addr)>,
    /// (pool prefix, pool length, delegated length) for IA_PD.
    pub pd: Vec<(Ipv6Addr, u8, u8)>,
}

/// What server `i` hands out on each link, read back from its dhcp6d config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pools {
    pub direct: LinkPools,
    pub relayed: LinkPools,
    /// Subnet prefixes of the direct and the relayed subnet.
    pub direct_subnet: (Ipv6Addr, u8),
    pub relayed_subnet: (Ipv6Addr, u8),
}

/// The lab's own split of a link when `dhcp6d plan` does not cover it: split
/// models give server `i` of `n` the `i`-th slice of the upper half of the /64
/// (the lower half holds the lab's static addresses); identical-prefix and
/// standalone give every server all of it.
fn own_pools(opts: &LabOptions, i: usize, base: Ipv6Addr) -> Vec<(Ipv6Addr, Ipv6Addr)> {
    let (part, parts) = split_of(opts, i);
    let first = u128::from(base) | (1u128 << 63);
    let slice = (1u128 << 63) / parts as u128;
    let lo = first + slice * part as u128;
    vec![(Ipv6Addr::from(lo), Ipv6Addr::from(lo + slice - 1))]
}

fn split_of(opts: &LabOptions, i: usize) -> (usize, usize) {
    match opts.model.as_str() {
        "identical-prefix" | "standalone" => (0, 1),
        _ => (i - 1, opts.servers),
    }
}

/// PD pools are the lab's (plan does not write any): a /40 per link, split like the addresses.
fn pd_pools(opts: &LabOptions, i: usize, pd_base: Ipv6Addr) -> Vec<(Ipv6Addr, u8, u8)> {
    let (part, parts) = split_of(opts, i);
    let bits = (parts as u32).next_power_of_two().trailing_zeros() as u8;
    let pd_len = 40 + bits;
    let pd = u128::from(pd_base) + ((part as u128) << (128 - u32::from(pd_len)));
    vec![(Ipv6Addr::from(pd), pd_len, 56)]
}

const PD_DIRECT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
const PD_RELAYED: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x200, 0, 0, 0, 0, 0);

/// Server `i`'s DUID: DUID-UUID (type 4) with the server number in the last byte.
pub fn server_duid(i: usize) -> String {
    format!("0004d6d6d6d6000000000000000000000{:03x}", i)
}

pub fn write_all(lab: &Lab) -> Result<()> {
    let plan = plan_files(lab)?;
    for i in 1..=lab.opts.servers {
        std::fs::create_dir_all(lab.server_dir(i))?;
        let text = match &plan {
            Some((d, r)) => compose(lab, i, &d[i - 1], r.get(i - 1).map_or("", String::as_str))?,
            None => own_config(lab, i)?,
        };
        std::fs::write(lab.dhcp6d_config(i), text).context("writing dhcp6d config")?;
        write_kea(lab, i, 2)?;
    }
    Ok(())
}

/// `dhcp6d plan` for the direct and the relayed link, when the model is one of
/// RFC 6853's and the binary is built; `None` otherwise (the lab writes its own).
fn plan_files(lab: &Lab) -> Result<Option<(Vec<String>, Vec<String>)>> {
    let model = lab.opts.model.as_str();
    if !matches!(model, "split-prefix" | "identical-prefix" | "unique-prefix") {
        return Ok(None);
    }
    let Ok(bin) = lab.dhcp6d_bin() else {
        return Ok(None);
    };
    let mut links = Vec::new();
    // unique-prefix carves one /64 per server out of a shorter prefix.
    let direct = if model == "unique-prefix" {
        "2001:db8:1:100::/56"
    } else {
        "2001:db8:1:1::/64"
    };
    // unique-prefix: the relayed link gets the lab's own split (see `compose`),
    // and plan would refuse its /64 (it carves /64s out of a shorter prefix).
    let links_to_plan: &[(&str, &str)] = if model == "unique-prefix" {
        &[("direct", direct)]
    } else {
        &[("direct", direct), ("relayed", "2001:db8:1:2::/64")]
    };
    for &(name, prefix) in links_to_plan {
        let dir = lab.dir.join(format!("plan-{name}"));
        let n = lab.opts.servers.to_string();
        let out = std::process::Command::new(&bin)
            .args([
                "plan",
                "--model",
                model,
                "--prefix",
                prefix,
                "--servers",
                &n,
                "--allocation-key",
                &hex(&ALLOCATION_KEY),
            ])
            .arg("--out")
            .arg(&dir)
            .output()
            .context("running dhcp6d plan")?;
        if !out.status.success() {
            anyhow::bail!(
                "dhcp6d plan: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let files = (1..=lab.opts.servers)
            .map(|k| std::fs::read_to_string(dir.join(format!("server{k}.toml"))))
            .collect::<std::io::Result<Vec<_>>>()?;
        links.push(files);
    }
    let direct = links.remove(0);
    let relayed = links.pop().unwrap_or_default();
    Ok(Some((direct, relayed)))
}

/// The lab's additions to plan's files: its own I/O mode, DUID, state paths and
/// PD pools; the relayed link's subnet appended (without an interface).
fn compose(lab: &Lab, i: usize, direct: &str, relayed: &str) -> Result<String> {
    let mut s = String::new();
    for line in direct.lines() {
        // split-prefix plan files carry no key (derived from each server's DUID);
        // the lab passes one for identical-prefix only.
        if line.starts_with("allocation_key") && lab.opts.model != "identical-prefix" {
            continue;
        }
        writeln!(s, "{line}")?;
        if line == "[server]" {
            server_lines(lab, i, &mut s)?;
        }
    }
    pd_line(&mut s, &pd_pools(&lab.opts, i, PD_DIRECT))?;
    writeln!(
        s,
        "\n# The link behind the relay (selected by the relay's link-address)."
    )?;
    if lab.opts.model == "unique-prefix" {
        // plan's unique prefixes are not on the relayed link; use the lab's split of it.
        subnet_block(
            &mut s,
            LINK_RELAYED,
            &own_pools(&lab.opts, i, LINK_RELAYED.0),
            None,
        )?;
    } else {
        let sub = relayed
            .find("[[subnet]]")
            .context("plan wrote no [[subnet]]")?;
        for line in relayed[sub..]
            .lines()
            .filter(|l| !l.starts_with("interface"))
        {
            writeln!(s, "{line}")?;
        }
    }
    pd_line(&mut s, &pd_pools(&lab.opts, i, PD_RELAYED))?;
    Ok(s)
}

fn server_lines(lab: &Lab, i: usize, s: &mut String) -> Result<()> {
    writeln!(s, "io = \"socket\"")?;
    writeln!(s, "duid = \"{}\"", server_duid(i))?;
    writeln!(
        s,
        "state_dir = \"{}\"",
        lab.server_dir(i).join("state").display()
    )?;
    writeln!(
        s,
        "control_socket = \"{}\"",
        lab.control_socket(i).display()
    )?;
    Ok(())
}

fn pd_line(s: &mut String, pd: &[(Ipv6Addr, u8, u8)]) -> Result<()> {
    let pd: Vec<String> = pd
        .iter()
        .map(|(p, l, d)| format!("{{ prefix = \"{p}/{l}\", delegated_length = {d} }}"))
        .collect();
    writeln!(s, "pd_pools = [{}]", pd.join(", "))?;
    Ok(())
}

fn subnet_block(
    s: &mut String,
    link: (Ipv6Addr, u8),
    na: &[(Ipv6Addr, Ipv6Addr)],
    iface: Option<&str>,
) -> Result<()> {
    writeln!(s, "\n[[subnet]]\nprefix = \"{}/{}\"", link.0, link.1)?;
    if let Some(i) = iface {
        writeln!(s, "interface = \"{i}\"")?;
    }
    let na: Vec<String> = na.iter().map(|(a, b)| format!("\"{a}-{b}\"")).collect();
    writeln!(s, "pools = [{}]", na.join(", "))?;
    Ok(())
}

/// The lab's own config (standalone, or no dhcp6d binary to run plan with).
fn own_config(lab: &Lab, i: usize) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "# Written by cargo xtask lab for server {i} of {}.",
        lab.opts.servers
    )?;
    writeln!(s, "[server]\ninterfaces = [\"eth0\"]")?;
    server_lines(lab, i, &mut s)?;
    // The first server is preferred, so clients settle on one when all answer.
    writeln!(s, "preference = {}", if i == 1 { 255 } else { 128 })?;
    writeln!(s, "\n[redundancy]\nmodel = \"{}\"", lab.opts.model)?;
    writeln!(s, "allocation_key = \"{}\"", hex(&ALLOCATION_KEY))?;
    writeln!(
        s,
        "\n[lifetimes]\npreferred = 3000\nvalid = 4000\nt1 = 1000\nt2 = 2000"
    )?;
    subnet_block(
        &mut s,
        LINK_DIRECT,
        &own_pools(&lab.opts, i, LINK_DIRECT.0),
        Some("eth0"),
    )?;
    pd_line(&mut s, &pd_pools(&lab.opts, i, PD_DIRECT))?;
    subnet_block(
        &mut s,
        LINK_RELAYED,
        &own_pools(&lab.opts, i, LINK_RELAYED.0),
        None,
    )?;
    pd_line(&mut s, &pd_pools(&lab.opts, i, PD_RELAYED))?;
    Ok(s)
}

/// Read a server's pools back from its dhcp6d config (the one source of truth:
/// Kea's config and the load generator's checks are derived from it).
pub fn read_pools(path: &std::path::Path) -> Result<Pools> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut direct = None;
    let mut relayed = None;
    for sub in v
        .get("subnet")
        .and_then(|s| s.as_array())
        .context("no [[subnet]]")?
    {
        let prefix = parse_net(
            sub.get("prefix")
                .and_then(|p| p.as_str())
                .context("subnet without prefix")?,
        )?;
        let mut lp = LinkPools {
            na: Vec::new(),
            pd: Vec::new(),
        };
        for p in sub
            .get("pools")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            lp.na
                .push(parse_range(p.as_str().context("pool is not a string")?)?);
        }
        for p in sub
            .get("pd_pools")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let (a, l) = parse_net(
                p.get("prefix")
                    .and_then(|x| x.as_str())
                    .context("pd pool prefix")?,
            )?;
            let d = p
                .get("delegated_length")
                .and_then(|x| x.as_integer())
                .context("delegated_length")?;
            lp.pd.push((a, l, d as u8));
        }
        let slot = if sub.get("interface").is_some() {
            &mut direct
        } else {
            &mut relayed
        };
        *slot = Some((prefix, lp));
    }
    let (direct_subnet, direct) = direct.context("no subnet with an interface (direct clients)")?;
    let (relayed_subnet, relayed) =
        relayed.context("no subnet without an interface (relayed clients)")?;
    Ok(Pools {
        direct,
        relayed,
        direct_subnet,
        relayed_subnet,
    })
}

fn parse_net(s: &str) -> Result<(Ipv6Addr, u8)> {
    let (a, l) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is not PREFIX/LEN"))?;
    Ok((a.parse()?, l.parse()?))
}

/// `FIRST-LAST` or `PREFIX/LEN` as an inclusive range.
pub fn parse_range(s: &str) -> Result<(Ipv6Addr, Ipv6Addr)> {
    if let Some((a, b)) = s.split_once('-') {
        return Ok((a.trim().parse()?, b.trim().parse()?));
    }
    let (a, len) = parse_net(s)?;
    let a = u128::from(a);
    let host = if len >= 128 { 0 } else { u128::MAX >> len };
    Ok(((a & !host).into(), (a | host).into()))
}

/// Kea 2.2 with the same pools; memfile with persist on (durable leases, like
/// dhcp6d's journal) and multi-threading with `threads` packet threads;
/// Rapid Commit in every subnet when [`Lab::kea_rapid_commit`] is set.
pub fn write_kea(lab: &Lab, i: usize, threads: u32) -> Result<()> {
    let p = read_pools(&lab.dhcp6d_config(i))?;
    let sdir = lab.server_dir(i);
    let subnet = |id: u32, link: (Ipv6Addr, u8), lp: &LinkPools, iface: bool| {
        let mut v = serde_json::json!({
            "id": id,
            "subnet": format!("{}/{}", link.0, link.1),
            "pools": lp.na.iter().map(|(a, b)| serde_json::json!({"pool": format!("{a} - {b}")})).collect::<Vec<_>>(),
            "pd-pools": lp.pd.iter().map(|(p, l, d)| serde_json::json!({
                "prefix": p.to_string(), "prefix-len": l, "delegated-len": d})).collect::<Vec<_>>(),
        });
        if iface {
            v["interface"] = "eth0".into();
        }
        if lab.kea_rapid_commit {
            v["rapid-commit"] = true.into();
        }
        v
    };
    let duid = server_duid(i);
    let conf = serde_json::json!({ "Dhcp6": {
        // "eth0/ADDR": Kea answers unicast (what the relay sends) only on a listed address.
        "interfaces-config": { "interfaces": [format!("eth0/{}", lab.server_addr(i))] },
        "data-directory": sdir.display().to_string(),
        "server-id": { "type": "EN", "enterprise-id": 0xd6d6, "identifier": &duid[duid.len() - 8..], "persist": false },
        "lease-database": { "type": "memfile", "persist": true,
            "name": sdir.join("kea-leases6.csv").display().to_string(), "lfc-interval": 0 },
        "multi-threading": { "enable-multi-threading": threads > 0,
            "thread-pool-size": threads.max(1), "packet-queue-size": 64 },
        "preferred-lifetime": 3000, "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
        "option-data": [ { "name": "dns-servers", "data": "2001:db8::53" } ],
        "subnet6": [ subnet(1, p.direct_subnet, &p.direct, true), subnet(2, p.relayed_subnet, &p.relayed, false) ],
        "loggers": [ { "name": "kea-dhcp6", "severity": "WARN",
            "output_options": [ { "output": sdir.join("kea.log").display().to_string() } ] } ],
    }});
    std::fs::write(lab.kea_config(i), serde_json::to_string_pretty(&conf)?)
        .context("writing Kea config")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
