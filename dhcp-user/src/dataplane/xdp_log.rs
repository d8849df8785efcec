//! The XDP program's debug log (aya-log-ebpf) brought into `tracing`.
//!
//! The program logs only on rare paths (a DHCPv6 frame for a queue with no
//! socket bound: a dead or missing worker). Every log call first reads the
//! program's `AYA_LOG_LEVEL` global, which is fixed at load time: 0 (off)
//! unless `tracing` has debug enabled for [`TARGET`], so the per-packet cost
//! is one load and compare when nobody listens. When it is on, one thread per
//! interface drains the program's ring buffer with aya-log's reader and
//! re-emits each record as a `tracing` event under [`TARGET`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use aya_log::EbpfLogger;

/// The `tracing` target of the XDP program's records; enable it with
/// `RUST_LOG=dhcp6d::xdp=debug` (or any filter that enables debug for it).
pub const TARGET: &str = "dhcp6d::xdp";

/// The name of aya-log-ebpf's level global in the program.
pub const LEVEL_GLOBAL: &str = aya_log::LEVEL;

/// aya-log's level numbers (aya-log-common): 0 disables every log call.
pub const LEVEL_OFF: u8 = 0;
/// Debug and more severe records.
pub const LEVEL_DEBUG: u8 = 4;

/// The level to load the program with: debug when `tracing` wants it.
pub fn level_from_tracing() -> u8 {
    if tracing::enabled!(target: "dhcp6d::xdp", tracing::Level::DEBUG) {
        LEVEL_DEBUG
    } else {
        LEVEL_OFF
    }
}

/// Forwards aya-log records (which arrive as `log` records) to `tracing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ToTracing;

impl log::Log for ToTracing {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &log::Record<'_>) {
        let args = r.args();
        match r.level() {
            log::Level::Error => tracing::error!(target: "dhcp6d::xdp", "{args}"),
            log::Level::Warn => tracing::warn!(target: "dhcp6d::xdp", "{args}"),
            log::Level::Info => tracing::info!(target: "dhcp6d::xdp", "{args}"),
            log::Level::Debug => tracing::debug!(target: "dhcp6d::xdp", "{args}"),
            log::Level::Trace => tracing::trace!(target: "dhcp6d::xdp", "{args}"),
        }
    }

    fn flush(&self) {}
}

/// The thread draining one program's log ring buffer; stopped on drop.
pub struct XdpLogReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl XdpLogReader {
    /// Start draining the records of the loaded program `program_id` into
    /// `sink`. The reader is built on its own thread (aya's ring buffer
    /// handle stays there), from the program id.
    pub fn start<L: log::Log + Send + 'static>(
        program_id: u32,
        sink: L,
    ) -> Result<XdpLogReader, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("dhcp6d-xdp-log".into())
            .spawn(move || {
                let mut logger = match EbpfLogger::init_from_id_with_logger(program_id, sink) {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("aya-log reader: {e}")));
                        return;
                    }
                };
                let fd = std::os::fd::AsRawFd::as_raw_fd(&logger);
                while !stop2.load(Ordering::Relaxed) {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd; the ring buffer's fd is
                    // readable when records are waiting.
                    unsafe { libc::poll(&mut pfd, 1, 100) };
                    logger.flush();
                }
                logger.flush();
            })
            .map_err(|e| format!("spawn aya-log reader: {e}"))?;
        let started = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|e| format!("aya-log reader: {e}"))
            .and_then(|r| r);
        let reader = XdpLogReader {
            stop,
            thread: Some(thread),
        };
        started.map(|()| reader)
    }
}

impl Drop for XdpLogReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
