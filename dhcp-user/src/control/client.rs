//! The client side of the control socket, used by `dhcp6d stats` and
//! `dhcp6d leases`: blocking, one connection per call, with a timeout.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{LeaseFilter, LeaseList, Request, StatsSnapshot};

/// How long a request may take before the client gives up.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No server listens there (or the socket file is missing).
    #[error("cannot connect to {}: {source} (is `dhcp6d serve` running with this control_socket?)", path.display())]
    Connect {
        /// The control socket path that was tried.
        path: PathBuf,
        /// The error from `connect` (e.g. `NotFound`, `ConnectionRefused`, `PermissionDenied`).
        source: std::io::Error,
    },
    /// The connection broke or timed out.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// The control socket path in use.
        path: PathBuf,
        /// The read or write error, `WouldBlock`/`TimedOut` after [`TIMEOUT`].
        source: std::io::Error,
    },
    /// The server answered `{"error": ...}`.
    #[error("server refused the request: {0}")]
    Server(String),
    /// The answer is not what the protocol says.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

/// Send one request, return the raw JSON response (an `{"error"}` response
/// is returned as [`ClientError::Server`]).
pub fn request(path: &Path, req: &Request) -> Result<serde_json::Value, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut line = req.to_json().to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).map_err(io)?;
    if answer.is_empty() {
        return Err(ClientError::Protocol(
            "connection closed without an answer".into(),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Some(e) = value.get("error") {
        return Err(ClientError::Server(
            e.as_str().unwrap_or("(no message)").to_string(),
        ));
    }
    Ok(value)
}

/// `{"command":"stats"}`, typed.
pub fn stats(path: &Path) -> Result<(StatsSnapshot, serde_json::Value), ClientError> {
    let raw = request(path, &Request::Stats)?;
    let typed = serde_json::from_value(raw.clone())
        .map_err(|e| ClientError::Protocol(format!("stats: {e}")))?;
    Ok((typed, raw))
}

/// `{"command":"leases", ...}`, typed.
pub fn leases(
    path: &Path,
    filter: &LeaseFilter,
) -> Result<(LeaseList, serde_json::Value), ClientError> {
    let raw = request(path, &Request::Leases(filter.clone()))?;
    let typed = serde_json::from_value(raw.clone())
        .map_err(|e| ClientError::Protocol(format!("leases: {e}")))?;
    Ok((typed, raw))
}
