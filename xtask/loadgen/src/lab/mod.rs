//! The namespace lab: clients, an optional relay and N servers on one bridged link.
//!
//! Topology (every name is prefixed with the lab name, default `d6lab`):
//!
//! ```text
//!   NAME-cl  eth0 ──┐                      ┌── eth0 NAME-s1   (2001:db8:1:1::11)
//!   (::100)         ├── br0 in NAME-sw ────┼── eth0 NAME-s2   (2001:db8:1:1::12)
//!   NAME-rl  up0  ──┘  (no MLD snooping:   └── ...
//!   (::2)  down0 ── eth0 NAME-cr            multicast floods to every server)
//!   (2001:db8:1:2::1)   (2001:db8:1:2::100, clients behind the relay, `--relay` only)
//! ```
//!
//! The lab owns namespaces, links, addresses, configs and the processes it starts
//! (servers, relay); it never touches the host's own namespace. `down` removes all
//! of it and is safe to run any number of times.

mod configs;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dhcp6d_tests::netns::{self, Netns};

pub use configs::{
    parse_range, read_pools, server_duid, LinkPools, Pools, ALLOCATION_KEY, LINK_DIRECT,
    LINK_RELAYED,
};

/// What to build.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Prefix of every namespace name; labs with different names coexist.
    pub name: String,
    /// Number of server namespaces.
    pub servers: usize,
    /// RFC 6853 model of the generated configs.
    pub model: String,
    /// Add a relay namespace running ISC dhcrelay, with its own client namespace.
    pub relay: bool,
    /// The dhcp6d executable (default: `$DHCP6D_BIN`, else the workspace's build).
    pub dhcp6d: Option<PathBuf>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            name: "d6lab".into(),
            servers: 1,
            model: "standalone".into(),
            relay: false,
            dhcp6d: None,
        }
    }
}

/// Which server software runs in a server namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// ISC Kea 2.2 `kea-dhcp6` with `threads` packet threads (0: multi-threading off).
    Kea { threads: u32 },
    /// Our `dhcp6d serve` with the given `--io` backend ("socket" or "xdp").
    Dhcp6d { io: &'static str },
}

/// A lab that is up. Dropping it takes it down unless [`Lab::persist`] was called.
pub struct Lab {
    pub opts: LabOptions,
    /// Configs, state directories, logs and pid files.
    pub dir: PathBuf,
    persist: bool,
    /// Every namespace of the lab, by name.
    namespaces: BTreeMap<String, Netns>,
    children: Vec<(usize, Child)>,
    relay: Option<Child>,
    /// Kea's subnets get `"rapid-commit": true` (off by default, as in Kea):
    /// set before [`Lab::start_server`] with [`ServerKind::Kea`].
    pub kea_rapid_commit: bool,
}

impl Lab {
    /// Build the lab from scratch (taking down any earlier lab of the same name first).
    pub fn up(opts: LabOptions) -> Result<Lab> {
        if opts.servers == 0 || opts.servers > 16 {
            bail!("--servers must be 1..=16, got {}", opts.servers);
        }
        if opts.name.len() > 10 || !opts.name.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!(
                "lab name {:?} must be 1..=10 ASCII letters or digits",
                opts.name
            );
        }
        down_by_name(&opts.name)?;
        let dir = lab_dir(&opts.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut lab = Lab {
            opts,
            dir,
            persist: false,
            namespaces: BTreeMap::new(),
            children: Vec::new(),
            relay: None,
            kea_rapid_commit: false,
        };
        let o = &lab.opts;
        let desc = serde_json::json!({"name": o.name, "servers": o.servers, "model": o.model, "relay": o.relay});
        std::fs::write(lab.dir.join("lab.json"), desc.to_string())?;
        lab.build_network()?;
        configs::write_all(&lab)?;
        Ok(lab)
    }

    /// Keep the lab after this value is dropped (the CLI's `lab up`).
    pub fn persist(mut self) {
        self.persist = true;
        // Children keep running; their pids are in the namespaces `down` kills.
        self.children.clear();
        self.relay = None;
        for (_, ns) in std::mem::take(&mut self.namespaces) {
            ns.persist();
        }
    }

    /// Stop every process, delete every namespace of this lab and its files.
    pub fn down(&mut self) -> Result<()> {
        self.take_down()?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }

    /// Processes and namespaces only: the files (server logs) stay.
    fn take_down(&mut self) -> Result<()> {
        for (_, mut c) in self.children.drain(..) {
            stop_child(&mut c);
        }
        if let Some(mut c) = self.relay.take() {
            stop_child(&mut c);
        }
        // Dropping a namespace kills what runs in it and deletes it.
        self.namespaces.clear();
        down_by_name(&self.opts.name)
    }

    pub fn ns_switch(&self) -> String {
        format!("{}-sw", self.opts.name)
    }
    /// Namespace of the directly attached clients (where the load generator runs).
    pub fn ns_client(&self) -> String {
        format!("{}-cl", self.opts.name)
    }
    /// Namespace of the clients behind the relay (`--relay` only).
    pub fn ns_relayed_client(&self) -> String {
        format!("{}-cr", self.opts.name)
    }
    pub fn ns_relay(&self) -> String {
        format!("{}-rl", self.opts.name)
    }
    /// Server namespaces are numbered from 1.
    pub fn ns_server(&self, i: usize) -> String {
        format!("{}-s{i}", self.opts.name)
    }
    /// The unicast address of server `i` on the shared link.
    pub fn server_addr(&self, i: usize) -> Ipv6Addr {
        server_addr(i)
    }
    /// The client namespace's global address on the shared link.
    pub fn client_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(LINK_DIRECT.0) + 0x100)
    }
    /// Per-server directory: config files, state, logs.
    pub fn server_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("s{i}"))
    }
    pub fn dhcp6d_config(&self, i: usize) -> PathBuf {
        self.server_dir(i).join("dhcp6d.toml")
    }
    pub fn kea_config(&self, i: usize) -> PathBuf {
        self.server_dir(i).join("kea-dhcp6.json")
    }
    pub fn control_socket(&self, i: usize) -> PathBuf {
        self.server_dir(i).join("control.sock")
    }
    /// The pools server `i` hands out (what the load generator checks against).
    pub fn pools(&self, i: usize) -> Result<Pools> {
        configs::read_pools(&self.dhcp6d_config(i))
    }

    /// A command that runs `program` inside namespace `ns`.
    pub fn netns_cmd(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Start a server in namespace `i` and wait until it is serving.
    /// Returns its pid (the server process itself: `ip netns exec` execs it).
    pub fn start_server(&mut self, i: usize, kind: ServerKind) -> Result<u32> {
        self.stop_server(i);
        let sdir = self.server_dir(i);
        let log = std::fs::File::create(sdir.join("server.log"))?;
        let mut cmd = match kind {
            ServerKind::Kea { threads } => {
                configs::write_kea(self, i, threads)?;
                let _ = std::fs::remove_file(sdir.join("kea-leases6.csv"));
                let mut c = Self::netns_cmd(&self.ns_server(i), "kea-dhcp6");
                c.arg("-c").arg(self.kea_config(i));
                c.env("KEA_LOCKFILE_DIR", &sdir)
                    .env("KEA_PIDFILE_DIR", &sdir);
                c
            }
            ServerKind::Dhcp6d { io } => {
                let state = sdir.join("state");
                let _ = std::fs::remove_dir_all(&state);
                std::fs::create_dir_all(&state)?;
                let mut c = Self::netns_cmd(&self.ns_server(i), &self.dhcp6d_bin()?);
                c.arg("serve")
                    .arg("-c")
                    .arg(self.dhcp6d_config(i))
                    .args(["--io", io]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(sdir.join("server.log")).unwrap_or_default();
                bail!("server {i} ({kind:?}) exited with {status} while starting:\n{log}");
            }
            let ready = match kind {
                ServerKind::Kea { .. } => udp_port_bound(pid, 547),
                ServerKind::Dhcp6d { .. } => control_answers(&self.control_socket(i)),
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                stop_child(&mut child);
                bail!(
                    "server {i} ({kind:?}) not ready after 15 s; log in {}",
                    sdir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children.push((i, child));
        Ok(pid)
    }

    /// Stop server `i` if this lab started it (SIGTERM, then SIGKILL after 5 s).
    pub fn stop_server(&mut self, i: usize) {
        while let Some(pos) = self.children.iter().position(|(n, _)| *n == i) {
            let (_, mut c) = self.children.remove(pos);
            stop_child(&mut c);
        }
    }

    /// The dhcp6d executable this lab runs (and plans configs with).
    pub fn dhcp6d_bin(&self) -> Result<String> {
        match &self.opts.dhcp6d {
            Some(p) => Ok(p.display().to_string()),
            None => dhcp6d_binary(),
        }
    }

    /// Pid of server `i` if running.
    pub fn server_pid(&self, i: usize) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| *n == i)
            .map(|(_, c)| c.id())
    }

    fn build_network(&mut self) -> Result<()> {
        let sw = self.ns_switch();
        let mut all = vec![sw.clone(), self.ns_client()];
        if self.opts.relay {
            all.push(self.ns_relay());
            all.push(self.ns_relayed_client());
        }
        all.extend((1..=self.opts.servers).map(|i| self.ns_server(i)));
        for name in all {
            // Addresses are usable at once: the helper turns DAD off.
            let ns = Netns::named(&name)?;
            self.namespaces.insert(name, ns);
        }
        let ip = |ns: &str, args: &[&str]| -> Result<()> {
            self.ns(ns)?.ip(args)?;
            Ok(())
        };
        ip(&sw, &["link", "add", "br0", "type", "bridge"])?;
        // Without snooping the bridge floods multicast: every server sees each Solicit.
        ip(
            &sw,
            &[
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;
        ip(&sw, &["link", "set", "br0", "up"])?;

        let direct = LINK_DIRECT.0;
        self.port(&self.ns_client(), "cl", "eth0")?;
        self.addr(&self.ns_client(), "eth0", self.client_addr())?;
        for i in 1..=self.opts.servers {
            let ns = self.ns_server(i);
            self.port(&ns, &format!("s{i}"), "eth0")?;
            self.addr(&ns, "eth0", self.server_addr(i))?;
        }
        if self.opts.relay {
            let rl = self.ns_relay();
            let cr = self.ns_relayed_client();
            self.port(&rl, "rl", "up0")?;
            self.addr(&rl, "up0", Ipv6Addr::from(u128::from(direct) + 2))?;
            ip(
                &rl,
                &[
                    "link", "add", "down0", "type", "veth", "peer", "name", "eth0", "netns", &cr,
                ],
            )?;
            ip(&rl, &["link", "set", "down0", "up"])?;
            ip(&cr, &["link", "set", "eth0", "up"])?;
            let relayed = u128::from(LINK_RELAYED.0);
            self.addr(&rl, "down0", Ipv6Addr::from(relayed + 1))?;
            self.addr(&cr, "eth0", Ipv6Addr::from(relayed + 0x100))?;
            self.ns(&rl)?
                .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
            // Servers answer Relay-repl to the relay's address on the shared link;
            // clients behind the relay reach servers only through it.
            for i in 1..=self.opts.servers {
                let r = format!("{}/{}", Ipv6Addr::from(relayed), LINK_RELAYED.1);
                let via = Ipv6Addr::from(u128::from(direct) + 2).to_string();
                ip(&self.ns_server(i), &["route", "add", &r, "via", &via])?;
            }
            self.start_relay()?;
        }
        Ok(())
    }

    /// The lab's namespace `name`.
    fn ns(&self, name: &str) -> Result<&Netns> {
        self.namespaces
            .get(name)
            .with_context(|| format!("lab {} has no namespace {name}", self.opts.name))
    }

    /// A veth from namespace `ns` (named `inner`) into the bridge (named `outer`).
    fn port(&self, ns: &str, outer: &str, inner: &str) -> Result<()> {
        let sw = self.ns(&self.ns_switch())?;
        sw.ip(&[
            "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns,
        ])?;
        sw.ip(&["link", "set", outer, "master", "br0"])?;
        sw.ip(&["link", "set", outer, "up"])?;
        self.ns(ns)?.ip(&["link", "set", inner, "up"])?;
        Ok(())
    }

    fn addr(&self, ns: &str, dev: &str, a: Ipv6Addr) -> Result<()> {
        Ok(self.ns(ns)?.add_address(dev, &format!("{a}/64"))?)
    }

    fn start_relay(&mut self) -> Result<()> {
        // Wait for down0's link-local address: dhcrelay refuses an interface without one.
        self.ns(&self.ns_relay())?.link_local("down0")?;
        let mut c = Self::netns_cmd(&self.ns_relay(), "dhcrelay");
        c.args(["-6", "-d", "-q", "-pf"])
            .arg(self.dir.join("dhcrelay.pid"));
        c.args(["-l", "down0"]);
        for i in 1..=self.opts.servers {
            c.arg("-u").arg(format!("{}%up0", self.server_addr(i)));
        }
        let log = std::fs::File::create(self.dir.join("dhcrelay.log"))?;
        c.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = c
            .spawn()
            .context("starting dhcrelay (apt package isc-dhcp-relay)")?;
        self.relay = Some(child);
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.persist {
            // Dropped without `down` (a failed test, an error): keep the
            // configs and server logs to look at.
            if let Err(e) = self.take_down() {
                eprintln!("lab {}: down failed: {e:#}", self.opts.name);
            }
            if self.dir.exists() {
                eprintln!(
                    "lab {}: files kept in {}",
                    self.opts.name,
                    self.dir.display()
                );
            }
        }
    }
}

/// The unicast address of server `i` on the shared link of any lab.
pub fn server_addr(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(LINK_DIRECT.0) + 0x10 + i as u128)
}

/// The options of lab `name` as written by [`Lab::up`] (for tools that attach to a running lab).
pub fn load_options(name: &str) -> Result<LabOptions> {
    let path = lab_dir(name).join("lab.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("lab {name} is not up (no {})", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(LabOptions {
        name: name.to_string(),
        servers: v["servers"].as_u64().unwrap_or(1) as usize,
        model: v["model"].as_str().unwrap_or("standalone").to_string(),
        relay: v["relay"].as_bool().unwrap_or(false),
        dhcp6d: None,
    })
}

/// Pools of every server of a lab on one link (what a client of that link may get).
pub fn all_pools(opts: &LabOptions, relayed: bool) -> Result<LinkPools> {
    let mut all = LinkPools {
        na: Vec::new(),
        pd: Vec::new(),
    };
    for i in 1..=opts.servers {
        let p = configs::read_pools(
            &lab_dir(&opts.name)
                .join(format!("s{i}"))
                .join("dhcp6d.toml"),
        )?;
        let l = if relayed { p.relayed } else { p.direct };
        for r in l.na {
            if !all.na.contains(&r) {
                all.na.push(r);
            }
        }
        for r in l.pd {
            if !all.pd.contains(&r) {
                all.pd.push(r);
            }
        }
    }
    Ok(all)
}

/// Where a lab keeps its files.
pub fn lab_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("dhcp6d-lab-{name}"))
}

/// The dhcp6d binary: `$DHCP6D_BIN`, else the workspace's release or debug build.
pub fn dhcp6d_binary() -> Result<String> {
    if let Ok(p) = std::env::var("DHCP6D_BIN") {
        return Ok(p);
    }
    // This crate is xtask/loadgen; the workspace is two levels up.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("dhcp6d");
        if p.exists() {
            return Ok(p.display().to_string());
        }
    }
    bail!("no dhcp6d binary: build it (cargo build --release -p dhcp-user) or set DHCP6D_BIN")
}

/// Remove every namespace named `NAME-*`, killing the processes inside first.
pub fn down_by_name(name: &str) -> Result<()> {
    let prefix = format!("{name}-");
    for ns in netns::list()? {
        if ns.starts_with(&prefix) {
            netns::delete(&ns)?;
        }
    }
    Ok(())
}

fn stop_child(c: &mut Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Whether process `pid` (in its own namespace) has a UDP socket bound to `port`.
fn udp_port_bound(pid: u32, port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    std::fs::read_to_string(format!("/proc/{pid}/net/udp6"))
        .map(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| format!("{a} ").ends_with(&needle))
            })
        })
        .unwrap_or(false)
}

/// Whether a dhcp6d control socket answers a stats request.
pub fn control_answers(path: &Path) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(path) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"{\"command\":\"stats\"}\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).is_ok() && line.contains("uptime_s")
}
