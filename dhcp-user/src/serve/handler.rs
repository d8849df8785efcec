//! The [`Handler`] the data plane calls: the current core [`Server`],
//! swappable on SIGHUP without stopping the workers.
//!
//! Each worker thread caches an `Arc<Server>` and the generation it belongs
//! to; the hot path costs one atomic load and a thread-local access. The
//! mutex is taken only when a worker sees a new generation (once per reload).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::server::Server;
use crate::core::{Handled, Handler, Ingress, LeaseChanges, Timestamp};

/// The swappable core.
#[derive(Debug)]
pub struct Reloadable {
    generation: AtomicU64,
    current: Mutex<Arc<Server>>,
}

thread_local! {
    /// (owner address, generation, server) of this worker thread.
    static CACHED: RefCell<Option<(usize, u64, Arc<Server>)>> = const { RefCell::new(None) };
}

impl Reloadable {
    /// Start with `server`.
    pub fn new(server: Server) -> Reloadable {
        Reloadable {
            generation: AtomicU64::new(1),
            current: Mutex::new(Arc::new(server)),
        }
    }

    /// The server in force now.
    pub fn current(&self) -> Arc<Server> {
        // Poisoning is ignored, unlike the binding shards' (core/bindings.rs):
        // no code that can panic runs under this lock (an Arc clone here, a
        // `mem::replace` in `swap`), and its value is one whole `Arc`, never
        // half written.
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Make `server` the one workers use from their next message on; returns the old one.
    pub fn swap(&self, server: Server) -> Arc<Server> {
        // Allocated before the lock, so that nothing under it can fail.
        let server = Arc::new(server);
        let mut g = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut *g, server);
        self.generation.fetch_add(1, Ordering::Release);
        old
    }
}

impl Handler for Reloadable {
    fn handle(
        &self,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        let owner = self as *const Reloadable as usize;
        let generation = self.generation.load(Ordering::Acquire);
        CACHED.with(|cell| {
            let mut cached = cell.borrow_mut();
            let fresh = matches!(&*cached, Some((o, g, _)) if *o == owner && *g == generation);
            if !fresh {
                *cached = Some((owner, generation, self.current()));
            }
            match &*cached {
                Some((_, _, server)) => server.handle(ingress, payload, now, out, changes),
                // Unreachable: filled just above.
                None => self.current().handle(ingress, payload, now, out, changes),
            }
        })
    }
}
