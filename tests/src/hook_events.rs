//! What a real DHCP client's hook script recorded: dhclient and dhcpcd both
//! call a script of ours on every state change, which appends one block per
//! call to `events` in the client's directory:
//!
//! ```text
//! event [HEADER]
//! KEY=VALUE
//! ...
//! end
//! ```
//!
//! A block without its `end` (the script still writing) is not returned.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::io;
use crate::process::Proc;
use crate::{wait, Error, Result};

/// One complete block: the text after `event` on its first line, and its variables.
pub(crate) struct Block {
    pub header: String,
    pub vars: BTreeMap<String, String>,
}

/// Every complete block in `path`, in order; no file yet means no events.
pub(crate) fn read(path: &Path) -> Result<Vec<Block>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(format!("read {}", path.display()))(e)),
    };
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("event")
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            current = Some(Block {
                header: rest.trim().to_owned(),
                vars: BTreeMap::new(),
            });
        } else if line == "end" {
            out.extend(current.take());
        } else if let (Some(b), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
            b.vars.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(out)
}

/// Waits for the first event after the first `skip` that satisfies `pred`,
/// failing at once if the client exits; a timeout carries the client's log.
pub(crate) fn wait_for<E>(
    desc: &str,
    timeout: Duration,
    proc: &mut Option<Proc>,
    load: impl Fn() -> Result<Vec<E>>,
    skip: usize,
    pred: impl Fn(&E) -> bool,
) -> Result<E> {
    let result = wait::until(desc, timeout, || {
        if let Some(p) = proc.as_mut() {
            p.check_running()?;
        }
        Ok(load()?.into_iter().skip(skip).find(|e| pred(e)))
    });
    result.map_err(|e| match e {
        Error::Timeout { what, waited } => Error::Timeout {
            what: format!("{what}; client log:\n{}", log_tail(proc)),
            waited,
        },
        other => other,
    })
}

/// The tail of the client's current log (empty when it is not running).
pub(crate) fn log_tail(proc: &Option<Proc>) -> String {
    proc.as_ref()
        .map(|p| crate::process::tail(&p.log(), 30))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_complete_blocks_with_their_headers_only() {
        let dir = crate::tempdir::TempDir::new("hook-events").expect("temp dir");
        let path = dir.path().join("events");
        std::fs::write(
            &path,
            "event 12.5\nreason=BOUND6\nnew_ip6_address=2001:db8::1\nend\n\
             event\nreason=REBIND6\nend\n\
             eventually=not a header\nevent 13\nreason=half-written\n",
        )
        .unwrap();
        let blocks = read(&path).unwrap();
        assert_eq!(blocks.len(), 2, "the unfinished third block is left out");
        assert_eq!(blocks[0].header, "12.5");
        assert_eq!(blocks[0].vars["reason"], "BOUND6");
        assert_eq!(blocks[0].vars["new_ip6_address"], "2001:db8::1");
        assert_eq!(blocks[1].header, "");
        assert_eq!(blocks[1].vars["reason"], "REBIND6");
        assert!(read(&dir.path().join("absent")).unwrap().is_empty());
    }
}
