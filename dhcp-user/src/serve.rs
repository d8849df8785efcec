//! The `serve` command's assembly: state directory, journal, protocol core,
//! data plane, control socket, signals, privileges.
//!
//! Being wired as the core, store and data plane land on main.

use std::path::Path;

use crate::config::Config;

/// Why `serve` stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration cannot be served (exit status 2).
    #[error("{0}")]
    Config(String),
    /// Something needed at start-up is not available (exit status 1).
    #[error("{0}")]
    Startup(String),
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(config: Config, file: &Path) -> Result<(), ServeError> {
    let _ = (config, file);
    Err(ServeError::Startup(
        "serve: the protocol core and data plane are not built into this binary yet".into(),
    ))
}
