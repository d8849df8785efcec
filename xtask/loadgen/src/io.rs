//! Batched I/O for the load generator: a kernel UDP socket with `sendmmsg` and
//! `recvmmsg` over preallocated buffers (no allocation per packet), or a packet
//! socket ([`super::packet`]) behind the same [`Io`] calls.
//!
//! A kernel UDP socket is the simplest batched path that works in any namespace
//! without attaching programs; the generator reports its own ceiling so a reader
//! can see when it, not the server, limits a measurement.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};

pub const BATCH: usize = 64;
const BUF: usize = 1536;

/// A destination: address, scope (interface index for link-local/multicast), port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dest {
    pub addr: Ipv6Addr,
    pub scope: u32,
    pub port: u16,
}

fn sockaddr(d: &Dest) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = d.port.to_be();
    sa.sin6_addr.s6_addr = d.addr.octets();
    sa.sin6_scope_id = d.scope;
    sa
}

pub struct Socket {
    fd: OwnedFd,
    tx_bufs: Vec<[u8; BUF]>,
    tx_addrs: Vec<libc::sockaddr_in6>,
    tx_lens: Vec<usize>,
    tx_n: usize,
    rx_bufs: Vec<[u8; BUF]>,
    rx_lens: Vec<usize>,
    /// Datagrams the kernel refused (ENOBUFS, EAGAIN after retries).
    pub tx_errors: u64,
}

fn setopt<T>(fd: i32, level: i32, name: i32, v: T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live local of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Socket {
    /// Bind `[::]:port`, send multicast out of `ifindex`, with large kernel buffers.
    pub fn bind(port: u16, ifindex: u32) -> Result<Socket> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            bail!("socket: {}", io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setopt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1i32)?;
        // Bursts of thousands of replies must not overflow the default 200 KiB buffer.
        let _ = setopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 64i32 << 20);
        let _ = setopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, 16i32 << 20);
        if ifindex != 0 {
            setopt(
                raw,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                ifindex as i32,
            )?;
        }
        setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0i32)?;
        setopt(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, 8i32)?;
        let sa = sockaddr(&Dest {
            addr: Ipv6Addr::UNSPECIFIED,
            scope: 0,
            port,
        });
        // SAFETY: sa is a valid sockaddr_in6 of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of_val(&sa) as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("binding UDP port {port}"));
        }
        Ok(Socket {
            fd,
            tx_bufs: vec![[0; BUF]; BATCH],
            tx_addrs: vec![
                sockaddr(&Dest {
                    addr: Ipv6Addr::UNSPECIFIED,
                    scope: 0,
                    port: 0
                });
                BATCH
            ],
            tx_lens: vec![0; BATCH],
            tx_n: 0,
            rx_bufs: vec![[0; BUF]; BATCH],
            rx_lens: vec![0; BATCH],
            tx_errors: 0,
        })
    }

    /// Queue one datagram: `fill` writes it into the slot and returns its length.
    /// Flushes first when the batch is full.
    pub fn queue(&mut self, dest: &Dest, fill: impl FnOnce(&mut [u8]) -> usize) {
        if self.tx_n == BATCH {
            self.flush();
        }
        let i = self.tx_n;
        self.tx_lens[i] = fill(&mut self.tx_bufs[i]);
        self.tx_addrs[i] = sockaddr(dest);
        self.tx_n += 1;
    }

    /// Send everything queued with as few `sendmmsg` calls as the kernel allows.
    pub fn flush(&mut self) {
        let mut done = 0;
        let mut spins = 0;
        while done < self.tx_n {
            let mut iov: [libc::iovec; BATCH] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: mmsghdr is plain data; zeroed is valid and filled below.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let n = self.tx_n - done;
            for k in 0..n {
                let i = done + k;
                iov[k] = libc::iovec {
                    iov_base: self.tx_bufs[i].as_mut_ptr().cast(),
                    iov_len: self.tx_lens[i],
                };
                hdrs[k].msg_hdr.msg_name =
                    (&mut self.tx_addrs[i] as *mut libc::sockaddr_in6).cast();
                hdrs[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
                hdrs[k].msg_hdr.msg_iov = &mut iov[k];
                hdrs[k].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at live buffers owned by self for the call.
            let r = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), hdrs.as_mut_ptr(), n as u32, 0) };
            if r > 0 {
                done += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            spins += 1;
            if e.kind() == io::ErrorKind::WouldBlock && spins < 1000 {
                std::thread::yield_now();
                continue;
            }
            // Drop the datagram that failed (e.g. ENETUNREACH) and go on with the rest.
            self.tx_errors += 1;
            done += 1;
        }
        self.tx_n = 0;
    }

    /// Receive up to a batch without blocking; returns how many datagrams arrived.
    pub fn recv_batch(&mut self) -> usize {
        let mut iov: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: plain data, filled below.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for k in 0..BATCH {
            iov[k] = libc::iovec {
                iov_base: self.rx_bufs[k].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            hdrs[k].msg_hdr.msg_iov = &mut iov[k];
            hdrs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: headers point at buffers owned by self.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r <= 0 {
            return 0;
        }
        for (len, h) in self.rx_lens.iter_mut().zip(&hdrs[..r as usize]) {
            *len = h.msg_len as usize;
        }
        r as usize
    }

    /// The `k`-th datagram of the last `recv_batch`.
    pub fn received(&self, k: usize) -> &[u8] {
        &self.rx_bufs[k][..self.rx_lens[k]]
    }

    /// Wait up to `ms` for something to read.
    pub fn wait_readable(&self, ms: i32) {
        self.wait_readable_ns(u64::try_from(ms).unwrap_or(0) * 1_000_000);
    }

    /// Wait up to `ns` for something to read (ppoll: sub-millisecond pacing
    /// without spinning a core the server under test needs).
    pub fn wait_readable_ns(&self, ns: u64) {
        wait_readable_fd(self.fd.as_raw_fd(), ns);
    }
}

/// Wait up to `ns` for `fd` to be readable; shared by both I/O paths.
pub(crate) fn wait_readable_fd(fd: std::os::fd::RawFd, ns: u64) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: one valid pollfd and a valid timespec; no signal mask change.
    unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
}

/// Which I/O path the generator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IoKind {
    /// Kernel UDP socket, recvmmsg/sendmmsg.
    Udp,
    /// AF_PACKET: TPACKET_V3 receive ring, sendmmsg of whole frames.
    Packet,
}

/// The generator's socket, either kind.
pub enum Io {
    Udp(Socket),
    Packet(super::packet::PacketSocket),
}

impl Io {
    /// Open `kind` on `ifindex` (0: UDP only), receiving on UDP `port`.
    pub fn open(kind: IoKind, port: u16, ifindex: u32) -> Result<Io> {
        Ok(match kind {
            IoKind::Udp => Io::Udp(Socket::bind(port, ifindex)?),
            IoKind::Packet => Io::Packet(super::packet::PacketSocket::open(ifindex, port)?),
        })
    }

    pub fn queue(&mut self, dest: &Dest, fill: impl FnOnce(&mut [u8]) -> usize) {
        match self {
            Io::Udp(s) => s.queue(dest, fill),
            Io::Packet(s) => s.queue(dest, fill),
        }
    }

    pub fn flush(&mut self) {
        match self {
            Io::Udp(s) => s.flush(),
            Io::Packet(s) => s.flush(),
        }
    }

    pub fn recv_batch(&mut self) -> usize {
        match self {
            Io::Udp(s) => s.recv_batch(),
            Io::Packet(s) => s.recv_batch(),
        }
    }

    pub fn received(&self, k: usize) -> &[u8] {
        match self {
            Io::Udp(s) => s.received(k),
            Io::Packet(s) => s.received(k),
        }
    }

    pub fn wait_readable_ns(&self, ns: u64) {
        match self {
            Io::Udp(s) => s.wait_readable_ns(ns),
            Io::Packet(s) => s.wait_readable_ns(ns),
        }
    }

    pub fn tx_errors(&self) -> u64 {
        match self {
            Io::Udp(s) => s.tx_errors,
            Io::Packet(s) => s.tx_errors,
        }
    }
}

/// Interface index of `name` in the current namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: c is a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("no interface {name:?} in this namespace");
    }
    Ok(i)
}
