//! The data plane as `serve` uses it: start, counters, stop.
//!
//! Kept behind this small seam so the rest of the assembly does not depend
//! on the data plane's internals.

use std::sync::Arc;

use crate::config::IoMode;
use crate::control::XdpStats;
use crate::dataplane::{self, Dataplane, DataplaneConfig, DataplaneError};
use crate::stats::{CounterTotals, WorkerCounters};
use crate::store::JournalHandle;

use crate::protocol::Server;

/// A running data plane.
pub struct Plane {
    inner: Dataplane,
}

impl Plane {
    /// Attach XDP (or open sockets) and start the workers.
    pub fn start(
        interfaces: &[String],
        io: IoMode,
        handler: Arc<Server>,
        journal: Arc<JournalHandle>,
    ) -> Result<Plane, DataplaneError> {
        let cfg = DataplaneConfig::new(interfaces.to_vec(), io);
        dataplane::start(&cfg, handler, journal).map(|inner| Plane { inner })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.inner.workers()
    }

    /// One counter block per worker, the AF_XDP fallback listener's
    /// included (what it answers counts in `rx`/`tx` like any other).
    pub fn worker_counters(&self) -> Vec<Arc<WorkerCounters>> {
        let mut all = self.inner.worker_counters();
        all.extend(self.inner.fallback_counters());
        all
    }

    /// Workers (AF_XDP or socket) that died and were restarted.
    pub fn worker_restarts(&self) -> u64 {
        self.inner.worker_restarts()
    }

    /// The XDP program's counters (None in socket mode).
    pub fn xdp(&self) -> Option<XdpStats> {
        self.inner.xdp_counters().map(|t| XdpStats {
            redirected: t.redirected,
            passed: t.passed,
            // The program never drops: what it cannot classify goes to the kernel.
            dropped: 0,
            worker_restarts: self.inner.worker_restarts(),
            not_ours: t.not_ours,
            no_socket: t.no_socket,
            beyond_queue_limit: t.beyond_queue_limit,
            fallback_answered: self.inner.fallback_counters().map_or(0, |c| {
                let t = CounterTotals::sum([c.as_ref()]);
                t.tx.advertise + t.tx.reply + t.tx.relay_repl
            }),
            queues_without_worker: u64::from(self.inner.queues_without_worker()),
        })
    }

    /// Re-read the XDP interfaces' addresses into their programs.
    pub fn refresh_local(&self) {
        self.inner.refresh_local()
    }

    /// Stop the workers (they flush held replies), then detach XDP.
    pub fn stop(self) {
        self.inner.stop()
    }
}
