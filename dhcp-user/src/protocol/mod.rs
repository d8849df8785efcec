//! The protocol core: the RFC 9915 server, the allocation function and the
//! live bindings.
//!
//! Owns: the message rules (`server`: §16 validation, one function per
//! §18.3 message type, §19 relay wrapping), the allocation function
//! (`alloc`), the sharded binding store (`bindings`: the only shared mutable
//! state, alive for the whole process), the per-source token buckets
//! (`limit`, one table per worker, kept in its [`WorkerLocal`]), the
//! immutable [`server::Policy`] a reload swaps, the plain [`Settings`] it is
//! built from, and the outcome types
//! every layer counts by ([`Handled`], [`Reply`], [`DropReason`]).
//!
//! Never touches: sockets, files, the clock, threads, counters, the
//! configuration file. The caller passes the ingress facts, the message
//! bytes and `now`; the core returns the reply bytes (written into the
//! caller's buffer) or a drop reason, and the lease changes the caller must
//! make durable before sending the reply. It depends on `wire` only.

pub mod alloc;
pub mod bindings;
pub mod lease;
pub mod limit;
pub mod outcome;
pub mod server;
pub mod settings;
mod sip;
pub mod table;

use std::net::Ipv6Addr;

pub use lease::{LeaseChanges, LeaseKind, LeaseOp, LeaseRecord};
pub use outcome::{DropReason, Handled, Refusal, Refusals, Reply};
pub use server::{CoreError, PoolUsage, Server};
pub use settings::{Settings, SubnetSettings};

/// Seconds since the Unix epoch. Passed in by the caller; the core never reads a clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// What the I/O backend knows about where a message came from.
#[derive(Clone, Copy, Debug)]
pub struct Ingress {
    /// Kernel interface index the frame arrived on.
    pub ifindex: u32,
    /// IPv6 source address of the datagram (client link-local or relay address).
    pub src: Ipv6Addr,
    /// UDP source port.
    pub src_port: u16,
    /// Whether the datagram was sent to a multicast group (ff02::1:2 / ff05::1:3).
    pub dst_multicast: bool,
}

/// The seam between packet I/O and the protocol: workers call this for every
/// DHCPv6 payload they receive. `core::Server` implements it; tests and the
/// echo benchmark use trivial implementations.
pub trait Handler: Send + Sync + 'static {
    /// Handle one DHCPv6 message (the UDP payload). Writes the reply payload
    /// into `out` and the lease changes into `changes` (cleared by the callee).
    /// Keeps nothing between calls, so the core applies no per-source rate
    /// limit here (its buckets live in a [`WorkerLocal`]): workers call
    /// [`Handler::handle_local`].
    fn handle(
        &self,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled;

    /// [`Handler::handle`] for a worker that keeps `local` between messages
    /// (one per worker thread, never shared). The core keeps its policy
    /// cache there, which saves an `ArcSwap` load per message; other
    /// handlers ignore it.
    fn handle_local(
        &self,
        local: &mut WorkerLocal,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        let _ = local;
        self.handle(ingress, payload, now, out, changes)
    }
}

/// What a worker keeps between messages for its [`Handler`]: for the core,
/// the policy it last answered under and the one pointer that says whether
/// it is still in force (`arc_swap::Cache`), and this worker's token buckets
/// for `limits.messages_per_second_per_source` (allocated at the first
/// message that policy limits). Start with `default()`.
#[derive(Default)]
pub struct WorkerLocal {
    policy: Option<server::PolicyCache>,
    limiter: Option<limit::RateLimiter>,
}

impl std::fmt::Debug for WorkerLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLocal")
            .field("policy_cached", &self.policy.is_some())
            .field("limiter", &self.limiter)
            .finish()
    }
}
