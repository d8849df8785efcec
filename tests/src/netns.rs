//! Network namespaces and the links between them: the one namespace helper
//! of the workspace (the integration tests, the data-plane tests, the
//! `cargo xtask lab` and the load generator all use it).
//!
//! A [`Netns`] is created with DAD disabled (so link-local and static
//! addresses are usable at once: dhclient -6 refuses to start on a tentative
//! link-local address) and is deleted on drop, after stopping whatever we
//! left running in it ([`Netns::persist`] keeps it, for `cargo xtask lab up`).
//! [`Netns::run`] runs a closure on a thread inside it, [`Entered`] moves the
//! calling thread in and back. A [`Segment`] is one Ethernet link: a bridge in
//! its own namespace, with a veth port per attached node.

use std::fs::File;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::io;
use crate::process::{require, require_root, run};
use crate::{wait, Error, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A unique name: process id and a counter, so parallel tests (threads) and
/// parallel test binaries never collide. Kept short for readability in `ip netns`.
fn unique(tag: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("d6-{}-{n}-{tag}", std::process::id())
}

/// A network namespace, deleted on drop (unless [`Netns::persist`]ed).
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Creates a namespace with a name unique to this process and call
    /// (`tag` makes it recognisable in `ip netns list`).
    pub fn new(tag: &str) -> Result<Netns> {
        Netns::named(&unique(tag))
    }

    /// Creates the namespace `name` (the caller makes it unique: the lab
    /// prefixes its namespaces with the lab's name).
    pub fn named(name: &str) -> Result<Netns> {
        require_root()?;
        require("ip")?;
        run(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
            keep: false,
        };
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.dad_transmits=0",
            "net.ipv6.conf.default.dad_transmits=0",
            // Nodes are hosts unless made routers (a relay sets forwarding=1).
            "net.ipv6.conf.all.forwarding=0",
        ])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Keeps the namespace, and whatever runs in it, after this value is
    /// dropped; [`delete`] (or `ip netns del`) removes it later.
    pub fn persist(mut self) {
        self.keep = true;
    }

    /// Runs `f` on a thread that lives in this namespace (threads it spawns,
    /// and sockets it opens, stay there); `f`'s result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _inside = Entered::enter(&self.name)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace; its stdout.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        run(&full)
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Adds a static address (`2001:db8::1/64`), usable at once (`nodad`).
    pub fn add_address(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", ifname, "nodad"])
            .map(drop)
    }

    /// The interface's link-local address, once it exists and is not tentative.
    pub fn link_local(&self, ifname: &str) -> Result<Ipv6Addr> {
        wait::until(
            &format!("a usable link-local address on {ifname} in {}", self.name),
            Duration::from_secs(5),
            || {
                let out = self.ip(&["-6", "-o", "addr", "show", "dev", ifname, "scope", "link"])?;
                Ok(out
                    .lines()
                    .filter(|l| !l.contains("tentative"))
                    .find_map(|l| {
                        let cidr = l.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
                        cidr.split('/').next()?.parse().ok()
                    }))
            },
        )
    }

    /// Sets the interface's MAC address (a client that "moves" keeps its MAC,
    /// hence its IAID).
    pub fn set_mac(&self, ifname: &str, mac: &str) -> Result<()> {
        self.ip(&["link", "set", ifname, "down"])?;
        self.ip(&["link", "set", ifname, "address", mac])?;
        self.ip(&["link", "set", ifname, "up"])?;
        self.link_local(ifname).map(drop)
    }

    /// The interface's MAC address.
    pub fn mac(&self, ifname: &str) -> Result<String> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| Error::Parse {
                what: format!("MAC of {ifname}"),
                detail: out.clone(),
            })
    }
}

/// Runs `argv` inside `ns`; its stdout.
pub fn run_in(ns: &Netns, argv: &[&str]) -> Result<String> {
    ns.exec(argv)
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            let _ = delete(&self.name);
        }
    }
}

/// Deletes namespace `name`, first killing what runs in it (only what its
/// owner started lives there: names are unique to a test or a lab).
pub fn delete(name: &str) -> Result<()> {
    let pids = run(&["ip", "netns", "pids", name])?;
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    run(&["ip", "netns", "del", name]).map(drop)
}

/// The names of the namespaces that exist now (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    Ok(run(&["ip", "netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// The calling thread, moved into a namespace; it moves back on drop.
#[derive(Debug)]
pub struct Entered {
    home: OwnedFd,
}

impl Entered {
    /// Moves this thread into `/run/netns/NAME` (sockets it opens from now
    /// on are there).
    pub fn enter(name: &str) -> Result<Entered> {
        let home = File::open("/proc/thread-self/ns/net").map_err(io("open own netns"))?;
        let path = format!("/run/netns/{name}");
        let target = File::open(&path).map_err(io(format!("open {path}")))?;
        // SAFETY: setns(2) on this thread only, with a namespace fd we hold.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
            return Err(io(format!("setns {path}"))(std::io::Error::last_os_error()));
        }
        Ok(Entered { home: home.into() })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        // SAFETY: setns(2) back to the namespace fd opened in `enter`.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// One Ethernet segment: a bridge (multicast snooping off, so DHCPv6
/// multicast reaches every port without MLD) in a namespace of its own.
#[derive(Debug)]
pub struct Segment {
    hub: Netns,
    ports: AtomicU32,
}

/// The bridge's name inside the segment's namespace.
pub const BRIDGE: &str = "br0";

impl Segment {
    /// Creates the segment.
    pub fn new(tag: &str) -> Result<Segment> {
        let hub = Netns::new(&format!("{tag}-link"))?;
        hub.ip(&[
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])?;
        hub.ip(&["link", "set", BRIDGE, "up"])?;
        Ok(Segment {
            hub,
            ports: AtomicU32::new(0),
        })
    }

    /// The namespace holding the bridge (capture on [`BRIDGE`] there to see everything).
    pub fn hub(&self) -> &Netns {
        &self.hub
    }

    /// Plugs `node` into the segment as interface `ifname` (up, with its link-local ready).
    pub fn attach(&self, node: &Netns, ifname: &str) -> Result<()> {
        let port = format!("p{}", self.ports.fetch_add(1, Ordering::Relaxed));
        // Both ends are created directly in their namespaces: no name ever
        // exists in the host namespace, so parallel tests cannot collide.
        self.hub.ip(&[
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            ifname,
            "netns",
            node.name(),
        ])?;
        self.hub
            .ip(&["link", "set", &port, "master", BRIDGE, "up"])?;
        node.ip(&["link", "set", ifname, "up"])?;
        node.link_local(ifname)?;
        Ok(())
    }

    /// Unplugs `node`'s interface `ifname` from this segment (deletes the veth pair).
    pub fn detach(&self, node: &Netns, ifname: &str) -> Result<()> {
        node.ip(&["link", "del", ifname]).map(drop)
    }
}
