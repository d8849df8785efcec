//! Packet-socket I/O for the load generator (`--io packet`): AF_PACKET with a
//! TPACKET_V3 receive ring (the kernel fills blocks of frames in shared memory;
//! one wake-up hands over a whole block) and `sendmmsg` of whole frames with
//! PACKET_QDISC_BYPASS. The generator builds Ethernet, IPv6 and UDP itself,
//! checksums included.
//!
//! Two kernel paths are cut short: a classic BPF filter on the packet socket
//! keeps only UDP to our port out of the ring, and a UDP "sink" socket bound to
//! that port drops every datagram in its own filter, so the kernel neither
//! queues the replies a second time nor answers them with ICMPv6 port
//! unreachable (which would cost the server under test CPU).
//!
//! Needs no program on the server side and nothing from dhcp6d.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};

use super::frame::{parse_frame, write_headers, FrameInfo, ETH_P_IPV6, HEADERS};
use super::io::Dest;
use super::packet_setup::{attach_filter, interface_source, port_filter, setopt, sink};

const FRAME: usize = 1536;
/// Frames per sendmmsg.
const BATCH: usize = 64;
/// Receive ring: 64 blocks of 256 KiB (~1,500 small frames each).
const BLOCK: u32 = 256 << 10;
const BLOCKS: u32 = 64;
/// A block that is not full is handed over after this many ms (TPACKET_V3's
/// retire timer, rounded up to a jiffy: 4 ms at HZ=250). It bounds the
/// latency the ring adds to each received message; measured against dhcp6d
/// at 4,000 leases/s, p50 was 0.3-1.2 ms above the UDP path's. Use `--io udp`
/// when the latency figures matter more than the rate.
const RETIRE_MS: u32 = 1;
const TPACKET_V3: libc::c_int = 2;

/// One received frame: where its UDP payload is in the ring.
#[derive(Clone, Copy)]
struct Rx {
    off: usize,
    len: usize,
}

pub struct PacketSocket {
    fd: OwnedFd,
    _sink: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    /// Block to look at next, and the one handed to the caller (released on the next call).
    next_block: u32,
    held: Option<u32>,
    rx: Vec<Rx>,
    mac: [u8; 6],
    src: Ipv6Addr,
    port: u16,
    loopback: bool,
    /// Link-layer addresses learnt from received frames (the mirror answers its sender).
    neighbors: Vec<(Ipv6Addr, [u8; 6])>,
    tx: Vec<[u8; FRAME]>,
    tx_lens: Vec<usize>,
    tx_n: usize,
    pub tx_errors: u64,
}

// SAFETY: the ring mapping is owned by this value and only touched through &mut self.
unsafe impl Send for PacketSocket {}

impl PacketSocket {
    /// Open on `ifindex`, receiving UDP to `port` and sending from it.
    pub fn open(ifindex: u32, port: u16) -> Result<PacketSocket> {
        let (mac, src, loopback) = interface_source(ifindex)?;
        let sink = sink(port)?;
        let proto = ETH_P_IPV6.to_be();
        // SAFETY: plain socket(2); owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            bail!(
                "AF_PACKET socket (needs CAP_NET_RAW): {}",
                io::Error::last_os_error()
            );
        }
        // SAFETY: raw is a fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Filter before the ring exists so nothing else lands in it.
        attach_filter(raw, &port_filter(port))?;
        setopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3)?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK,
            tp_block_nr: BLOCKS,
            tp_frame_size: 2048,
            tp_frame_nr: BLOCK / 2048 * BLOCKS,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).context("PACKET_RX_RING")?;
        // Our own frames (and the other socket's, on loopback) are not ours to read.
        let _ = setopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
        setopt(raw, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)?;
        let ring_len = (BLOCK * BLOCKS) as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                raw,
                0,
            )
        };
        let ring = if ring == libc::MAP_FAILED {
            // MAP_LOCKED can fail under a memlock limit; the ring works unlocked too.
            // SAFETY: as above, without MAP_LOCKED.
            let r = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    ring_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    raw,
                    0,
                )
            };
            if r == libc::MAP_FAILED {
                bail!("mmap of the packet ring: {}", io::Error::last_os_error());
            }
            r
        } else {
            ring
        };
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size given.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of_val(&sll) as u32,
            )
        };
        if r < 0 {
            // SAFETY: unmapping what we mapped above.
            unsafe { libc::munmap(ring, ring_len) };
            bail!("binding the packet socket: {}", io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            _sink: sink,
            ring: ring.cast(),
            ring_len,
            next_block: 0,
            held: None,
            rx: Vec::with_capacity(4096),
            mac,
            src,
            port,
            loopback,
            neighbors: Vec::new(),
            tx: vec![[0; FRAME]; BATCH],
            tx_lens: vec![0; BATCH],
            tx_n: 0,
            tx_errors: 0,
        })
    }

    fn block(&self, i: u32) -> *mut libc::tpacket_block_desc {
        // SAFETY: i < BLOCKS, so the offset stays inside the mapping.
        unsafe { self.ring.add((i * BLOCK) as usize).cast() }
    }

    fn dst_mac(&self, to: &Ipv6Addr) -> Option<[u8; 6]> {
        let o = to.octets();
        if to.is_multicast() {
            return Some([0x33, 0x33, o[12], o[13], o[14], o[15]]);
        }
        if self.loopback {
            return Some([0; 6]);
        }
        self.neighbors.iter().find(|(a, _)| a == to).map(|n| n.1)
    }

    /// Queue one datagram to `dest`: `fill` writes the DHCPv6 message and returns its length.
    pub fn queue(&mut self, dest: &Dest, fill: impl FnOnce(&mut [u8]) -> usize) {
        if self.tx_n == BATCH {
            self.flush();
        }
        let Some(dst_mac) = self.dst_mac(&dest.addr) else {
            // Unicast to a peer we never heard from: no neighbour resolution here.
            self.tx_errors += 1;
            return;
        };
        let i = self.tx_n;
        let f = &mut self.tx[i];
        let len = fill(&mut f[HEADERS..]);
        self.tx_lens[i] = write_headers(
            f, &self.mac, &dst_mac, &self.src, &dest.addr, self.port, dest.port, len,
        );
        self.tx_n += 1;
    }

    /// Send what is queued (the socket is bound, so frames need no address).
    pub fn flush(&mut self) {
        let mut done = 0;
        let mut spins = 0;
        while done < self.tx_n {
            // SAFETY: plain data, filled below.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: plain data, filled below.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let n = self.tx_n - done;
            for k in 0..n {
                iov[k] = libc::iovec {
                    iov_base: self.tx[done + k].as_mut_ptr().cast(),
                    iov_len: self.tx_lens[done + k],
                };
                hdrs[k].msg_hdr.msg_iov = &mut iov[k];
                hdrs[k].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at live buffers owned by self for the call.
            let r = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), hdrs.as_mut_ptr(), n as u32, 0) };
            if r > 0 {
                done += r as usize;
                continue;
            }
            spins += 1;
            if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock && spins < 1000 {
                std::thread::yield_now();
                continue;
            }
            self.tx_errors += 1;
            done += 1;
        }
        self.tx_n = 0;
    }

    /// Hand the block read last back to the kernel, then read the next full one.
    pub fn recv_batch(&mut self) -> usize {
        if let Some(b) = self.held.take() {
            // Our reads of the block's frames happen before the kernel may
            // reuse it (the volatile store alone does not order them).
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            // SAFETY: the block is ours (TP_STATUS_USER) until we store KERNEL.
            unsafe {
                std::ptr::write_volatile(
                    &mut (*self.block(b)).hdr.bh1.block_status,
                    libc::TP_STATUS_KERNEL,
                );
            }
        }
        self.rx.clear();
        // Blocks with nothing of ours (cannot happen with the filter, but cheap to skip).
        for _ in 0..BLOCKS {
            let b = self.next_block;
            let desc = self.block(b);
            // SAFETY: reading the status word of a block inside the mapping.
            let status = unsafe { std::ptr::read_volatile(&(*desc).hdr.bh1.block_status) };
            if status & libc::TP_STATUS_USER == 0 {
                return 0;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            self.next_block = (b + 1) % BLOCKS;
            self.held = Some(b);
            // SAFETY: the kernel handed the block over; its header is valid.
            let (n, first) = unsafe {
                (
                    (*desc).hdr.bh1.num_pkts,
                    (*desc).hdr.bh1.offset_to_first_pkt,
                )
            };
            let base = (b * BLOCK) as usize;
            let mut at = base + first as usize;
            for _ in 0..n {
                // SAFETY: tpacket3_hdr at `at` lies inside the block, as the kernel laid it out.
                let h = unsafe {
                    std::ptr::read_unaligned(self.ring.add(at).cast::<libc::tpacket3_hdr>())
                };
                let frame = at + usize::from(h.tp_mac);
                if let Some(rx) = self.parse(frame, h.tp_snaplen as usize) {
                    self.rx.push(rx);
                }
                if h.tp_next_offset == 0 {
                    break;
                }
                at += h.tp_next_offset as usize;
            }
            if !self.rx.is_empty() {
                return self.rx.len();
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            // SAFETY: as at the top: give the empty block back.
            unsafe {
                std::ptr::write_volatile(&mut (*desc).hdr.bh1.block_status, libc::TP_STATUS_KERNEL);
            }
            self.held = None;
        }
        0
    }

    fn bytes(&self, off: usize, len: usize) -> &[u8] {
        let end = (off + len).min(self.ring_len);
        // SAFETY: bounded by the mapping's length; the block is held by us.
        unsafe { std::slice::from_raw_parts(self.ring.add(off), end.saturating_sub(off)) }
    }

    fn parse(&mut self, frame: usize, caplen: usize) -> Option<Rx> {
        let f = self.bytes(frame, caplen);
        let FrameInfo {
            src_mac,
            src,
            payload,
            ..
        } = parse_frame(f, self.port)?;
        let rx = Rx {
            off: frame + payload.start,
            len: payload.len(),
        };
        if !self.loopback
            && !src.is_multicast()
            && !self.neighbors.iter().any(|n| n.0 == src)
            && self.neighbors.len() < 64
        {
            self.neighbors.push((src, src_mac));
        }
        Some(rx)
    }

    /// The DHCPv6 message of the `k`-th frame of the last `recv_batch`.
    pub fn received(&self, k: usize) -> &[u8] {
        let r = &self.rx[k];
        self.bytes(r.off, r.len)
    }

    /// Wait up to `ns` for a block to be handed over.
    pub fn wait_readable_ns(&self, ns: u64) {
        super::io::wait_readable_fd(self.fd.as_raw_fd(), ns);
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: unmapping the ring mapped in open; nothing refers to it after drop.
        unsafe { libc::munmap(self.ring.cast(), self.ring_len) };
    }
}
