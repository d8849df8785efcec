//! Keeps every worker serving.
//!
//! AF_XDP ([`QueueWorker`]): the worker thread runs its queue's socket and,
//! if the worker dies (a panic in the handler, an I/O error), empties the
//! queue's XskMap slot at once, so the XDP program passes that queue's
//! DHCPv6 frames to the kernel instead of into a dead socket; counts and logs
//! the death; and opens a new socket after a bounded, doubling back-off.
//!
//! Sockets ([`SocketWorker`]): the one UDP socket outlives its worker. After
//! a panic the worker's buffers are reclaimed and a new loop serves the same
//! socket after the same back-off, so nothing needs to bind port 547 again
//! (which the thread could no longer do once `serve` dropped root) and what
//! arrives meanwhile waits in the socket's receive buffer. What the dead
//! loop held (replies waiting for the journal, the rest of its batch) is
//! lost; those clients retransmit, and nothing unacknowledged was sent.
//!
//! A restart reuses the worker's [`Processor`] (its counters and the core's
//! per-worker cache): a panic in the core leaves the bindings consistent
//! (a poisoned lock is recovered and counted, `leases.poisoned_locks`).
//!
//! Supervision lives on the worker thread itself (a `catch_unwind` around
//! the worker loop): no extra thread, and nothing on the per-packet path.
//! The XskMap lock is taken only when a socket is bound or a slot cleared.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::afxdp::XskIo;
use super::netif::NetIf;
use super::socket::SocketIo;
use super::worker::Processor;
use super::worker_loop::{SystemClock, WorkerLoop};
use super::xdp::XskSlots;
use super::{DataplaneError, XdpCause};
use crate::fault::panic_message;
use crate::protocol::Handler;
use crate::store::Durability;

/// First wait before a dead worker is restarted; it doubles per death.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between restarts.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A worker that ran this long before dying starts its back-off afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// Attempts of the first start before its error is reported: a queue whose
/// previous socket (a restarted server's, say) is still being released by
/// the kernel refuses the bind (EBUSY) for a moment.
const FIRST_START_ATTEMPTS: u32 = 5;

/// Everything one queue's worker thread owns.
pub(super) struct QueueWorker<H, D> {
    pub netif: NetIf,
    pub queue: u32,
    pub slots: XskSlots,
    pub spin_budget: Duration,
    pub nap: Duration,
    pub backoff_min: Duration,
    /// Deaths followed by a restart, all queues together.
    pub restarts: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    pub proc: Processor<H, D>,
}

/// Empties the queue's slot when dropped. Declared after the socket, so on
/// a panic it runs before the socket closes: the kernel path takes over
/// before the dead socket's RX ring could swallow another frame.
struct SlotGuard<'a> {
    slots: &'a XskSlots,
    queue: u32,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.slots.clear(self.queue);
    }
}

impl<H: Handler, D: Durability> QueueWorker<H, D> {
    /// The worker thread's body, until stop. `ready` receives the first
    /// start's outcome; a first start is tried a few times over about a
    /// second, then its error is reported there (the server does not start).
    pub fn run(mut self, ready: SyncSender<Result<(), DataplaneError>>) {
        // Before `serve` drops root: keep what a restart needs (see caps.rs).
        if let Err(e) = crate::caps::narrow_for_xdp_worker() {
            tracing::warn!(iface = %self.netif.name, queue = self.queue, "worker capabilities: {e}; a restart after a privilege drop may fail");
        }
        let mut ready = Some(ready);
        let mut backoff = self.backoff_min;
        let mut first_attempts = 0;
        loop {
            let started = Instant::now();
            let mut serving = false;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                self.serve_once(&mut ready, &mut serving)
            }));
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let cause = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(panic) => DataplaneError::Xsk {
                    iface: self.netif.name.clone(),
                    queue: self.queue,
                    what: "worker panicked".into(),
                    source: Box::new(XdpCause::Other(panic_message(&*panic).to_string())),
                },
            };
            if ready.is_some() {
                first_attempts += 1;
                if first_attempts >= FIRST_START_ATTEMPTS {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(cause));
                    }
                    return;
                }
                tracing::debug!(iface = %self.netif.name, queue = self.queue, "AF_XDP start: {cause}; retrying");
                if !sleep_unless_stopped(&self.stop, RESTART_BACKOFF_MIN * first_attempts) {
                    return;
                }
                continue;
            }
            // Normally already empty (the guard); a failed bind may not be.
            self.slots.clear(self.queue);
            if started.elapsed() >= HEALTHY_RUN {
                backoff = self.backoff_min;
            }
            if serving {
                let n = self.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    iface = %self.netif.name, queue = self.queue, restarts = n,
                    ?backoff,
                    "AF_XDP worker died ({cause}); its queue goes to the kernel until the restart"
                );
            } else {
                tracing::warn!(
                    iface = %self.netif.name, queue = self.queue, ?backoff,
                    "AF_XDP worker restart failed ({cause}); retrying"
                );
            }
            if !sleep_unless_stopped(&self.stop, backoff) {
                return;
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    }

    /// Open and bind a socket, then run the worker loop until stop or death.
    fn serve_once(
        &mut self,
        ready: &mut Option<SyncSender<Result<(), DataplaneError>>>,
        serving: &mut bool,
    ) -> Result<(), DataplaneError> {
        let io = {
            // After a privilege drop nothing is effective; the reopen needs
            // CAP_NET_RAW (socket), CAP_IPC_LOCK (UMEM) and CAP_BPF (XskMap),
            // raised for it alone and lowered before the first frame.
            let _raised = crate::caps::raise().map_err(|e| {
                tracing::warn!(iface = %self.netif.name, queue = self.queue, "worker capabilities: {e}");
            });
            let io = XskIo::open(self.netif.clone(), self.queue)?;
            self.slots
                .bind(self.queue, io.fd())
                .map_err(|e| DataplaneError::Xsk {
                    iface: self.netif.name.clone(),
                    queue: self.queue,
                    what: "XskMap".into(),
                    source: Box::new(e.into()),
                })?;
            io
        };
        let _slot = SlotGuard {
            slots: &self.slots,
            queue: self.queue,
        };
        *serving = true;
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        WorkerLoop::new(io, &mut self.proc, SystemClock, self.spin_budget, self.nap)
            .run(&self.stop);
        Ok(())
    }
}

/// The socket-mode worker: one socket, served until stop, whatever dies.
pub(super) struct SocketWorker<H, D> {
    pub io: SocketIo,
    pub backoff_min: Duration,
    /// Deaths followed by a restart (the counter the AF_XDP workers use).
    pub restarts: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    pub proc: Processor<H, D>,
}

impl<H: Handler, D: Durability> SocketWorker<H, D> {
    /// The worker thread's body, until stop.
    pub fn run(mut self) {
        let mut backoff = self.backoff_min;
        loop {
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                // A socket is polled by syscall: no spin, and no nap.
                WorkerLoop::new(
                    &mut self.io,
                    &mut self.proc,
                    SystemClock,
                    Duration::ZERO,
                    Duration::ZERO,
                )
                .run(&self.stop);
            }));
            let Err(panic) = outcome else { return };
            // The loop is gone, and with it every claim on a reply buffer.
            self.io.reclaim_buffers();
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = self.backoff_min;
            }
            let n = self.restarts.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                restarts = n,
                ?backoff,
                "socket worker died (panicked: {}); it serves the same socket again after the back-off, requests wait in its buffer",
                panic_message(&*panic)
            );
            if !sleep_unless_stopped(&self.stop, backoff) {
                return;
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    }
}

/// Sleep `d` in short steps; false when stop was requested meanwhile.
fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(
            Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
        );
    }
    !stop.load(Ordering::Relaxed)
}
