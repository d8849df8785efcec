//! Loading and attaching the XDP program, its XskMap and its counters.
//!
//! One program instance (with its own maps) per interface, because the
//! XskMap is indexed by RX queue id and queue ids repeat across interfaces.
//! Attachment uses a bpf_link owned by this process: when the process dies
//! the kernel detaches the program by itself, and the `Ebpf` drop detaches it
//! on a clean stop.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::process::Command;
use std::sync::{Arc, Mutex};

use std::net::Ipv6Addr;

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray, XskMap};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};
use dhcp_common::counters::{CounterValue, XdpCounter};
use dhcp_common::{LocalMac, COUNTERS_MAP, LOCAL_ADDRS_MAP, LOCAL_MAC_MAP, XSKS_MAP};

use super::xdp_log::{self, XdpLogReader};
use super::{DataplaneError, XdpCause};

/// The compiled program, built by `build.rs` (empty with `DHCP6D_SKIP_EBPF=1`).
static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dhcp-xdp"));

/// Name of the program function in `dhcp-ebpf`.
pub use dhcp_common::PROGRAM_NAME;

/// The embedded object file (for tests that load it themselves).
pub fn object() -> Result<&'static [u8], DataplaneError> {
    if XDP_OBJECT.is_empty() {
        Err(DataplaneError::NoXdpObject)
    } else {
        Ok(XDP_OBJECT)
    }
}

/// Summed per-CPU counters of the XDP program (all interfaces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpTotals {
    /// Every frame the program looked at.
    pub seen: u64,
    /// DHCPv6-to-server frames handed to a worker's AF_XDP socket.
    pub redirected: u64,
    /// Frames given to the kernel stack: not ours, malformed, or no socket bound.
    pub passed: u64,
    /// Frames too short or malformed to classify (also counted in `passed`).
    pub malformed: u64,
    /// DHCPv6 frames passed because no worker socket was bound on the queue.
    pub no_socket: u64,
    /// UDP/547 frames passed because they were addressed to another host.
    pub not_ours: u64,
    /// DHCPv6 frames passed because their RX queue is beyond the XskMap
    /// ([`dhcp_common::MAX_QUEUES`]).
    pub beyond_queue_limit: u64,
}

impl std::ops::AddAssign for XdpTotals {
    fn add_assign(&mut self, o: XdpTotals) {
        self.seen += o.seen;
        self.redirected += o.redirected;
        self.passed += o.passed;
        self.malformed += o.malformed;
        self.no_socket += o.no_socket;
        self.not_ours += o.not_ours;
        self.beyond_queue_limit += o.beyond_queue_limit;
    }
}

/// The program's XskMap: which AF_XDP socket gets the frames of each RX
/// queue. Shared by the workers of one interface, which bind their socket on
/// (re)start and clear it when they die; locked only then, never per packet.
#[derive(Clone)]
pub struct XskSlots {
    map: Arc<Mutex<XskMap<MapData>>>,
}

impl XskSlots {
    /// Steer `queue`'s DHCPv6 frames to the socket `fd`.
    pub fn bind(&self, queue: u32, fd: RawFd) -> Result<(), MapError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.set(queue, fd, 0)
    }

    /// Empty `queue`'s slot: the program passes its frames to the kernel.
    /// Emptying an empty slot is not an error.
    pub fn clear(&self, queue: u32) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // The kernel also drops the entry when the socket closes; either
        // way the slot ends up empty, so the result does not matter.
        let _ = map.unset(queue);
    }
}

/// The program loaded (not attached): enough for BPF_PROG_TEST_RUN.
pub struct LoadedXdp {
    ebpf: Ebpf,
    xsks: XskSlots,
    /// Drains the program's debug log, when debug logging was on at load.
    _log: Option<XdpLogReader>,
}

impl LoadedXdp {
    /// Load the embedded program into the kernel; its debug log is on (and
    /// forwarded to `tracing`) when `tracing` enables debug for
    /// [`xdp_log::TARGET`].
    pub fn load() -> Result<LoadedXdp, DataplaneError> {
        Self::load_with_log(xdp_log::level_from_tracing(), xdp_log::ToTracing)
    }

    /// Load with the program's log level set to `level` (aya-log numbers,
    /// [`xdp_log::LEVEL_OFF`] for none) and its records sent to `sink`.
    pub fn load_with_log<L: log::Log + Send + 'static>(
        level: u8,
        sink: L,
    ) -> Result<LoadedXdp, DataplaneError> {
        let xdp_err = |what: &str, source: XdpCause| DataplaneError::Xdp {
            iface: String::new(),
            what: what.to_string(),
            source: Box::new(source),
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(xdp_log::LEVEL_GLOBAL, &level, true)
            .load(object()?)
            .map_err(|e| xdp_err("load object", e.into()))?;
        let missing = |what: String| xdp_err("load object", XdpCause::Other(what));
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| missing(format!("no program {PROGRAM_NAME} in the object")))?
            .try_into()
            .map_err(|e: ProgramError| xdp_err(PROGRAM_NAME, e.into()))?;
        prog.load()
            .map_err(|e| xdp_err("verifier/load", e.into()))?;
        let program_id = prog
            .info()
            .map_err(|e| xdp_err("program info", e.into()))?
            .id();
        // Owned out of the Ebpf so workers can hold it; the loaded program
        // keeps referring to the same kernel map.
        let map = ebpf
            .take_map(XSKS_MAP)
            .ok_or_else(|| missing(format!("no {XSKS_MAP} map")))?;
        let map = XskMap::try_from(map).map_err(|e| xdp_err(XSKS_MAP, e.into()))?;
        let log = if level == xdp_log::LEVEL_OFF {
            None
        } else {
            Some(
                XdpLogReader::start(program_id, sink)
                    .map_err(|e| xdp_err("debug log", XdpCause::Other(e)))?,
            )
        };
        Ok(LoadedXdp {
            ebpf,
            xsks: XskSlots {
                map: Arc::new(Mutex::new(map)),
            },
            _log: log,
        })
    }

    /// The kernel's id of the loaded program.
    pub fn program_id(&mut self) -> u32 {
        self.program().info().map(|i| i.id()).unwrap_or(0)
    }

    /// The XskMap, for workers that (re)bind their sockets.
    pub fn slots(&self) -> XskSlots {
        self.xsks.clone()
    }

    fn program(&mut self) -> &mut Xdp {
        // Checked in `load`.
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .expect("program checked at load")
    }

    /// The program's fd (for BPF_PROG_TEST_RUN).
    pub fn program_fd(&mut self) -> RawFd {
        let fd = self.program().fd().expect("loaded");
        fd.as_fd().as_raw_fd()
    }

    /// Attach to `iface`: native mode first, generic when the driver lacks it.
    /// A program left attached by netlink (e.g. `ip link set xdp`, or an old
    /// build) is removed first so ours replaces it. Returns the mode used.
    pub fn attach(&mut self, iface: &str) -> Result<XdpMode, DataplaneError> {
        let mut last = None;
        for round in 0..2 {
            for mode in [XdpMode::Driver, XdpMode::Skb] {
                match self.program().attach(iface, mode) {
                    Ok(_) => {
                        if mode == XdpMode::Skb {
                            tracing::warn!(
                                iface,
                                "native XDP unavailable ({}); using generic XDP",
                                attempt(&last)
                            );
                        }
                        return Ok(mode);
                    }
                    Err(e) => last = Some((mode, e)),
                }
            }
            if round == 0 {
                tracing::warn!(
                    iface,
                    "XDP attach failed ({}); removing a stale program and retrying",
                    attempt(&last)
                );
                remove_stale_program(iface);
            }
        }
        let (mode, e) = last.expect("attach was tried");
        Err(DataplaneError::Xdp {
            iface: iface.to_string(),
            what: format!("attach failed ({mode:?})"),
            source: Box::new(e.into()),
        })
    }

    /// Put an AF_XDP socket into the XskMap slot for `queue`.
    pub fn bind_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), DataplaneError> {
        self.xsks.bind(queue, fd).map_err(|e| DataplaneError::Xdp {
            iface: String::new(),
            what: format!("{XSKS_MAP}[{queue}] = fd {fd}"),
            source: Box::new(e.into()),
        })
    }

    /// Sum of the per-CPU counters.
    pub fn totals(&self) -> XdpTotals {
        let Some(map) = self.ebpf.map(COUNTERS_MAP) else {
            return XdpTotals::default();
        };
        let Ok(arr) = PerCpuArray::<_, CounterValue>::try_from(map) else {
            return XdpTotals::default();
        };
        let sum = |c: XdpCounter| -> u64 {
            arr.get(&(c as u32), 0)
                .map(|v| v.iter().map(|x| x.value).sum())
                .unwrap_or(0)
        };
        XdpTotals {
            seen: sum(XdpCounter::Seen),
            redirected: sum(XdpCounter::Redirected),
            passed: sum(XdpCounter::Passed),
            malformed: sum(XdpCounter::Malformed),
            no_socket: sum(XdpCounter::NoSocket),
            not_ours: sum(XdpCounter::NotOurs),
            beyond_queue_limit: sum(XdpCounter::BeyondQueueLimit),
        }
    }

    /// Tell the program which destinations are ours: the interface's MAC
    /// and its IPv6 addresses. Addresses no longer in `addrs` are removed.
    /// Frames to anything else (but the DHCPv6 groups) are passed.
    pub fn set_local(&mut self, mac: [u8; 6], addrs: &[Ipv6Addr]) -> Result<(), DataplaneError> {
        let err = |what: &str, e: MapError| DataplaneError::Xdp {
            iface: String::new(),
            what: what.to_string(),
            source: Box::new(e.into()),
        };
        let missing = |name: &str| DataplaneError::Xdp {
            iface: String::new(),
            what: name.to_string(),
            source: Box::new(XdpCause::Other(format!("no {name} map"))),
        };
        let map = self
            .ebpf
            .map_mut(LOCAL_MAC_MAP)
            .ok_or_else(|| missing(LOCAL_MAC_MAP))?;
        let mut arr: Array<_, LocalMac> =
            Array::try_from(map).map_err(|e| err(LOCAL_MAC_MAP, e))?;
        let value = LocalMac {
            mac,
            set: 1,
            _pad: 0,
        };
        arr.set(0, value, 0).map_err(|e| err(LOCAL_MAC_MAP, e))?;
        let map = self
            .ebpf
            .map_mut(LOCAL_ADDRS_MAP)
            .ok_or_else(|| missing(LOCAL_ADDRS_MAP))?;
        let mut hash: HashMap<_, [u8; 16], u8> =
            HashMap::try_from(map).map_err(|e| err(LOCAL_ADDRS_MAP, e))?;
        let want: Vec<[u8; 16]> = addrs.iter().map(|a| a.octets()).collect();
        let stale: Vec<[u8; 16]> = hash
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !want.contains(k))
            .collect();
        for k in stale {
            // Gone already is as good as removed.
            let _ = hash.remove(&k);
        }
        for k in &want {
            hash.insert(k, 1, 0).map_err(|e| err(LOCAL_ADDRS_MAP, e))?;
        }
        Ok(())
    }
}

/// The last attach attempt, for the log: `Skb: <error>`.
fn attempt(last: &Option<(XdpMode, ProgramError)>) -> String {
    match last {
        Some((mode, e)) => format!("{mode:?}: {e}"),
        None => String::new(),
    }
}

/// Remove any netlink-attached XDP program (every mode) from `iface`.
fn remove_stale_program(iface: &str) {
    for kind in ["xdp", "xdpgeneric", "xdpdrv"] {
        let _ = Command::new("ip")
            .args(["link", "set", "dev", iface, kind, "off"])
            .status();
    }
}
