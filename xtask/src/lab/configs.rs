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

/// What server `i` hands out on each link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pools {
    pub direct: LinkPools,
    pub relayed: LinkPools,
}

/// Split-style models give server `i` of `n` the `i`-th slice of every pool;
/// identical-prefix gives every server all of it (allocation is a pure function).
pub fn pools_for(opts: &LabOptions, i: usize) -> Pools {
    let (part, parts) = match opts.model.as_str() {
        "identical-prefix" | "standalone" => (0, 1),
        _ => (i - 1, opts.servers),
    };
    let link = |base: Ipv6Addr, pd_base: Ipv6Addr| {
        // Upper half of the /64: the lower half holds the lab's static addresses.
        let first = u128::from(base) | (1u128 << 63);
        let size = 1u128 << 63;
        let slice = size / parts as u128;
        let lo = first + slice * part as u128;
        let bits = (parts as u32).next_power_of_two().trailing_zeros() as u8;
        let pd_len = 40 + bits;
        let pd = u128::from(pd_base) + ((part as u128) << (128 - u32::from(pd_len)));
        LinkPools {
            na: vec![(Ipv6Addr::from(lo), Ipv6Addr::from(lo + slice - 1))],
            pd: vec![(Ipv6Addr::from(pd), pd_len, 56)],
        }
    };
    Pools {
        direct: link(
            LINK_DIRECT.0,
            Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0),
        ),
        relayed: link(
            LINK_RELAYED.0,
            Ipv6Addr::new(0x2001, 0xdb8, 0x200, 0, 0, 0, 0, 0),
        ),
    }
}

/// Server `i`'s DUID: DUID-UUID (type 4) with the server number in the last byte.
pub fn server_duid(i: usize) -> String {
    format!("0004d6d6d6d6000000000000000000000{:03x}", i)
}

pub fn write_all(lab: &Lab) -> Result<()> {
    for i in 1..=lab.opts.servers {
        std::fs::create_dir_all(lab.server_dir(i))?;
        write_dhcp6d(lab, i)?;
        write_kea(lab, i, 2)?;
    }
    Ok(())
}

fn write_dhcp6d(lab: &Lab, i: usize) -> Result<()> {
    let p = pools_for(&lab.opts, i);
    let sdir = lab.server_dir(i);
    let mut s = String::new();
    writeln!(
        s,
        "# Written by cargo xtask lab for server {i} of {}.",
        lab.opts.servers
    )?;
    writeln!(s, "[server]\ninterfaces = [\"eth0\"]\nio = \"socket\"")?;
    writeln!(s, "duid = \"{}\"", server_duid(i))?;
    // The first server is preferred, so clients settle on one when all answer.
    writeln!(s, "preference = {}", if i == 1 { 255 } else { 128 })?;
    writeln!(s, "state_dir = \"{}\"", sdir.join("state").display())?;
    writeln!(
        s,
        "control_socket = \"{}\"",
        lab.control_socket(i).display()
    )?;
    writeln!(s, "\n[redundancy]\nmodel = \"{}\"", lab.opts.model)?;
    writeln!(s, "allocation_key = \"{}\"", hex(&ALLOCATION_KEY))?;
    writeln!(
        s,
        "\n[lifetimes]\npreferred = 3000\nvalid = 4000\nt1 = 1000\nt2 = 2000"
    )?;
    for (link, lp, iface) in [
        (LINK_DIRECT, &p.direct, true),
        (LINK_RELAYED, &p.relayed, false),
    ] {
        writeln!(s, "\n[[subnet]]\nprefix = \"{}/{}\"", link.0, link.1)?;
        if iface {
            writeln!(s, "interface = \"eth0\"")?;
        }
        let na: Vec<String> = lp.na.iter().map(|(a, b)| format!("\"{a}-{b}\"")).collect();
        writeln!(s, "pools = [{}]", na.join(", "))?;
        let pd: Vec<String> = lp
            .pd
            .iter()
            .map(|(p, l, d)| format!("{{ prefix = \"{p}/{l}\", delegated_length = {d} }}"))
            .collect();
        writeln!(s, "pd_pools = [{}]", pd.join(", "))?;
        writeln!(s, "dns_servers = [\"2001:db8::53\"]")?;
    }
    std::fs::write(lab.dhcp6d_config(i), s).context("writing dhcp6d config")
}

/// Kea 2.2 with the same pools; memfile with persist on (durable leases, like
/// dhcp6d's journal) and multi-threading with `threads` packet threads.
pub fn write_kea(lab: &Lab, i: usize, threads: u32) -> Result<()> {
    let p = pools_for(&lab.opts, i);
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
        "subnet6": [ subnet(1, LINK_DIRECT, &p.direct, true), subnet(2, LINK_RELAYED, &p.relayed, false) ],
        "loggers": [ { "name": "kea-dhcp6", "severity": "WARN",
            "output_options": [ { "output": sdir.join("kea.log").display().to_string() } ] } ],
    }});
    std::fs::write(lab.kea_config(i), serde_json::to_string_pretty(&conf)?)
        .context("writing Kea config")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
