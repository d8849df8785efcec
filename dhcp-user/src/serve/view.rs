//! What the control socket shows of the running server.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{IoMode, Model};
use crate::control::leases::{self, kind_name};
use crate::control::{
    ControlStats, JournalStats, LeaseCounts, LeaseFilter, LeaseList, PoolStats, ServerView,
    StatsSnapshot,
};
use crate::protocol::Timestamp;
use crate::stats::{CounterTotals, WorkerCounters};
use crate::store::JournalHandle;

use super::plane::Plane;
use crate::protocol::Server;

/// The running server as the control thread reads it.
pub struct ServeView {
    pub started: Instant,
    pub io: IoMode,
    pub server_duid: String,
    /// Changed by SIGHUP.
    pub preference: AtomicU8,
    pub model: Mutex<Model>,
    pub handler: Arc<Server>,
    pub counters: Vec<Arc<WorkerCounters>>,
    pub journal: JournalHandle,
    pub dataplane: Arc<Plane>,
    /// Tells this run's `leases` cursors from another's ([`leases::new_run_id`]).
    pub run_id: u32,
}

impl ServerView for ServeView {
    fn stats(&self) -> StatsSnapshot {
        let totals = CounterTotals::sum(self.counters.iter().map(|c| c.as_ref()));
        let server = &self.handler;
        // Against the clock: bindings that have ended but wait for the next
        // sweep (up to 10 s) are not in use.
        let (pools, (addresses, prefixes)) = server.usage_at(Timestamp(super::unix_now()));
        let j = self.journal.stats();
        let mut xdp = self.dataplane.xdp().unwrap_or_default();
        // The one restart counter: in socket mode too (its worker is
        // supervised the same way), although it lives in the `xdp` object.
        xdp.worker_restarts = self.dataplane.worker_restarts();
        StatsSnapshot {
            uptime_s: self.started.elapsed().as_secs(),
            io: self.io.as_str().into(),
            server_duid: self.server_duid.clone(),
            preference: self.preference.load(Ordering::Relaxed),
            model: self.model.lock().map_or("?", |m| m.as_str()).to_string(),
            rx: totals.rx,
            tx: totals.tx,
            dropped: totals.dropped,
            refused: totals.refused,
            leases: LeaseCounts {
                addresses,
                prefixes,
                poisoned_locks: server.bindings().poisoned(),
            },
            pools: pools
                .into_iter()
                .map(|p| PoolStats {
                    pool: p.pool,
                    kind: kind_name(p.kind).into(),
                    capacity: p.capacity.to_string(),
                    used: p.used,
                })
                .collect(),
            journal: JournalStats {
                records: j.records,
                fsyncs: j.fsyncs,
                bytes: j.bytes,
                queue_full: j.queue_full,
            },
            xdp,
            // The control server fills in its own counters.
            control: ControlStats::default(),
        }
    }

    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String> {
        leases::page(
            self.handler.bindings(),
            filter,
            super::unix_now(),
            self.run_id,
        )
    }
}
