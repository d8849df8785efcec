//! The harness's error type: what failed, with enough context (command line,
//! log tail) to debug a red test without re-running it.

use std::time::Duration;

/// Why a harness step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program could not be started (not installed, not executable).
    #[error("cannot start {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("{cmd} failed ({status}): {output}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it printed (stderr, else stdout).
        output: String,
    },
    /// A condition did not become true before its deadline.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What we waited for, and what we last saw.
        what: String,
        /// How long we waited.
        waited: Duration,
    },
    /// A background process (server, client, relay) exited when it should be running.
    #[error("{name} exited unexpectedly ({status}); its log:\n{log}")]
    Exited {
        /// Which process.
        name: String,
        /// Its exit status.
        status: String,
        /// The tail of its log.
        log: String,
    },
    /// A file, directory or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation and path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Output of a tool (JSON, lease file, capture) could not be understood.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The environment cannot run the harness (not root, tool missing).
    #[error("prerequisite missing: {0}")]
    Prerequisite(String),
}

/// Result of a harness step.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an `std::io::Error` with the operation that failed.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
