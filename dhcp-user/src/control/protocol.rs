//! The control protocol: newline-delimited JSON, one request object, one
//! response object (CONTRACT.md, "Control socket").
//!
//! Requests: `{"command":"stats"}`, `{"command":"leases", "duid":HEX,
//! "address":ADDR, "prefix":PFX, "limit":N, "after":CURSOR}`. A response is
//! the stats object, `{"leases":[...], "total":N, "truncated":BOOL,
//! "limit":N, "next":CURSOR|null}`, or `{"error":"..."}`.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

use crate::protocol::bindings::{ScanPos, SHARDS};
use crate::stats::{DropTotals, RefusedTotals, RxTotals, TxTotals};

/// Most leases one `leases` response lists unless the request sets `limit`.
pub const DEFAULT_LEASE_LIMIT: usize = 10_000;

/// Most leases one `leases` response lists whatever the request's `limit`:
/// a larger one is clamped to it (the answer's `limit` says what was
/// applied) and the rest is had page by page with `after`. A page of this
/// many is about 2 MB of JSON.
pub const MAX_LEASE_LIMIT: usize = 10_000;

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `{"command":"stats"}`.
    Stats,
    /// `{"command":"leases", ...}`: bindings matching every given filter.
    Leases(LeaseFilter),
}

/// Filters of a `leases` request; each one given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseFilter {
    /// The client's DUID.
    pub duid: Option<Vec<u8>>,
    /// An address the binding holds (or that lies inside its delegated prefix).
    pub address: Option<Ipv6Addr>,
    /// Bindings whose address or delegated prefix lies inside this prefix.
    pub prefix: Option<Ipv6Net>,
    /// Most entries to return; [`Request::parse`] clamps it to [`MAX_LEASE_LIMIT`].
    pub limit: usize,
    /// Start after this place: the `next` of the previous page.
    pub after: Option<LeaseCursor>,
}

/// Where a page of `leases` ended: pass a response's `next` back as the
/// request's `after` for the page that follows. Opaque to clients; valid for
/// the life of the server process that gave it (`run` tells them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseCursor {
    /// The server process the cursor belongs to (random per run).
    pub run: u32,
    /// The last place the page listed.
    pub at: ScanPos,
}

impl fmt::Display for LeaseCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{}-{}", self.run, self.at.shard, self.at.slot)
    }
}

impl FromStr for LeaseCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<LeaseCursor, String> {
        let bad = || format!("{s:?} is not a cursor (the \"next\" of an earlier answer)");
        let mut parts = s.split('-');
        let (Some(run), Some(shard), Some(slot), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let run = u32::from_str_radix(run, 16).map_err(|_| bad())?;
        let shard: u32 = shard.parse().map_err(|_| bad())?;
        let slot: u32 = slot.parse().map_err(|_| bad())?;
        if shard as usize >= SHARDS || slot > ScanPos::MAX_SLOT {
            return Err(bad());
        }
        Ok(LeaseCursor {
            run,
            at: ScanPos { shard, slot },
        })
    }
}

impl LeaseFilter {
    /// Whether a binding matches every filter.
    pub fn matches(&self, duid: &[u8], addr: Ipv6Addr, prefix_len: u8) -> bool {
        let held = Ipv6Net::new(addr, prefix_len.min(128)).unwrap_or_else(|_| Ipv6Net::from(addr));
        self.duid.as_deref().is_none_or(|d| d == duid)
            && self.address.is_none_or(|a| held.contains(&a))
            && self.prefix.is_none_or(|p| p.contains(&held))
    }
}

/// The wire form of a request, before its fields are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    command: String,
    #[serde(default)]
    duid: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<String>,
}

impl Request {
    /// Parse one request line; the error is the message for `{"error": ...}`.
    pub fn parse(line: &str) -> Result<Request, String> {
        let raw: RawRequest =
            serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))?;
        let filters = raw.duid.is_some()
            || raw.address.is_some()
            || raw.prefix.is_some()
            || raw.after.is_some();
        match raw.command.as_str() {
            "stats" if !filters && raw.limit.is_none() => Ok(Request::Stats),
            "stats" => Err("bad request: \"stats\" takes no filters".into()),
            "leases" => {
                let duid = raw
                    .duid
                    .map(|d| parse_duid(&d))
                    .transpose()
                    .map_err(|e| format!("bad request: duid: {e}"))?;
                let address = raw
                    .address
                    .map(|a| a.parse::<Ipv6Addr>())
                    .transpose()
                    .map_err(|_| "bad request: address: not an IPv6 address".to_string())?;
                let prefix = raw
                    .prefix
                    .map(|p| p.parse::<Ipv6Net>())
                    .transpose()
                    .map_err(|_| {
                        "bad request: prefix: not an IPv6 prefix (ADDR/LEN)".to_string()
                    })?;
                let after = raw
                    .after
                    .map(|c| c.parse::<LeaseCursor>())
                    .transpose()
                    .map_err(|e| format!("bad request: after: {e}"))?;
                Ok(Request::Leases(LeaseFilter {
                    duid,
                    address,
                    prefix,
                    limit: raw
                        .limit
                        .unwrap_or(DEFAULT_LEASE_LIMIT)
                        .min(MAX_LEASE_LIMIT),
                    after,
                }))
            }
            other => Err(format!(
                "unknown command {other:?} (known: \"stats\", \"leases\")"
            )),
        }
    }

    /// The JSON line a client sends for this request.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Request::Stats => serde_json::json!({"command": "stats"}),
            Request::Leases(f) => {
                let mut v = serde_json::json!({"command": "leases", "limit": f.limit});
                if let Some(d) = &f.duid {
                    v["duid"] = hex::encode(d).into();
                }
                if let Some(a) = f.address {
                    v["address"] = a.to_string().into();
                }
                if let Some(p) = f.prefix {
                    v["prefix"] = p.to_string().into();
                }
                if let Some(c) = f.after {
                    v["after"] = c.to_string().into();
                }
                v
            }
        }
    }
}

/// A DUID as hex, with or without `:` separators.
pub fn parse_duid(s: &str) -> Result<Vec<u8>, String> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&clean).map_err(|e| format!("{s:?} is not hex ({e})"))?;
    if bytes.is_empty() {
        return Err("empty".into());
    }
    Ok(bytes)
}

/// The `stats` response (CONTRACT.md lists the keys; extensions are added, never renamed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsSnapshot {
    /// Seconds since `serve` started.
    pub uptime_s: u64,
    /// The I/O backend in use: `"xdp"` or `"socket"`.
    pub io: String,
    /// The server's DUID (sent in every Server Identifier option), lowercase hex.
    pub server_duid: String,
    /// The Preference option value sent in Advertise (RFC 9915 §21.8), as now configured.
    pub preference: u8,
    /// The RFC 6853 model as now configured (`"standalone"`, `"split-prefix"`, …).
    pub model: String,
    /// Messages received since start, by type.
    pub rx: RxTotals,
    /// Messages sent since start, by type.
    pub tx: TxTotals,
    /// Frames and messages that got no reply since start, by reason.
    pub dropped: DropTotals,
    /// IAs answered NoAddrsAvail / NoPrefixAvail since start because of a
    /// `[limits]` cap, by the key that refused (an extension).
    pub refused: RefusedTotals,
    /// Bindings in force now.
    pub leases: LeaseCounts,
    /// Utilisation of every configured pool, in config order.
    pub pools: Vec<PoolStats>,
    /// The lease journal's write counters since start.
    pub journal: JournalStats,
    /// The XDP program's counters since attach (all zero in socket mode).
    pub xdp: XdpStats,
    /// What the control socket and the metrics endpoint turned away since
    /// start (an extension; filled in by the control server, not the view).
    pub control: ControlStats,
}

/// The control side's refusals, by endpoint and reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlStats {
    /// Refused on the control socket.
    pub socket: SocketRefusals,
    /// Refused on the metrics endpoint.
    pub metrics: MetricsRefusals,
}

/// Control-socket requests and connections answered with an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SocketRefusals {
    /// Requests answered `{"error"}`: not JSON, unknown command or field, a
    /// bad filter or cursor.
    pub bad_request: u64,
    /// Request lines over 64 KiB (the connection is closed).
    pub too_long: u64,
    /// Connections beyond the limit of open ones, answered "busy" and closed.
    pub busy: u64,
    /// Connections closed for sending no complete request, or not reading
    /// an answer, within the request timeout.
    pub timeout: u64,
}

/// `/metrics` connections not served a scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsRefusals {
    /// Connections beyond the limit of open ones, answered 503 and closed.
    pub busy: u64,
    /// Connections that sent no request head, or did not read the answer, in time.
    pub timeout: u64,
    /// Requests for anything but `GET /metrics`, answered 404.
    pub not_found: u64,
}

/// Live bindings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseCounts {
    /// Address bindings (IA_NA) in force, not counting quarantined declined addresses.
    pub addresses: u64,
    /// Delegated prefixes (IA_PD) in force.
    pub prefixes: u64,
    /// Binding-table locks found poisoned since start: a worker panicked
    /// while updating the bindings. Nonzero means the counts above (and
    /// `pools[].used`) may be off by up to that much until a restart, and
    /// is a bug to report. An extension.
    pub poisoned_locks: u64,
}

/// One pool's utilisation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolStats {
    /// The pool as written in the config (`2001:db8:1:1::/65`).
    pub pool: String,
    /// `"na"` (addresses) or `"pd"` (delegated prefixes).
    pub kind: String,
    /// Addresses or prefixes in the pool, as a decimal string (a /64 holds 2^64).
    pub capacity: String,
    /// Live bindings in the pool.
    pub used: u64,
}

/// The lease journal's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JournalStats {
    /// Lease records written to disk since start.
    pub records: u64,
    /// Group commits since start, each one `fdatasync`; `records / fsyncs` is the batching factor.
    pub fsyncs: u64,
    /// Journal bytes written since start.
    pub bytes: u64,
    /// Messages refused because the queue to the journal writer was full
    /// (the disk is behind); their replies were dropped, and messages that
    /// need no disk kept being answered (*extension*).
    pub queue_full: u64,
}

/// The XDP program's per-CPU counters, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct XdpStats {
    /// DHCPv6 frames to port 547 handed to a worker's AF_XDP socket.
    pub redirected: u64,
    /// Frames given to the kernel stack: not DHCPv6 to the server, malformed, or no
    /// worker socket bound on that RX queue.
    pub passed: u64,
    /// Frames dropped by the program; always 0 (it passes what it cannot classify).
    pub dropped: u64,
    /// AF_XDP workers that died (panic or I/O error) and were restarted since start;
    /// while one is down its queue's DHCPv6 frames go to the kernel (`passed`).
    pub worker_restarts: u64,
    /// UDP/547 frames not addressed to this server (another MAC or IPv6
    /// destination) passed to the kernel; part of `passed` (*extension*).
    pub not_ours: u64,
    /// DHCPv6 frames for this server passed to the kernel because their RX
    /// queue's AF_XDP worker was down (restarting, or not started); part of
    /// `passed`, answered by the fallback listener (*extension*).
    pub no_socket: u64,
    /// DHCPv6 frames for this server on an RX queue beyond the XskMap (64
    /// queues), passed to the kernel; part of `passed`, answered by the
    /// fallback listener (*extension*).
    pub beyond_queue_limit: u64,
    /// Replies sent by the fallback listener, the kernel UDP socket that
    /// answers what the program passed for want of a worker; 0 in normal
    /// operation, and in socket mode (*extension*).
    pub fallback_answered: u64,
    /// RX queues found at start that got no AF_XDP worker (beyond the
    /// XskMap); their clients are answered by the fallback (*extension*).
    pub queues_without_worker: u64,
}

/// One binding in a `leases` response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseEntry {
    /// `"na"` or `"pd"`.
    pub kind: String,
    /// The address, or the delegated prefix (`2001:db8:100::/56`).
    pub lease: String,
    /// Client DUID, hex.
    pub duid: String,
    /// The IAID of the IA holding the binding (RFC 9915 §12).
    pub iaid: u32,
    /// Unix seconds when the preferred lifetime ends.
    pub preferred_until: u64,
    /// Unix seconds when the valid lifetime ends.
    pub valid_until: u64,
    /// `"active"` or `"declined"` (quarantined).
    pub state: String,
}

/// The `leases` response: one page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseList {
    /// Matching bindings after the request's `after`, at most `limit`.
    pub leases: Vec<LeaseEntry>,
    /// Matching bindings in the whole table (before `after` and beyond `limit` too).
    pub total: u64,
    /// Whether more matching bindings follow this page.
    pub truncated: bool,
    /// The page size applied: the request's `limit`, clamped to
    /// [`MAX_LEASE_LIMIT`] (an extension).
    pub limit: u64,
    /// When `truncated`, the `after` of the next page; else null (an extension).
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_filter_matches_address_inside_delegated_prefix() {
        let f = LeaseFilter {
            address: Some("2001:db8:100:1::1".parse().unwrap()),
            ..LeaseFilter::default()
        };
        assert!(f.matches(b"\x00\x01", "2001:db8:100::".parse().unwrap(), 56));
        assert!(!f.matches(b"\x00\x01", "2001:db8:100:100::".parse().unwrap(), 56));
    }

    #[test]
    fn request_round_trips_through_json() {
        let r = Request::Leases(LeaseFilter {
            duid: Some(vec![0, 1, 2]),
            address: None,
            prefix: Some("2001:db8::/32".parse().unwrap()),
            limit: 5,
            after: Some(LeaseCursor {
                run: 0xdead_beef,
                at: ScanPos {
                    shard: 63,
                    slot: 1 << 20,
                },
            }),
        });
        assert_eq!(Request::parse(&r.to_json().to_string()), Ok(r));
    }

    #[test]
    fn a_limit_above_the_maximum_is_clamped() {
        let parsed = Request::parse(r#"{"command":"leases","limit":10000000}"#);
        let Ok(Request::Leases(f)) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(f.limit, MAX_LEASE_LIMIT);
        let parsed = Request::parse(r#"{"command":"leases","limit":7}"#);
        assert!(matches!(parsed, Ok(Request::Leases(f)) if f.limit == 7));
    }

    #[test]
    fn a_cursor_not_from_an_answer_is_refused() {
        for bad in [
            "",
            "x",
            "0000002a-1",
            "0000002a-1-2-3",
            "zz-1-2",
            "0000002a-64-0",
            "0000002a-0-67108864",
            "0000002a--1-0",
        ] {
            let line = serde_json::json!({"command": "leases", "after": bad}).to_string();
            let e = Request::parse(&line).unwrap_err();
            assert!(e.starts_with("bad request: after: "), "{bad:?}: {e}");
        }
        assert_eq!(
            "0000002a-63-67108863".parse::<LeaseCursor>(),
            Ok(LeaseCursor {
                run: 42,
                at: ScanPos {
                    shard: 63,
                    slot: ScanPos::MAX_SLOT
                }
            })
        );
        assert!(Request::parse(r#"{"command":"stats","after":"0000002a-0-0"}"#).is_err());
    }
}
