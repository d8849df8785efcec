//! AF_XDP backend: one socket, one UMEM and one worker thread per RX queue.
//!
//! I/O only: the worker loop ([`super::worker_loop`]) runs it as a [`Device`].
//!
//! Every UMEM frame is always in exactly one place: our free list, the fill
//! ring, the kernel (RX), the worker loop (a request being handled, a reply
//! queued or held for the journal), or the TX/completion rings. A request's
//! frame becomes its reply's frame (rewritten in place), so TX needs no extra
//! frames, and every drop path puts the frame back on the free list: nothing
//! leaks.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use dhcp_common::{MAX_QUEUES, SERVER_PORT};
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::frame::{parse_request, reply_room, write_reply, RequestView};
use super::netif::NetIf;
use super::socket::SocketIo;
use super::supervise::QueueWorker;
use super::worker::Processor;
use super::worker_loop::{Device, Queued, Request, Sent};
use super::xdp::LoadedXdp;
use super::{Dataplane, DataplaneConfig, DataplaneError, XdpCause};
use crate::protocol::{DropReason, Handler, Ingress, Reply};
use crate::stats::WorkerCounters;
use crate::store::Durability;

/// Bytes per UMEM frame.
pub const FRAME_SIZE: u32 = 4096;
/// UMEM frames per queue (32 MB): the fill ring, the RX ring and the
/// replies held for the journal all draw on them, and an avalanche of
/// clients needs deep rings (see RING_SIZE).
pub const NUM_FRAMES: u32 = 8192;
/// Fill, RX, TX and completion ring size. 1,024 overflowed when 100,000
/// clients started within a second: each frame lost costs a client a 1 s
/// retransmission.
pub const RING_SIZE: u32 = 2048;
/// Descriptors read from the RX ring per round.
pub const BATCH: usize = 64;

/// Anonymous, page-aligned, pre-faulted memory for a UMEM; unmapped on
/// drop (also used by the echo benchmark's bare loop).
pub struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    /// Map `len` bytes.
    pub fn new(len: usize) -> io::Result<Area> {
        // SAFETY: anonymous private mapping; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Area {
            ptr: NonNull::new(p.cast()).expect("mmap returned non-null"),
            len,
        })
    }

    /// The whole mapping, for `Umem::new`.
    pub fn region(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }
}

impl Area {
    /// The UMEM chunk that `addr` points into, from `addr` to the chunk's end.
    #[expect(
        clippy::mut_from_ref,
        reason = "UMEM frames are owned by whoever holds their address, not by a Rust borrow"
    )]
    fn chunk(&self, addr: u64) -> &mut [u8] {
        let base = addr & !u64::from(FRAME_SIZE - 1);
        let end = (base + u64::from(FRAME_SIZE)).min(self.len as u64);
        let start = addr.min(end);
        // SAFETY: [start, end) lies inside the mapping, and the frame is ours
        // alone: the kernel handed it over on RX and gets it back only
        // through the TX or fill ring.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(start as usize),
                (end - start) as usize,
            )
        }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once, after the rings (declared
        // earlier in XskIo) are dropped and the socket closed.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One AF_XDP queue: its rings and UMEM, as a [`Device`]. Field order is
/// drop order: rings and socket first, the memory they point into last.
pub struct XskIo {
    rx: RingRx,
    tx: RingTx,
    fq: DeviceQueue,
    _user: User,
    _sock: Socket,
    _umem: Umem,
    area: Area,
    netif: NetIf,
    free: Vec<u64>,
    /// The last RX batch.
    batch: [XdpDesc; BATCH],
    /// The handler writes replies here; [`Device::reply`] builds the frame
    /// around them in the request's own frame.
    scratch: Box<[u8]>,
    fd: i32,
}

/// A request's frame and what its reply needs from it.
#[derive(Clone, Copy, Debug)]
pub struct XskRx {
    desc: XdpDesc,
    req: RequestView,
}

fn xsk_err(netif: &NetIf, queue: u32, what: &str, source: impl Into<XdpCause>) -> DataplaneError {
    DataplaneError::Xsk {
        iface: netif.name.clone(),
        queue,
        what: what.to_string(),
        source: Box::new(source.into()),
    }
}

impl XskIo {
    /// Create and bind the socket for `queue` of `netif`.
    pub fn open(netif: NetIf, queue: u32) -> Result<XskIo, DataplaneError> {
        let len = (FRAME_SIZE * NUM_FRAMES) as usize;
        let area = Area::new(len).map_err(|e| xsk_err(&netif, queue, "mmap UMEM", e))?;
        let config = UmemConfig {
            fill_size: RING_SIZE,
            complete_size: RING_SIZE,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        let region = area.region();
        // SAFETY: page-aligned mapping that outlives the Umem (field order).
        let umem = unsafe { Umem::new(config, region) }
            .map_err(|e| xsk_err(&netif, queue, "UMEM register", e))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(netif.index)
            .map_err(|e| xsk_err(&netif, queue, "interface", e))?;
        info.set_queue(queue);
        let sock =
            Socket::with_shared(&info, &umem).map_err(|e| xsk_err(&netif, queue, "socket", e))?;
        let fq = umem
            .fq_cq(&sock)
            .map_err(|e| xsk_err(&netif, queue, "fill/completion rings", e))?;
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: NonZeroU32::new(RING_SIZE),
                    tx_size: NonZeroU32::new(RING_SIZE),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .map_err(|e| xsk_err(&netif, queue, "rx/tx rings", e))?;
        let rx = user
            .map_rx()
            .map_err(|e| xsk_err(&netif, queue, "map rx", e))?;
        let tx = user
            .map_tx()
            .map_err(|e| xsk_err(&netif, queue, "map tx", e))?;
        umem.bind(&user)
            .map_err(|e| xsk_err(&netif, queue, "bind", e))?;
        let fd = rx.as_raw_fd();
        let mut io = XskIo {
            rx,
            tx,
            fq,
            _user: user,
            _sock: sock,
            _umem: umem,
            area,
            netif,
            free: (0..u64::from(NUM_FRAMES))
                .rev()
                .map(|i| i * u64::from(FRAME_SIZE))
                .collect(),
            batch: [XdpDesc {
                addr: 0,
                len: 0,
                options: 0,
            }; BATCH],
            scratch: vec![0u8; FRAME_SIZE as usize].into_boxed_slice(),
            fd,
        };
        io.refill();
        Ok(io)
    }

    /// The socket fd to put into the XskMap.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// Frames the free list holds (for leak tests).
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    fn reclaim_completions(&mut self) {
        let mut c = self.fq.complete(RING_SIZE);
        while let Some(addr) = c.read() {
            self.free.push(addr & !u64::from(FRAME_SIZE - 1));
        }
        c.release();
    }

    fn refill(&mut self) {
        if self.free.is_empty() {
            return;
        }
        let mut f = self.fq.fill(self.free.len() as u32);
        let take = (f.capacity() as usize).min(self.free.len());
        let start = self.free.len() - take;
        let n = f.insert(self.free[start..].iter().copied()) as usize;
        f.commit();
        self.free.truncate(self.free.len() - n);
    }

    fn free_frame(&mut self, addr: u64) {
        self.free.push(addr & !u64::from(FRAME_SIZE - 1));
    }
}

impl Device for XskIo {
    type Rx = XskRx;
    type Tx = XdpDesc;
    const BATCH: usize = BATCH;
    const BUFFERS: usize = NUM_FRAMES as usize;

    fn fd(&self) -> RawFd {
        self.fd
    }

    fn receive(&mut self) -> usize {
        self.reclaim_completions();
        self.refill();
        let mut got = 0;
        let mut r = self.rx.receive(BATCH as u32);
        while let Some(d) = r.read() {
            self.batch[got] = d;
            got += 1;
        }
        r.release();
        got
    }

    fn request(&mut self, i: usize) -> Result<Request<'_, XskRx>, DropReason> {
        let desc = self.batch[i];
        let parsed = {
            let chunk = self.area.chunk(desc.addr);
            let len = (desc.len as usize).min(chunk.len());
            parse_request(&chunk[..len])
        };
        let Some(req) = parsed else {
            self.free_frame(desc.addr);
            return Err(DropReason::Malformed);
        };
        let chunk = self.area.chunk(desc.addr);
        let room = reply_room(&req, chunk.len()).min(self.scratch.len());
        Ok(Request {
            ingress: Ingress {
                ifindex: self.netif.index,
                src: req.src,
                src_port: req.src_port,
                dst_multicast: req.dst.is_multicast(),
            },
            payload: &chunk[req.payload_start..req.payload_end],
            out: &mut self.scratch[..room],
            rx: XskRx { desc, req },
        })
    }

    /// Rewrite the request's frame into the reply.
    fn reply(&mut self, rx: XskRx, reply: &Reply) -> Result<XdpDesc, DropReason> {
        let src = self
            .netif
            .reply_source(rx.req.dst, reply.to)
            .ok_or(DropReason::NoSourceAddress)?;
        let chunk = self.area.chunk(rx.desc.addr);
        let n = write_reply(
            chunk,
            &rx.req,
            self.netif.mac,
            src,
            reply,
            &self.scratch[..reply.len],
        )
        .ok_or(DropReason::ReplyTooLarge)?;
        Ok(XdpDesc {
            addr: rx.desc.addr,
            len: n as u32,
            options: 0,
        })
    }

    fn free_rx(&mut self, rx: XskRx) {
        self.free_frame(rx.desc.addr);
    }

    fn free_tx(&mut self, tx: XdpDesc) {
        self.free_frame(tx.addr);
    }

    /// As many as the TX ring takes; their frames come back through the
    /// completion ring.
    fn transmit(&mut self, queue: &[Queued<XdpDesc>]) -> Sent {
        let mut w = self.tx.transmit(queue.len() as u32);
        let n = w.insert(queue.iter().map(|q| q.tx)) as usize;
        w.commit();
        drop(w);
        // Copy mode (veth) only sends on a wake-up; with need_wakeup the
        // kernel tells us when one is needed.
        if self.tx.needs_wakeup() {
            self.tx.wake();
        }
        Sent {
            sent: n,
            failed: 0,
            more: false,
        }
    }
}

/// The fallback listener: a socket-mode worker on UDP 547, joined to the
/// DHCPv6 groups on the served interfaces, with the same handler and
/// journal as the queue workers. It sees only what the program passes: in
/// normal operation nothing, while a queue's worker restarts (its slot is
/// empty) or on a queue beyond the XskMap, that queue's clients. A port 547
/// already taken (another server on other interfaces) is no reason not to
/// serve: then those frames are only counted, and the log says so.
fn start_fallback<H: Handler, D: Durability>(
    dp: &mut Dataplane,
    cfg: &DataplaneConfig,
    ifaces: &[NetIf],
    handler: &Arc<H>,
    durability: &Arc<D>,
) -> Result<(), DataplaneError> {
    let io = match SocketIo::open(ifaces.to_vec()) {
        Ok(io) => io,
        Err(e) => {
            tracing::error!(
                "no fallback listener (UDP [::]:{SERVER_PORT}: {e}): DHCPv6 on an RX queue without \
                 an AF_XDP worker is passed to the kernel unanswered, counted in xdp.no_socket and \
                 xdp.beyond_queue_limit"
            );
            return Ok(());
        }
    };
    let (thread, counters) =
        super::spawn_socket_worker(dp, cfg, io, "dhcp6d-fallback", handler, durability)
            .map_err(DataplaneError::Socket)?;
    dp.fallback = Some(super::Fallback {
        thread: Some(thread),
        counters,
    });
    Ok(())
}

/// Attach the program to every interface and start a worker per RX queue
/// (up to [`MAX_QUEUES`]), and the fallback listener.
pub(super) fn start_all<H: Handler, D: Durability>(
    dp: &mut Dataplane,
    cfg: &DataplaneConfig,
    ifaces: &[NetIf],
    handler: &Arc<H>,
    durability: &Arc<D>,
) -> Result<(), DataplaneError> {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Listening before any program is attached: from the first frame on,
    // whatever the program passes for want of a socket is answered.
    start_fallback(dp, cfg, ifaces, handler, durability)?;
    for netif in ifaces {
        let mut prog = LoadedXdp::load().map_err(|e| match e {
            DataplaneError::Xdp { what, source, .. } => DataplaneError::Xdp {
                iface: netif.name.clone(),
                what,
                source,
            },
            other => other,
        })?;
        let found = netif.rx_queues();
        let queues = found
            .min(cfg.max_queues.unwrap_or(MAX_QUEUES))
            .min(MAX_QUEUES);
        if found > MAX_QUEUES {
            // Served, not refused: the fallback answers those queues, and a
            // queue count can grow after start (`ethtool -L`) anyway.
            tracing::warn!(
                iface = %netif.name,
                "{} has {found} RX queues but AF_XDP serves at most {MAX_QUEUES} (the XskMap's size): \
                 DHCPv6 on queues {MAX_QUEUES}..{} goes to the kernel and is answered by the fallback \
                 listener, more slowly (counted in xdp.beyond_queue_limit and xdp.fallback_answered); \
                 `ethtool -L {} combined {MAX_QUEUES}` (or `rx {MAX_QUEUES}`) keeps every queue on AF_XDP",
                netif.name,
                found - 1,
                netif.name,
            );
        }
        dp.queues_without_worker += found - queues;
        let slots = prog.slots();
        for queue in 0..queues {
            let counters = Arc::new(WorkerCounters::default());
            let worker = QueueWorker {
                netif: netif.clone(),
                queue,
                slots: slots.clone(),
                spin_budget: cfg.spin_budget,
                nap: cfg.nap,
                backoff_min: cfg.restart_backoff,
                restarts: dp.restarts.clone(),
                stop: dp.stop.clone(),
                proc: Processor::new(handler.clone(), durability.clone(), counters.clone()),
            };
            let (ready_tx, ready_rx) = sync_channel(1);
            let cpu = cfg.pin_workers.then_some(queue as usize % ncpu);
            let name = format!("dhcp6d-xsk-{}-{queue}", netif.name);
            // The xdpilone rings are not Send: each worker builds (and
            // rebuilds) its own socket, binds it into the XskMap and
            // reports the first start's outcome back.
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        super::pin_to_cpu(cpu);
                    }
                    worker.run(ready_tx);
                })
                .map_err(|e| xsk_err(netif, queue, "spawn", e))?;
            dp.workers.push(thread);
            dp.counters.push(counters);
            ready_rx.recv().map_err(|_| {
                let gone = XdpCause::Other("ended without reporting".into());
                xsk_err(netif, queue, "worker", gone)
            })??;
        }
        // Only frames to this host are ours (its MAC, its addresses or the
        // DHCPv6 groups); `Dataplane::refresh_local` keeps the set current.
        let addrs = netif
            .ipv6_addresses()
            .map_err(|e| xsk_err(netif, 0, "getifaddrs", XdpCause::Other(e.to_string())))?;
        prog.set_local(netif.mac, &addrs)?;
        // Attach last: until now frames would only have been passed anyway.
        let mode = prog.attach(&netif.name)?;
        tracing::info!(iface = %netif.name, ?mode, queues, "XDP attached");
        dp.programs.push(Mutex::new(prog));
        dp.netifs.push(netif.clone());
    }
    Ok(())
}
