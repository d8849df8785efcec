//! The data plane as `serve` uses it: start, counters, stop.
//!
//! Kept behind this small seam so the rest of the assembly does not depend
//! on the data plane's internals.

use std::sync::Arc;

use crate::config::IoMode;
use crate::control::XdpStats;
use crate::stats::WorkerCounters;
use crate::store::JournalHandle;

use super::handler::Reloadable;

/// A running data plane.
pub struct Plane {
    _private: (),
}

impl Plane {
    /// Attach XDP (or open sockets) and start the workers.
    pub fn start(
        interfaces: &[String],
        io: IoMode,
        handler: Arc<Reloadable>,
        journal: Arc<JournalHandle>,
    ) -> Result<Plane, String> {
        let _ = (interfaces, io, handler, journal);
        Err("the data plane is not built into this binary yet".into())
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        0
    }

    /// One counter block per worker.
    pub fn worker_counters(&self) -> Vec<Arc<WorkerCounters>> {
        Vec::new()
    }

    /// The XDP program's counters (None in socket mode).
    pub fn xdp(&self) -> Option<XdpStats> {
        None
    }

    /// Stop the workers (they flush held replies), then detach XDP.
    pub fn stop(self) {}
}
