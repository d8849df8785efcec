//! Packet I/O: gets DHCPv6 messages from the wire to a [`Handler`] and its
//! replies back, either through XDP + AF_XDP or through kernel UDP sockets.
//!
//! This module owns sockets, the XDP program, worker threads and frame
//! building. It never looks inside a DHCPv6 message (that is `protocol`) and never
//! writes the journal (that is `store`): it only waits for
//! [`Durability::durable_seq`] before releasing a reply that needs it.
//!
//! # Entry point (used by `dhcp6d serve`)
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo<H: dhcp6d::protocol::Handler, D: dhcp6d::store::Durability>(h: Arc<H>, d: Arc<D>)
//! # -> Result<(), dhcp6d::dataplane::DataplaneError> {
//! use dhcp6d::dataplane::IoMode;
//! use dhcp6d::dataplane::{start, DataplaneConfig};
//! let cfg = DataplaneConfig::new(vec!["eth0".into()], IoMode::Xdp);
//! let dp = start(&cfg, h, d)?;          // attaches XDP, spawns workers
//! let per_worker = dp.worker_counters(); // sum these for `stats`
//! let xdp = dp.xdp_counters();           // None in socket mode
//! dp.stop();                             // detaches XDP, joins workers
//! # Ok(()) }
//! ```
//!
//! # Pipeline
//! - [`xdp`]: the eBPF program (built by `build.rs` from `dhcp-ebpf`) is
//!   attached to every interface (native mode, generic as a fallback); it
//!   redirects DHCPv6-to-server frames to the AF_XDP socket of their RX queue
//!   and passes everything else, and everything when no socket is bound.
//! - [`afxdp`]: one socket + one pinned worker thread per RX queue of each
//!   interface; frames are handled and answered in place in the UMEM. Beside
//!   them a fallback listener (a socket-mode worker on UDP 547) answers what
//!   the program passes to the kernel for want of a socket: a queue whose
//!   worker is restarting, or a queue beyond the XskMap.
//! - [`socket`]: one UDP socket on `[::]:547` and one worker thread.
//! - [`worker_loop`]: the one loop both run over their [`worker_loop::Device`]
//!   (handler call, held replies, sending, pacing, shutdown, counters); the
//!   backends do I/O only.
//! - [`worker`]: what the loop does per message (handler call, counters,
//!   journal) and the queue of replies held for durability.
//! - [`idle`]: spin, nap or sleep, decided from the time it is given.
//! - [`frame`]: request parsing and reply building for AF_XDP.

pub mod afxdp;
pub mod frame;
pub mod idle;
pub mod netif;
pub mod socket;
pub mod supervise;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod worker;
pub mod worker_loop;
pub mod xdp;
pub mod xdp_log;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::protocol::Handler;
use crate::stats::WorkerCounters;
use crate::store::Durability;

pub use worker::Processor;
pub use xdp::XdpTotals;

/// Which packet I/O backend serves clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// XDP program steering DHCPv6 into AF_XDP sockets.
    #[default]
    Xdp,
    /// Kernel UDP sockets on port 547.
    Socket,
}

impl std::str::FromStr for IoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "xdp" => Ok(IoMode::Xdp),
            "socket" => Ok(IoMode::Socket),
            _ => Err(format!("{s:?} is not an io mode (xdp, socket)")),
        }
    }
}

impl IoMode {
    /// The name used in the config file and in stats.
    pub fn as_str(self) -> &'static str {
        match self {
            IoMode::Xdp => "xdp",
            IoMode::Socket => "socket",
        }
    }
}

/// What the data plane needs from the configuration.
#[derive(Clone, Debug)]
pub struct DataplaneConfig {
    /// Interfaces clients or relays reach us on.
    pub interfaces: Vec<String>,
    /// XDP + AF_XDP, or kernel sockets.
    pub io: IoMode,
    /// AF_XDP: serve at most this many RX queues per interface (None: all active ones).
    pub max_queues: Option<u32>,
    /// AF_XDP: pin queue N's worker to CPU N modulo the CPU count.
    pub pin_workers: bool,
    /// AF_XDP: how long a worker polls its rings after its last frame
    /// before sleeping ([`idle::SPIN_BUDGET`]).
    pub spin_budget: std::time::Duration,
    /// AF_XDP: how long a worker naps between batches while requests come
    /// often but not back to back ([`idle::NAP`]; zero: never nap).
    pub nap: std::time::Duration,
    /// First wait before a dead worker (AF_XDP or socket) is restarted;
    /// doubles per death up to [`supervise::RESTART_BACKOFF_MAX`].
    pub restart_backoff: std::time::Duration,
}

impl DataplaneConfig {
    /// Defaults: every active RX queue, workers pinned.
    pub fn new(interfaces: Vec<String>, io: IoMode) -> Self {
        DataplaneConfig {
            interfaces,
            io,
            max_queues: None,
            pin_workers: true,
            spin_budget: idle::SPIN_BUDGET,
            nap: idle::NAP,
            restart_backoff: supervise::RESTART_BACKOFF_MIN,
        }
    }
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataplaneError {
    /// No interface configured.
    #[error("no interfaces configured")]
    NoInterfaces,
    /// A configured interface does not exist in this network namespace.
    #[error("interface {name:?}: {source}")]
    Interface {
        /// The interface name from the configuration.
        name: String,
        /// What the lookup said.
        source: io::Error,
    },
    /// This binary was built with `DHCP6D_SKIP_EBPF=1` and has no XDP program.
    #[error("this dhcp6d was built without its XDP program (DHCP6D_SKIP_EBPF=1): rebuild without it, or use io = \"socket\"")]
    NoXdpObject,
    /// Loading or attaching the XDP program, or using its maps, failed.
    #[error("XDP program {iface}: {what}: {source}")]
    Xdp {
        /// Interface (empty while loading).
        iface: String,
        /// What was being done.
        what: String,
        /// Why it failed (boxed: aya's errors are large).
        #[source]
        source: Box<XdpCause>,
    },
    /// An AF_XDP socket could not be set up, or its worker failed.
    #[error("AF_XDP socket on {iface} queue {queue}: {what}: {source}")]
    Xsk {
        /// Interface name.
        iface: String,
        /// RX queue id.
        queue: u32,
        /// What was being done.
        what: String,
        /// Why it failed (boxed: aya's errors are large).
        #[source]
        source: Box<XdpCause>,
    },
    /// The kernel UDP socket could not be set up.
    #[error("UDP socket on [::]:{port}: {0}", port = dhcp_common::SERVER_PORT)]
    Socket(#[source] io::Error),
}

/// The cause under [`DataplaneError::Xdp`] and [`DataplaneError::Xsk`]: the
/// library's or the system's own error, kept as this one's source (and shown
/// in the message, which is what `serve` prints).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdpCause {
    /// Loading the object file (aya).
    #[error("{0}")]
    Ebpf(#[from] aya::EbpfError),
    /// Loading, inspecting or attaching the program (aya).
    #[error("{0}")]
    Program(#[from] aya::programs::ProgramError),
    /// Taking or updating a map (aya).
    #[error("{0}")]
    Map(#[from] aya::maps::MapError),
    /// A system call: the UMEM mapping, the AF_XDP socket and its rings, a
    /// worker thread.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// What has no error value of its own: a program or map missing from
    /// the object, a worker that panicked or vanished, the log reader.
    #[error("{0}")]
    Other(String),
}

impl From<xdpilone::Errno> for XdpCause {
    fn from(e: xdpilone::Errno) -> Self {
        XdpCause::Io(io::Error::from_raw_os_error(e.get_raw()))
    }
}

/// A running data plane. Dropping it stops it too; [`Dataplane::stop`] is explicit.
pub struct Dataplane {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    counters: Vec<Arc<WorkerCounters>>,
    restarts: Arc<AtomicU64>,
    // Keeps the programs attached; dropping one detaches it. Behind a mutex
    // only because the control thread reads counters through `&self`.
    programs: Vec<Mutex<xdp::LoadedXdp>>,
    /// The interface of each entry of `programs`, same order.
    netifs: Vec<netif::NetIf>,
    /// AF_XDP mode: the kernel-socket listener that answers what the XDP
    /// program passes for want of a socket ([`afxdp::start_fallback`]).
    fallback: Option<Fallback>,
    /// AF_XDP mode: RX queues found at start that got no worker, all
    /// interfaces together (beyond [`dhcp_common::MAX_QUEUES`] or
    /// [`DataplaneConfig::max_queues`]).
    queues_without_worker: u32,
}

/// The AF_XDP fallback listener's thread and counters.
struct Fallback {
    thread: Option<JoinHandle<()>>,
    counters: Arc<WorkerCounters>,
}

impl Dataplane {
    /// One counter block per worker; the control side sums them.
    pub fn worker_counters(&self) -> Vec<Arc<WorkerCounters>> {
        self.counters.clone()
    }

    /// The XDP program's counters summed over CPUs and interfaces (None in socket mode).
    pub fn xdp_counters(&self) -> Option<XdpTotals> {
        if self.programs.is_empty() {
            return None;
        }
        let mut total = XdpTotals::default();
        for p in &self.programs {
            if let Ok(p) = p.lock() {
                total += p.totals();
            }
        }
        Some(total)
    }

    /// Re-read each XDP interface's IPv6 addresses into its program, so an
    /// address added after start (SLAAC, `ip addr add`) is served and a
    /// removed one is no longer taken. Called periodically by the server.
    pub fn refresh_local(&self) {
        for (p, netif) in self.programs.iter().zip(&self.netifs) {
            let addrs = match netif.ipv6_addresses() {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(iface = %netif.name, "reading addresses: {e}");
                    continue;
                }
            };
            if let Ok(mut p) = p.lock() {
                // Map updates: CAP_BPF where the kernel asks for it.
                let _raised = crate::caps::raise();
                if let Err(e) = p.set_local(netif.mac, &addrs) {
                    tracing::warn!(iface = %netif.name, "updating the XDP address map: {e}");
                }
            }
        }
    }

    /// Workers (AF_XDP or socket) that died and were restarted, since start.
    pub fn worker_restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Number of worker threads: one per served RX queue (AF_XDP) or the
    /// socket worker; the AF_XDP fallback listener is not one of them.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// AF_XDP mode: the fallback listener's counter block (None in socket
    /// mode, or when it could not bind port 547); not one of
    /// [`Dataplane::worker_counters`], so the stats add it themselves.
    pub fn fallback_counters(&self) -> Option<Arc<WorkerCounters>> {
        self.fallback.as_ref().map(|f| f.counters.clone())
    }

    /// AF_XDP mode: RX queues found at start that have no worker (their
    /// DHCPv6 goes to the fallback listener).
    pub fn queues_without_worker(&self) -> u32 {
        self.queues_without_worker
    }

    /// Stop workers (they flush durable replies first), then detach XDP.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(t) = self.fallback.as_mut().and_then(|f| f.thread.take()) {
            let _ = t.join();
        }
        // Detach only after the sockets are gone, so frames never hit a
        // half-torn-down queue; the XskMap slots empty as sockets close.
        // A netlink detach needs CAP_NET_ADMIN, kept permitted for this.
        let _raised = crate::caps::raise();
        self.programs.clear();
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Start the data plane: look up the interfaces, then either attach XDP and
/// start one AF_XDP worker per RX queue, or open the UDP socket and start
/// one worker. Call it in the network namespace the interfaces live in.
pub fn start<H: Handler, D: Durability>(
    cfg: &DataplaneConfig,
    handler: Arc<H>,
    durability: Arc<D>,
) -> Result<Dataplane, DataplaneError> {
    if cfg.interfaces.is_empty() {
        return Err(DataplaneError::NoInterfaces);
    }
    let mut ifaces = Vec::with_capacity(cfg.interfaces.len());
    for name in &cfg.interfaces {
        let netif = netif::NetIf::lookup(name).map_err(|source| DataplaneError::Interface {
            name: name.clone(),
            source,
        })?;
        ifaces.push(netif);
    }
    let mut dp = Dataplane {
        stop: Arc::new(AtomicBool::new(false)),
        workers: Vec::new(),
        counters: Vec::new(),
        restarts: Arc::new(AtomicU64::new(0)),
        programs: Vec::new(),
        netifs: Vec::new(),
        fallback: None,
        queues_without_worker: 0,
    };
    match cfg.io {
        IoMode::Socket => {
            let io = socket::SocketIo::open(ifaces).map_err(DataplaneError::Socket)?;
            let (thread, counters) =
                spawn_socket_worker(&dp, cfg, io, "dhcp6d-sock", &handler, &durability)
                    .map_err(DataplaneError::Socket)?;
            dp.counters.push(counters);
            dp.workers.push(thread);
        }
        IoMode::Xdp => afxdp::start_all(&mut dp, cfg, &ifaces, &handler, &durability)?,
    }
    Ok(dp)
}

/// Start a supervised socket-mode worker on `io`: the socket backend's one
/// worker, or the AF_XDP fallback listener (same loop, same core, so the
/// same hold-until-durable rule).
fn spawn_socket_worker<H: Handler, D: Durability>(
    dp: &Dataplane,
    cfg: &DataplaneConfig,
    io: socket::SocketIo,
    name: &str,
    handler: &Arc<H>,
    durability: &Arc<D>,
) -> io::Result<(JoinHandle<()>, Arc<WorkerCounters>)> {
    // No nap here: measured at 12,707 leases/s, alternating runs, it
    // cut context switches per lease (0.96 -> 0.77) but not the CPU
    // (1.86/1.83 s per 100k without, 2.20/1.98 s with a 500 us nap):
    // the socket path has no spin to save.
    let counters = Arc::new(WorkerCounters::default());
    let worker = supervise::SocketWorker {
        io,
        backoff_min: cfg.restart_backoff,
        restarts: dp.restarts.clone(),
        stop: dp.stop.clone(),
        proc: Processor::new(handler.clone(), durability.clone(), counters.clone()),
    };
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || worker.run())?;
    Ok((thread, counters))
}

pub(crate) fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity on this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            tracing::warn!(cpu, "cannot pin worker: {}", io::Error::last_os_error());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn xdp_and_xsk_errors_keep_their_cause_and_still_read_well() {
        let e = DataplaneError::Xsk {
            iface: "eth0".into(),
            queue: 3,
            what: "bind".into(),
            source: Box::new(io::Error::from_raw_os_error(libc::EBUSY).into()),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("AF_XDP socket on eth0 queue 3: bind: ") && text.contains("busy"),
            "{text}"
        );
        let io = e
            .source()
            .and_then(|cause| cause.source())
            .and_then(|s| s.downcast_ref::<io::Error>())
            .expect("the io::Error is kept");
        assert_eq!(io.raw_os_error(), Some(libc::EBUSY));
        // xdpilone's errno becomes an io::Error too.
        let XdpCause::Io(io) = XdpCause::from(xdpilone::Errno::last_os_error()) else {
            panic!("an errno is an io::Error");
        };
        assert!(io.raw_os_error().is_some());

        let e = DataplaneError::Xdp {
            iface: "eth0".into(),
            what: "XSKS".into(),
            source: Box::new(aya::maps::MapError::KeyNotFound.into()),
        };
        let map_error = e
            .source()
            .and_then(|cause| cause.source())
            .and_then(|s| s.downcast_ref::<aya::maps::MapError>());
        assert!(matches!(map_error, Some(aya::maps::MapError::KeyNotFound)));
        assert!(e.to_string().starts_with("XDP program eth0: XSKS: "), "{e}");
    }
}
