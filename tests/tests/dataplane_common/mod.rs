//! Network-namespace lab for the data-plane tests: two namespaces of the
//! harness's one helper (`dhcp6d_tests::netns`) joined by a veth pair,
//! created with unique names and removed on drop. Needs root and
//! iproute2; a missing prerequisite fails the test loudly.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::process::Command;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dhcp6d_tests::netns;

/// Labs alive in this process, and whether one of them is alone.
struct Turns {
    shared: usize,
    alone: bool,
}

static TURNS: Mutex<Turns> = Mutex::new(Turns {
    shared: 0,
    alone: false,
});
static TURN_ENDED: Condvar = Condvar::new();

/// A lab's right to run: shared by ordinary labs; held alone by a test that
/// looks at the whole process (the idle test reads the CPU time of every
/// `dhcp6d-*` thread), so no other lab's data plane runs beside it now that
/// all data-plane tests share one test binary. A waiting alone turn does not
/// stop new shared ones: a test holding two labs cannot deadlock.
struct Turn {
    alone: bool,
}

impl Turn {
    fn take(alone: bool) -> Turn {
        let mut t = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        while t.alone || (alone && t.shared > 0) {
            t = TURN_ENDED.wait(t).unwrap_or_else(PoisonError::into_inner);
        }
        if alone {
            t.alone = true;
        } else {
            t.shared += 1;
        }
        Turn { alone }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut t = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        if self.alone {
            t.alone = false;
        } else {
            t.shared -= 1;
        }
        TURN_ENDED.notify_all();
    }
}

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

/// A network namespace of the harness ([`dhcp6d_tests::netns::Netns`], the
/// workspace's one namespace helper), deleted on drop; these tests panic
/// where the harness returns an error.
pub struct Netns {
    inner: netns::Netns,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let inner = netns::Netns::new(&format!("dp-{role}"))
            .unwrap_or_else(|e| panic!("namespace {role}: {e}"));
        Netns { inner }
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> String {
        self.inner
            .exec(args)
            .unwrap_or_else(|e| panic!("in {}: {e}", self.name()))
    }

    /// Run `f` on a thread that lives in this namespace (threads it spawns,
    /// and sockets it opens, stay there).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.inner
            .run(f)
            .unwrap_or_else(|e| panic!("entering {}: {e}", self.name()))
    }
}

/// Server and client namespaces joined by veth `srv0` <-> `cli0`.
pub struct Lab {
    pub client: Netns,
    pub server: Netns,
    /// Last: given back once both namespaces are gone.
    _turn: Turn,
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
        Self::build(queues, Turn::take(false))
    }

    /// [`Lab::with_queues`], waiting until no other lab of this process is
    /// alive and keeping others from starting while it lives: for a test
    /// that measures every data-plane thread of the process.
    pub fn alone_with_queues(queues: u32) -> Lab {
        Self::build(queues, Turn::take(true))
    }

    fn build(queues: u32, turn: Turn) -> Lab {
        let server = Netns::new("srv");
        let client = Netns::new("cli");
        let q = queues.to_string();
        let mut add = vec![
            "ip",
            "-n",
            server.name(),
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
            client.name(),
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
        let lab = Lab {
            client,
            server,
            _turn: turn,
        };
        lab.wait_link_local(&lab.server, SERVER_IF);
        lab.wait_link_local(&lab.client, CLIENT_IF);
        lab
    }

    /// Make everything the client sends leave `cli0` on TX queue `queue`
    /// (XPS: every CPU mapped to that queue alone), which veth hands to
    /// the same-numbered RX queue of `srv0`. Sockets opened afterwards pick
    /// it up; `queues` is what the lab was built with.
    pub fn steer_client_to_queue(&self, queue: u32, queues: u32) {
        assert!(queue < queues, "queue {queue} of {queues}");
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as usize;
        // The cpumask format: 32-bit hex groups, most significant first.
        let groups: Vec<String> = (0..cpus.div_ceil(32))
            .rev()
            .map(|g| {
                let bits = (cpus - g * 32).min(32);
                format!("{:08x}", (u64::from(u32::MAX) >> (32 - bits)) as u32)
            })
            .collect();
        let all = groups.join(",");
        let script: Vec<String> = (0..queues)
            .map(|q| {
                let mask = if q == queue { all.as_str() } else { "0" };
                format!("echo {mask} > /sys/class/net/{CLIENT_IF}/queues/tx-{q}/xps_cpus")
            })
            .collect();
        self.client.exec(&["sh", "-e", "-c", &script.join("\n")]);
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

/// Poll `cond` until it holds (5 s at most): counters are bumped by the
/// worker just after the reply leaves, so a test can see the reply first.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An AF_PACKET socket on one interface: raw Ethernet frames in and out.
pub struct RawSocket(i32);

impl RawSocket {
    pub fn open(ifindex: u32) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket/bind/setsockopt calls with valid arguments.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind AF_PACKET");
            // The receiving kernel moves the outer tag into metadata before
            // packet taps see the frame; PACKET_AUXDATA hands it back.
            let one: i32 = 1;
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&one as *const i32).cast(),
                4,
            );
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            RawSocket(fd)
        }
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: valid buffer.
        let n = unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "raw send");
    }

    /// Next received frame (outer tag put back in place) that passes `keep`, within 3 s.
    pub fn recv_matching(&self, keep: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = vec![0u8; 9216];
        while Instant::now() < deadline {
            let mut ctrl = [0u64; 16];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: msghdr over live buffers; cmsg walk within controllen.
            let (n, tag) = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = ctrl.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&ctrl);
                let n = libc::recvmsg(self.0, &mut msg, 0);
                let mut tag = None;
                let mut cm = libc::CMSG_FIRSTHDR(&msg);
                while !cm.is_null() {
                    if (*cm).cmsg_level == libc::SOL_PACKET
                        && (*cm).cmsg_type == libc::PACKET_AUXDATA
                    {
                        let aux: AuxData = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast());
                        if aux.status & TP_STATUS_VLAN_VALID != 0 {
                            let tpid = if aux.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                                aux.vlan_tpid
                            } else {
                                0x8100
                            };
                            tag = Some((tpid, aux.vlan_tci));
                        }
                    }
                    cm = libc::CMSG_NXTHDR(&msg, cm);
                }
                (n, tag)
            };
            if n <= 0 {
                continue;
            }
            let mut frame = buf[..n as usize].to_vec();
            if let Some((tpid, tci)) = tag {
                let mut t = tpid.to_be_bytes().to_vec();
                t.extend_from_slice(&tci.to_be_bytes());
                frame.splice(12..12, t);
            }
            if keep(&frame) {
                return Some(frame);
            }
        }
        None
    }
}

const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata`.
#[repr(C)]
#[derive(Clone, Copy)]
struct AuxData {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: our fd.
        unsafe { libc::close(self.0) };
    }
}
