//! Kernel-socket backend (`io = "socket"`): one UDP socket on `[::]:547`
//! that has joined ff02::1:2 on every configured interface and ff05::1:3,
//! batched with recvmmsg/sendmmsg. IPV6_PKTINFO gives the arrival interface
//! and destination; replies set interface and source the same way.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use dhcp_common::{ALL_DHCP_RELAY_AGENTS_AND_SERVERS, ALL_DHCP_SERVERS, SERVER_PORT};

use super::netif::NetIf;
use super::worker::PENDING_CAPACITY;
use super::worker_loop::{Device, Queued, Request, Sent};
use crate::protocol::{DropReason, Ingress, Reply};

/// Messages per recvmmsg/sendmmsg call.
const BATCH: usize = 32;
/// Largest datagram we read or write (a UMEM-frame-sized reply fits).
const BUF: usize = 4096;
const CMSG_SPACE: usize = 64;
/// Reply buffers: a full hold queue plus a batch being answered.
const SLOTS: usize = PENDING_CAPACITY + BATCH;
/// Receive buffer asked for: an avalanche of clients arrives faster than a
/// worker is scheduled, and the default (about 200 kB, some 230 requests)
/// overflowed with 100,000 clients starting within a second; each overflow
/// costs that client a 1 s retransmission. 8 MB holds several thousand.
const RCVBUF: libc::c_int = 8 << 20;

/// What recvmmsg said about one datagram of the last batch.
#[derive(Clone, Copy)]
struct Received {
    len: usize,
    truncated: bool,
    /// Destination address and arrival interface (IPV6_PKTINFO).
    pktinfo: Option<(Ipv6Addr, u32)>,
    src: Ipv6Addr,
    src_port: u16,
}

const NOTHING: Received = Received {
    len: 0,
    truncated: false,
    pktinfo: None,
    src: Ipv6Addr::UNSPECIFIED,
    src_port: 0,
};

/// A request's reply buffer and what its reply needs from it.
#[derive(Clone, Copy, Debug)]
pub struct SockRx {
    slot: u16,
    dst: Ipv6Addr,
    ifindex: u32,
    /// Index of the arrival interface in `ifaces`.
    iface: u16,
}

/// A reply ready to go (or held): which buffer slot, and where to.
#[derive(Clone, Copy, Debug)]
pub struct SockTx {
    slot: u16,
    len: u16,
    to: Ipv6Addr,
    port: u16,
    src: Ipv6Addr,
    ifindex: u32,
}

/// The socket backend (one per server), as a [`Device`].
pub struct SocketIo {
    fd: OwnedFd,
    ifaces: Vec<NetIf>,
    rx: Box<[[u8; BUF]]>,
    received: [Received; BATCH],
    // Reply buffers: every one is either free or the worker loop's.
    tx: Box<[[u8; BUF]]>,
    free: Vec<u16>,
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live T and we pass its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ask for [`RCVBUF`]. FORCE passes net.core.rmem_max (we usually run as
/// root); without the privilege, ask within the limit.
fn deepen_rcvbuf(fd: &OwnedFd) {
    if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
        let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
    }
}

impl SocketIo {
    /// Bind `[::]:547` and join the DHCPv6 groups on `ifaces`.
    pub fn open(ifaces: Vec<NetIf>) -> io::Result<SocketIo> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &one)?;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one)?;
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
        deepen_rcvbuf(&fd);
        // SAFETY: zeroed sockaddr_in6 is valid; we set family and port.
        let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_port = SERVER_PORT.to_be();
        // SAFETY: `sa` is a valid sockaddr_in6 of the size we pass.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        for netif in &ifaces {
            for group in [ALL_DHCP_RELAY_AGENTS_AND_SERVERS, ALL_DHCP_SERVERS] {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: group.octets(),
                    },
                    ipv6mr_interface: netif.index,
                };
                setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
            }
        }
        Ok(SocketIo {
            fd,
            ifaces,
            rx: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            received: [NOTHING; BATCH],
            tx: vec![[0u8; BUF]; SLOTS].into_boxed_slice(),
            free: (0..SLOTS as u16).collect(),
        })
    }
}

impl SocketIo {
    /// Every reply buffer free again. For the supervisor, once the loop that
    /// held some of them (replies queued or waiting for the journal, a
    /// request being handled) died: nothing refers to a slot any more.
    pub fn reclaim_buffers(&mut self) {
        self.free.clear();
        self.free.extend(0..SLOTS as u16);
    }
}

/// Destination address and arrival interface from IPV6_PKTINFO.
fn pktinfo(h: &libc::msghdr) -> Option<(Ipv6Addr, u32)> {
    // SAFETY: walking the control buffer the kernel filled, within controllen.
    unsafe {
        let mut cm = libc::CMSG_FIRSTHDR(h);
        while !cm.is_null() {
            if (*cm).cmsg_level == libc::IPPROTO_IPV6 && (*cm).cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast());
                return Some((Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex));
            }
            cm = libc::CMSG_NXTHDR(h, cm);
        }
    }
    None
}

impl Device for SocketIo {
    type Rx = SockRx;
    type Tx = SockTx;
    const BATCH: usize = BATCH;
    const BUFFERS: usize = SLOTS;

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn receive(&mut self) -> usize {
        // SAFETY (all zeroed below): plain C structs for which zero is valid.
        let mut names: [libc::sockaddr_in6; BATCH] = unsafe { zeroed() };
        let mut ctrl = [[0u8; CMSG_SPACE]; BATCH];
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: self.rx[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_in6).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = CMSG_SPACE;
        }
        // SAFETY: every header points at live buffers of the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return 0;
        }
        let n = n as usize;
        for i in 0..n {
            self.received[i] = Received {
                len: hdrs[i].msg_len as usize,
                truncated: hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                pktinfo: pktinfo(&hdrs[i].msg_hdr),
                src: Ipv6Addr::from(names[i].sin6_addr.s6_addr),
                src_port: u16::from_be(names[i].sin6_port),
            };
        }
        n
    }

    fn request(&mut self, i: usize) -> Result<Request<'_, SockRx>, DropReason> {
        let r = self.received[i];
        let (dst, ifindex) = r.pktinfo.ok_or(DropReason::Malformed)?;
        if r.truncated {
            return Err(DropReason::Malformed);
        }
        let iface = self
            .ifaces
            .iter()
            .position(|n| n.index == ifindex)
            // Arrived on an interface we do not serve.
            .ok_or(DropReason::NotOurInterface)?;
        let slot = self.free.pop().ok_or(DropReason::NoBuffer)?;
        Ok(Request {
            ingress: Ingress {
                ifindex,
                src: r.src,
                src_port: r.src_port,
                dst_multicast: dst.is_multicast(),
            },
            payload: &self.rx[i][..r.len],
            out: &mut self.tx[usize::from(slot)],
            rx: SockRx {
                slot,
                dst,
                ifindex,
                iface: iface as u16,
            },
        })
    }

    fn reply(&mut self, rx: SockRx, reply: &Reply) -> Result<SockTx, DropReason> {
        let src = self.ifaces[usize::from(rx.iface)]
            .reply_source(rx.dst, reply.to)
            .ok_or(DropReason::NoSourceAddress)?;
        Ok(SockTx {
            slot: rx.slot,
            len: reply.len as u16,
            to: reply.to,
            port: reply.port,
            src,
            ifindex: rx.ifindex,
        })
    }

    fn free_rx(&mut self, rx: SockRx) {
        self.free.push(rx.slot);
    }

    fn free_tx(&mut self, tx: SockTx) {
        self.free.push(tx.slot);
    }

    /// One sendmmsg of up to a batch. What did not go out is dropped, never
    /// retried; every buffer of the batch is free again afterwards.
    fn transmit(&mut self, queue: &[Queued<SockTx>]) -> Sent {
        let chunk = &queue[..queue.len().min(BATCH)];
        // SAFETY (zeroed): plain C structs for which zero is valid.
        let mut names: [libc::sockaddr_in6; BATCH] = unsafe { zeroed() };
        let mut ctrl = [[0u64; CMSG_SPACE / 8]; BATCH];
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, q) in chunk.iter().enumerate() {
            let o = &q.tx;
            names[i].sin6_family = libc::AF_INET6 as libc::sa_family_t;
            names[i].sin6_port = o.port.to_be();
            names[i].sin6_addr.s6_addr = o.to.octets();
            names[i].sin6_scope_id = o.ifindex;
            iov[i] = libc::iovec {
                iov_base: self.tx[usize::from(o.slot)].as_mut_ptr().cast(),
                iov_len: usize::from(o.len),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_in6).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = ctrl[i].as_mut_ptr().cast();
            // SAFETY: CMSG_* on a header whose control buffer we own.
            unsafe {
                h.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let cm = libc::CMSG_FIRSTHDR(h);
                (*cm).cmsg_level = libc::IPPROTO_IPV6;
                (*cm).cmsg_type = libc::IPV6_PKTINFO;
                (*cm).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: o.src.octets(),
                    },
                    ipi6_ifindex: o.ifindex,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast(), info);
            }
        }
        // SAFETY: headers point at live buffers; the socket is blocking,
        // so a full send buffer makes us wait rather than drop.
        let sent = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                chunk.len() as u32,
                0,
            )
        };
        let sent = if sent < 0 { 0 } else { sent as usize };
        for q in chunk {
            self.free.push(q.tx.slot);
        }
        Sent {
            sent,
            failed: chunk.len() - sent,
            more: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_buffer_holds_an_avalanche() {
        // SAFETY: plain socket(2); owned right away.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_INET6, libc::SOCK_DGRAM, 0)) };
        let get = |fd: &OwnedFd| {
            let mut v: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: reading an int option into a live int of the size given.
            let rc = unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&mut v as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            v
        };
        let default = get(&fd);
        deepen_rcvbuf(&fd);
        // The kernel reports twice what was set (its bookkeeping share). The
        // test suite runs as root, so FORCE must have worked.
        assert!(get(&fd) >= RCVBUF, "{} (default {default})", get(&fd));
    }
}
