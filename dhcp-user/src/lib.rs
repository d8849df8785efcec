//! dhcp6d: a DHCPv6 server for ISP edges (RFC 9915, RFC 6853 semi-redundancy).
//!
//! The pipeline, one folder each:
//! - [`wire`]: the DHCPv6 codec (bytes ⇄ typed views), no I/O;
//! - [`protocol`]: the protocol core (server state machine, allocation, bindings), no I/O;
//! - [`store`]: the durable lease journal and snapshots;
//! - [`dataplane`]: packet I/O (XDP + AF_XDP, or kernel sockets) and workers;
//! - [`control`]: the control socket, stats and the operator commands.
#![warn(missing_docs)]

pub mod caps;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod fault;
pub mod plan;
pub mod protocol;
pub mod serve;
pub mod stats;
pub mod store;
pub mod wire;
