//! Network-namespace lab for the data-plane tests: two namespaces joined by a
//! veth pair, created with unique names and removed on drop. Needs root and
//! iproute2; a missing prerequisite fails the test loudly.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs::File;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Run a command, panic with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let name = format!(
            "d6dp-{role}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        // No duplicate address detection: addresses are usable at once.
        for key in ["all", "default"] {
            ns.exec(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.accept_dad=0"),
            ]);
        }
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Run `f` on a thread that lives in this namespace (threads it spawns,
    /// and sockets it opens, stay there).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: setns on this thread only, with a netns fd.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Server and client namespaces joined by veth `srv0` <-> `cli0`.
pub struct Lab {
    pub client: Netns,
    pub server: Netns,
}

pub const SERVER_IF: &str = "srv0";
pub const CLIENT_IF: &str = "cli0";
pub const SERVER_GLOBAL: &str = "2001:db8:1::1";
pub const CLIENT_GLOBAL: &str = "2001:db8:1::2";

impl Lab {
    pub fn new() -> Lab {
        Self::with_queues(1)
    }

    /// `queues` > 1 sets that many RX/TX channels on both ends (`ethtool -L`).
    pub fn with_queues(queues: u32) -> Lab {
        let server = Netns::new("srv");
        let client = Netns::new("cli");
        let q = queues.to_string();
        let mut add = vec![
            "ip",
            "-n",
            &server.name,
            "link",
            "add",
            SERVER_IF,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_IF,
            "netns",
            &client.name,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ];
        if queues == 1 {
            add.retain(|a| !a.starts_with("num") && *a != q.as_str());
        }
        sh(&add);
        if queues > 1 {
            server.exec(&["ethtool", "-L", SERVER_IF, "rx", &q, "tx", &q]);
            client.exec(&["ethtool", "-L", CLIENT_IF, "rx", &q, "tx", &q]);
        }
        server.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{SERVER_GLOBAL}/64"),
            "dev",
            SERVER_IF,
            "nodad",
        ]);
        client.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{CLIENT_GLOBAL}/64"),
            "dev",
            CLIENT_IF,
            "nodad",
        ]);
        server.exec(&["ip", "link", "set", SERVER_IF, "up"]);
        client.exec(&["ip", "link", "set", CLIENT_IF, "up"]);
        let lab = Lab { client, server };
        lab.wait_link_local(&lab.server, SERVER_IF);
        lab.wait_link_local(&lab.client, CLIENT_IF);
        lab
    }

    fn wait_link_local(&self, ns: &Netns, dev: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = ns.exec(&["ip", "-6", "addr", "show", "dev", dev, "scope", "link"]);
            if out.contains("fe80") && !out.contains("tentative") {
                return;
            }
            assert!(Instant::now() < deadline, "no link-local on {dev}: {out}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Add a VLAN sub-interface `vid` on both ends (named `srv0.VID` / `cli0.VID`).
    pub fn add_vlan(&self, vid: u16) -> (String, String) {
        let (s, c) = (format!("{SERVER_IF}.{vid}"), format!("{CLIENT_IF}.{vid}"));
        let v = vid.to_string();
        for (ns, parent, dev) in [(&self.server, SERVER_IF, &s), (&self.client, CLIENT_IF, &c)] {
            ns.exec(&[
                "ip", "link", "add", "link", parent, "name", dev, "type", "vlan", "id", &v,
            ]);
            ns.exec(&["ip", "link", "set", dev, "up"]);
            self.wait_link_local(ns, dev);
        }
        (s, c)
    }
}

/// Interface index inside the calling thread's namespace.
pub fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "no interface {name}");
    i
}

/// An ordinary DHCPv6 client socket on `[::]:546` (call inside the client ns).
pub fn client_socket() -> UdpSocket {
    let s = UdpSocket::bind("[::]:546").expect("bind [::]:546");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

/// Send `msg` to All_DHCP_Relay_Agents_and_Servers on `dev`.
pub fn send_multicast(sock: &UdpSocket, dev: &str, msg: &[u8]) {
    let to = SocketAddrV6::new(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
        547,
        0,
        ifindex(dev),
    );
    sock.send_to(msg, to).expect("send to ff02::1:2");
}

/// Receive one datagram (3 s timeout); None on timeout.
pub fn recv(sock: &UdpSocket) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => Some((buf[..n].to_vec(), from)),
        Err(_) => None,
    }
}

/// Poll `cond` until it holds (2 s at most): counters are bumped by the
/// worker just after the reply leaves, so a test can see the reply first.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
