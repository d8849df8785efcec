//! The namespace harness: runs the real `dhcp6d` binary against real peers
//! (ISC dhclient and dhcrelay, dhcpcd, Kea, perfdhcp) in throw-away network
//! namespaces, and watches the wire with tshark.
//!
//! Every resource is a guard that cleans up in `Drop` (namespaces deleted,
//! processes we started stopped by pid, temp dirs removed), and every name is
//! unique per process and test, so tests run in parallel. Nothing here ever
//! sleeps a fixed time to wait for readiness: [`wait::until`] polls a
//! condition (a control socket answering, a log line, a lease event) up to a
//! deadline and fails loudly with what it was waiting for.
//!
//! A missing prerequisite (not root, a tool not installed) is an error, never
//! a skip.

pub mod capture;
pub mod dhclient;
pub mod dhcp6d;
pub mod dhcpcd;
pub mod error;
pub mod failover;
mod hook_events;
pub mod kea;
pub mod netns;
pub mod perfdhcp;
pub mod process;
pub mod relay;
pub mod tempdir;
pub mod topology;
pub mod wait;
pub mod wire;

pub use error::{Error, Result};
