//! One client's move to the surviving server of an RFC 6853 §6.1 split-prefix
//! pair when the preferred server crashes, with a dhcp6d pair or a Kea pair
//! configured alike (hand-written configs, not `dhcp6d plan`; no Rapid
//! Commit). The RFC 6853 failover-timing test asserts on what it returns
//! (how the client got its new lease), `cargo xtask bench failover` on when.
//!
//! Server 1 (preference 255) hands out `2001:db8:1:1::/65`, server 2
//! (preference 0) `2001:db8:1:1:8000::/65`; one ISC dhclient asks for an
//! address, binds to server 1, and server 1 gets SIGKILL.

use std::net::Ipv6Addr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::capture::{Capture, Packet};
use crate::dhclient::{Ask, Dhclient, LeaseEvent};
use crate::dhcp6d::{Dhcp6d, ServerConfig};
use crate::kea::{Kea, KeaConfig};
use crate::netns::{Netns, Segment, BRIDGE};
use crate::tempdir::TempDir;
use crate::topology::{node, IF};
use crate::{Error, Result};

/// The link's prefix.
pub const PREFIX: &str = "2001:db8:1:1::/64";
/// Each server's pool, server 1 first.
pub const POOLS: [&str; 2] = ["2001:db8:1:1::/65", "2001:db8:1:1:8000::/65"];

/// Lifetimes in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// T1.
    pub t1: u32,
    /// T2.
    pub t2: u32,
    /// Preferred lifetime.
    pub preferred: u32,
    /// Valid lifetime.
    pub valid: u32,
}

/// The lifetimes of issue 13's lab (T1 4, T2 6, preferred 9, valid 12).
pub const ISSUE_LIFETIMES: Lifetimes = Lifetimes {
    t1: 4,
    t2: 6,
    preferred: 9,
    valid: 12,
};

/// Which pair of servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pair {
    /// Two `dhcp6d serve` with `--io IO` and `server.rebind_creates_bindings`.
    Dhcp6d {
        /// `socket` or `xdp`.
        io: String,
        /// `server.rebind_creates_bindings` on both.
        rebind_creates_bindings: bool,
    },
    /// Two kea-dhcp6 (memfile, not persisted).
    Kea,
}

/// The hand-written config of dhcp6d server `i` (0 or 1) of the pair.
pub fn dhcp6d_config(
    i: usize,
    l: Lifetimes,
    rebind_creates_bindings: bool,
) -> Result<ServerConfig> {
    let preference = if i == 0 { 255 } else { 0 };
    let text = format!(
        r#"[server]
interfaces = ["{IF}"]
preference = {preference}
rebind_creates_bindings = {rebind_creates_bindings}

[redundancy]
model = "split-prefix"

[lifetimes]
preferred = {}
valid = {}
t1 = {}
t2 = {}

[[subnet]]
prefix = "{PREFIX}"
interface = "{IF}"
pools = ["{}"]
"#,
        l.preferred, l.valid, l.t1, l.t2, POOLS[i]
    );
    ServerConfig::parse(&text, &format!("split-prefix server {}", i + 1))
}

fn kea_config(i: usize, l: Lifetimes) -> KeaConfig {
    KeaConfig {
        interface: IF.into(),
        preference: if i == 0 { 255 } else { 0 },
        server_id: format!("0c0{}", i + 1),
        subnets: vec![(PREFIX.into(), POOLS[i].into())],
        pd_pool: None,
        relayed: None,
        lifetimes: (l.preferred, l.valid, l.t1, l.t2),
    }
}

/// What one failover run saw.
#[derive(Debug)]
pub struct Outcome {
    /// When SIGKILL was sent (seconds since the epoch).
    pub killed_at: f64,
    /// The lease the client held from server 1.
    pub before: LeaseEvent,
    /// The first script call after the kill in which the client holds an
    /// address of the survivor's pool granted by the survivor.
    pub recovered: LeaseEvent,
    /// Every script call between the kill and `recovered` (not included).
    pub between: Vec<LeaseEvent>,
    /// The survivor's DUID (plain hex).
    pub survivor: String,
    /// Every DHCPv6 message on the link.
    pub packets: Vec<Packet>,
    /// The survivor's `dhcp6d stats --json` at the end (dhcp6d pairs only).
    pub survivor_stats: Option<serde_json::Value>,
}

impl Outcome {
    /// Seconds from the kill to the client holding the survivor's address.
    pub fn recovery_s(&self) -> f64 {
        self.recovered.time - self.killed_at
    }

    /// The Replies on the wire to the client's Rebinds, with the Rebind's
    /// transaction id.
    pub fn rebind_replies(&self) -> Vec<&Packet> {
        let rebinds: Vec<u32> = self
            .packets
            .iter()
            .filter(|p| p.dhcp.msg_type() == dhcproto::v6::MessageType::Rebind)
            .map(|p| p.dhcp.xid())
            .collect();
        self.packets
            .iter()
            .filter(|p| {
                p.dhcp.msg_type() == dhcproto::v6::MessageType::Reply
                    && rebinds.contains(&p.dhcp.xid())
            })
            .collect()
    }
}

/// Whether `a` is in the survivor's pool.
pub fn in_survivor_pool(a: Ipv6Addr) -> bool {
    a.segments()[4] & 0x8000 != 0
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

enum Running {
    Dhcp6d(Vec<Dhcp6d>),
    Kea(Vec<Kea>),
}

/// Runs the scenario once: both servers up (the survivor first, so the
/// client cannot have bound to it by a race), one dhclient bound to server
/// 1, SIGKILL of server 1, and waits (up to valid + 15 s) for the client to
/// hold an address of the survivor's pool from the survivor.
pub fn run(pair: &Pair, l: Lifetimes, tag: &str) -> Result<Outcome> {
    let dir = TempDir::new(tag)?;
    let link = Segment::new(tag)?;
    let capture = Capture::start(link.hub(), BRIDGE, dir.path(), "link")?;
    let nodes: Vec<Netns> = (0..2)
        .map(|i| node(&link, &format!("s{}", i + 1)))
        .collect::<Result<_>>()?;
    let mut duids = Vec::new();
    let mut servers = match pair {
        Pair::Dhcp6d {
            io,
            rebind_creates_bindings,
        } => {
            let mut v = Vec::new();
            for i in [1, 0] {
                let mut cfg = dhcp6d_config(i, l, *rebind_creates_bindings)?;
                cfg.direct_on(IF);
                let name = format!("s{}", i + 1);
                v.push(Dhcp6d::start(
                    &nodes[i],
                    &cfg,
                    &dir.subdir(&name)?,
                    &name,
                    io,
                )?);
            }
            v.reverse();
            for s in &v {
                duids.push(s.duid()?);
            }
            Running::Dhcp6d(v)
        }
        Pair::Kea => {
            let mut v = Vec::new();
            for i in [1, 0] {
                let cfg = kea_config(i, l);
                v.push(Kea::start(
                    &nodes[i],
                    &cfg,
                    dir.path(),
                    &format!("kea{}", i + 1),
                )?);
            }
            v.reverse();
            duids = (0..2).map(|i| Kea::duid(&kea_config(i, l))).collect();
            Running::Kea(v)
        }
    };
    let c1 = node(&link, "c1")?;
    let mut client = Dhclient::start(&c1, IF, &dir.subdir("c1")?, Ask::Address)?;
    let before = client.wait_bound(Duration::from_secs(20))?;
    if before.server_id().as_deref() != Some(duids[0].as_str()) {
        return Err(Error::Parse {
            what: "the client's first lease".into(),
            detail: format!(
                "bound to {:?}, expected the preference-255 server {}",
                before.server_id(),
                duids[0]
            ),
        });
    }
    let skip = client.events()?.len();
    let killed_at = epoch_now();
    match &mut servers {
        Running::Dhcp6d(v) => drop(v[0].kill()?),
        Running::Kea(v) => v[0].kill()?,
    }
    let survivor = duids[1].clone();
    let want = survivor.clone();
    let recovered = client.wait_event(
        "an address of the survivor's pool from the survivor",
        skip,
        Duration::from_secs(u64::from(l.valid) + 15),
        move |e| {
            e.is_bound()
                && e.server_id().as_deref() == Some(want.as_str())
                && e.address().is_some_and(in_survivor_pool)
        },
    )?;
    let between = client
        .events()?
        .into_iter()
        .skip(skip)
        .take_while(|e| !(e.time == recovered.time && e.vars == recovered.vars))
        .collect();
    client.stop()?;
    let survivor_stats = match &servers {
        Running::Dhcp6d(v) => Some(v[1].stats()?),
        Running::Kea(_) => None,
    };
    let packets = capture.finish()?;
    Ok(Outcome {
        killed_at,
        before,
        recovered,
        between,
        survivor,
        packets,
        survivor_stats,
    })
}
