//! The control side: the control socket, the Prometheus endpoint, the
//! `stats`/`leases` client and their tables.
//!
//! It runs on its own thread with a current-thread tokio runtime, never on
//! the packet path. It reads what the workers publish (per-worker counters,
//! the lease table) through [`ServerView`]; it never makes a worker wait.

pub mod client;
pub mod leases;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod table;

pub use protocol::{
    ControlStats, JournalStats, LeaseCounts, LeaseCursor, LeaseEntry, LeaseFilter, LeaseList,
    PoolStats, Request, StatsSnapshot, XdpStats,
};
pub use server::{ControlHandle, ControlLimits, ServerView};
