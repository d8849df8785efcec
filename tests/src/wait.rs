//! Polling with a deadline: the only way the harness waits.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Interval between polls. Short, so readiness is seen within a few
/// milliseconds; the conditions polled are cheap (a socket connect, a file read).
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Calls `probe` until it returns `Some`, an error, or `timeout` passes.
///
/// `probe` may fail fast (e.g. the process it waits for has exited): its
/// error is returned at once instead of waiting out the deadline.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
