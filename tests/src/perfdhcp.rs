//! perfdhcp (from kea-admin) as a load-generating client.

use crate::netns::Netns;
use crate::process::require;
use crate::{Error, Result};

/// What one perfdhcp run reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfReport {
    /// Solicits sent.
    pub solicits_sent: u64,
    /// Advertises received.
    pub advertises_received: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Replies received.
    pub replies_received: u64,
    /// The raw output.
    pub output: String,
}

/// Runs `perfdhcp -6` on `ifname` in `ns`: `clients` simulated clients, one
/// four-message exchange each, at `rate` per second, for at most `secs`.
pub fn run(ns: &Netns, ifname: &str, clients: u32, rate: u32, secs: u32) -> Result<PerfReport> {
    require("perfdhcp")?;
    let clients = clients.to_string();
    let rate = rate.to_string();
    let secs = secs.to_string();
    // perfdhcp exits 3 when some exchanges were lost; the counts tell the story.
    let out = match ns.exec(&[
        "perfdhcp", "-6", "-l", ifname, "-R", &clients, "-n", &clients, "-r", &rate, "-p", &secs,
        // Wait up to 2 s after the last Request for its Reply instead of
        // counting late Replies (a durable server fsyncs first) as drops.
        "-W", "2000000",
    ]) {
        Ok(out) => out,
        Err(Error::Command { output, status, .. }) if status.contains('3') => output,
        Err(e) => return Err(e),
    };
    Ok(parse(&out))
}

/// Reads the "sent packets"/"received packets" lines of each exchange block.
///
/// ```
/// let r = dhcp6d_tests::perfdhcp::parse(
///     "***Statistics for: SOLICIT-ADVERTISE***\nsent packets: 20\nreceived packets: 19\n\
///      ***Statistics for: REQUEST-REPLY***\nsent packets: 19\nreceived packets: 18\n",
/// );
/// assert_eq!((r.solicits_sent, r.advertises_received), (20, 19));
/// assert_eq!((r.requests_sent, r.replies_received), (19, 18));
/// ```
pub fn parse(out: &str) -> PerfReport {
    let mut r = PerfReport {
        output: out.to_owned(),
        ..PerfReport::default()
    };
    let mut block = "";
    for line in out.lines() {
        let l = line.trim();
        // "***Statistics for: SOLICIT-ADVERTISE***", "... REQUEST-REPLY***".
        if l.starts_with("***") && l.contains("SOLICIT") {
            block = "SA";
        } else if l.starts_with("***") && l.contains("REQUEST") {
            block = "RR";
        } else if l.starts_with("***") {
            block = "";
        }
        let value = |prefix: &str| -> Option<u64> {
            l.strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        if let Some(v) = value("sent packets:") {
            match block {
                "SA" => r.solicits_sent = v,
                "RR" => r.requests_sent = v,
                _ => {}
            }
        }
        if let Some(v) = value("received packets:") {
            match block {
                "SA" => r.advertises_received = v,
                "RR" => r.replies_received = v,
                _ => {}
            }
        }
    }
    r
}
