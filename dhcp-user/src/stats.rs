//! Counters: what the workers count and the control side sums.
//!
//! Each worker owns one [`WorkerCounters`] (cache-line aligned, relaxed
//! atomics written only by that worker); the control thread reads and sums
//! them, so reading stats never takes a lock on the packet path.

use std::sync::atomic::{AtomicU64, Ordering};

/// DHCPv6 message types the server receives or sends (RFC 9915 §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MsgKind {
    /// Solicit (1): a client looks for servers (RFC 9915 §18.2.1).
    Solicit,
    /// Advertise (2): a server's offer in answer to a Solicit (§18.3.1).
    Advertise,
    /// Request (3): a client asks the chosen server for leases (§18.2.2).
    Request,
    /// Confirm (4): a client checks its addresses are still on-link (§18.2.3).
    Confirm,
    /// Renew (5): a client extends leases with the server that gave them (§18.2.4).
    Renew,
    /// Rebind (6): a client extends leases with any server (§18.2.5).
    Rebind,
    /// Reply (7): the server's answer to every client message but Solicit (§18.3).
    Reply,
    /// Release (8): a client gives leases back (§18.2.7).
    Release,
    /// Decline (9): a client found an address in use on the link (§18.2.8).
    Decline,
    /// Information-request (11): configuration options only, no leases (§18.2.6).
    InformationRequest,
    /// Relay-forward (12): a relay agent's wrapper around a client message (§19.1).
    RelayForw,
    /// Relay-reply (13): the server's answer wrapped for the relay (§19.3).
    RelayRepl,
    /// Any other type (Reconfigure, Leasequery, …) that reached the server.
    Other,
}

/// Why a received frame or message produced no reply. Counted in `dropped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The bytes do not decode as a valid frame or DHCPv6 message.
    Malformed,
    /// Carries another server's Server ID, or lacks ours where required (RFC 9915 §16).
    NotForUs,
    /// A Client ID is required and missing (RFC 9915 §16).
    NoClientId,
    /// Shed by a rate limit.
    RateLimited,
    /// Anything else the RFC says to discard (wrong message type for a server,
    /// client unicast, no subnet for the link, journal not writable, …).
    Other,
}

/// Counters of one worker. Written by that worker only.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Solicit messages received (direct or inside Relay-forward).
    pub rx_solicit: AtomicU64,
    /// Request messages received.
    pub rx_request: AtomicU64,
    /// Confirm messages received.
    pub rx_confirm: AtomicU64,
    /// Renew messages received.
    pub rx_renew: AtomicU64,
    /// Rebind messages received.
    pub rx_rebind: AtomicU64,
    /// Release messages received.
    pub rx_release: AtomicU64,
    /// Decline messages received.
    pub rx_decline: AtomicU64,
    /// Information-request messages received.
    pub rx_information_request: AtomicU64,
    /// Relay-forward messages received (the client message inside is counted too).
    pub rx_relay_forw: AtomicU64,
    /// Messages of a type a server does not handle.
    pub rx_other: AtomicU64,
    /// Advertise messages sent directly to clients.
    pub tx_advertise: AtomicU64,
    /// Reply messages sent directly to clients.
    pub tx_reply: AtomicU64,
    /// Relay-reply messages sent (each wraps one Advertise or Reply, not counted apart).
    pub tx_relay_repl: AtomicU64,
    /// Dropped as [`DropReason::Malformed`].
    pub dropped_malformed: AtomicU64,
    /// Dropped as [`DropReason::NotForUs`].
    pub dropped_not_for_us: AtomicU64,
    /// Dropped as [`DropReason::NoClientId`].
    pub dropped_no_client_id: AtomicU64,
    /// Dropped as [`DropReason::RateLimited`].
    pub dropped_rate_limited: AtomicU64,
    /// Dropped as [`DropReason::Other`].
    pub dropped_other: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64) {
    // Single writer: a relaxed load+store is enough and avoids a locked RMW.
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerCounters {
    /// Count a received message (the innermost message type for relayed ones is
    /// counted by the caller separately from `RelayForw`).
    pub fn received(&self, kind: MsgKind) {
        bump(match kind {
            MsgKind::Solicit => &self.rx_solicit,
            MsgKind::Request => &self.rx_request,
            MsgKind::Confirm => &self.rx_confirm,
            MsgKind::Renew => &self.rx_renew,
            MsgKind::Rebind => &self.rx_rebind,
            MsgKind::Release => &self.rx_release,
            MsgKind::Decline => &self.rx_decline,
            MsgKind::InformationRequest => &self.rx_information_request,
            MsgKind::RelayForw => &self.rx_relay_forw,
            _ => &self.rx_other,
        });
    }

    /// Count a sent message.
    pub fn sent(&self, kind: MsgKind) {
        match kind {
            MsgKind::Advertise => bump(&self.tx_advertise),
            MsgKind::Reply => bump(&self.tx_reply),
            MsgKind::RelayRepl => bump(&self.tx_relay_repl),
            _ => {}
        }
    }

    /// Count a dropped message.
    pub fn dropped(&self, reason: DropReason) {
        bump(match reason {
            DropReason::Malformed => &self.dropped_malformed,
            DropReason::NotForUs => &self.dropped_not_for_us,
            DropReason::NoClientId => &self.dropped_no_client_id,
            DropReason::RateLimited => &self.dropped_rate_limited,
            DropReason::Other => &self.dropped_other,
        });
    }
}

/// Received messages by type, summed over workers (the `rx` object of `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RxTotals {
    /// Solicit messages received, direct or relayed.
    pub solicit: u64,
    /// Request messages received, direct or relayed.
    pub request: u64,
    /// Confirm messages received, direct or relayed.
    pub confirm: u64,
    /// Renew messages received, direct or relayed.
    pub renew: u64,
    /// Rebind messages received, direct or relayed.
    pub rebind: u64,
    /// Release messages received, direct or relayed.
    pub release: u64,
    /// Decline messages received, direct or relayed.
    pub decline: u64,
    /// Information-request messages received, direct or relayed.
    pub information_request: u64,
    /// Relay-forward messages received; the client message inside is also counted by its type.
    pub relay_forw: u64,
    /// Extension: message types a server does not handle (Advertise, Reply, Reconfigure, …).
    pub other: u64,
}

/// Sent messages by type (the `tx` object of `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TxTotals {
    /// Advertise messages sent directly to clients (relayed ones count as `relay_repl`).
    pub advertise: u64,
    /// Reply messages sent directly to clients (relayed ones count as `relay_repl`).
    pub reply: u64,
    /// Relay-reply messages sent, each wrapping one Advertise or Reply.
    pub relay_repl: u64,
}

/// Dropped messages by [`DropReason`] (the `dropped` object of `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DropTotals {
    /// Bytes that do not decode as a valid frame or DHCPv6 message.
    pub malformed: u64,
    /// Messages for another server, or lacking our Server ID where required (RFC 9915 §16).
    pub not_for_us: u64,
    /// Messages that need a Client ID and lack one (RFC 9915 §16).
    pub no_client_id: u64,
    /// Messages shed by a rate limit.
    pub rate_limited: u64,
    /// Everything else discarded: wrong message type, no subnet for the link,
    /// journal not writable, reply queue full, ….
    pub other: u64,
}

/// The sum of every worker's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterTotals {
    /// Received messages by type.
    pub rx: RxTotals,
    /// Sent messages by type.
    pub tx: TxTotals,
    /// Dropped messages by reason.
    pub dropped: DropTotals,
}

impl CounterTotals {
    /// Sum the counters of all workers. Relaxed loads: each counter is
    /// monotonic and read independently, which is all a stats reader needs,
    /// and it never makes a worker wait.
    pub fn sum<'a>(workers: impl IntoIterator<Item = &'a WorkerCounters>) -> CounterTotals {
        let mut t = CounterTotals::default();
        for w in workers {
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            t.rx.solicit += get(&w.rx_solicit);
            t.rx.request += get(&w.rx_request);
            t.rx.confirm += get(&w.rx_confirm);
            t.rx.renew += get(&w.rx_renew);
            t.rx.rebind += get(&w.rx_rebind);
            t.rx.release += get(&w.rx_release);
            t.rx.decline += get(&w.rx_decline);
            t.rx.information_request += get(&w.rx_information_request);
            t.rx.relay_forw += get(&w.rx_relay_forw);
            t.rx.other += get(&w.rx_other);
            t.tx.advertise += get(&w.tx_advertise);
            t.tx.reply += get(&w.tx_reply);
            t.tx.relay_repl += get(&w.tx_relay_repl);
            t.dropped.malformed += get(&w.dropped_malformed);
            t.dropped.not_for_us += get(&w.dropped_not_for_us);
            t.dropped.no_client_id += get(&w.dropped_no_client_id);
            t.dropped.rate_limited += get(&w.dropped_rate_limited);
            t.dropped.other += get(&w.dropped_other);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control side sums per-worker counters (CONTRACT.md, "Sum per-worker counters on read").
    #[test]
    fn totals_sum_every_worker() {
        let a = WorkerCounters::default();
        let b = WorkerCounters::default();
        a.received(MsgKind::Solicit);
        b.received(MsgKind::Solicit);
        b.received(MsgKind::RelayForw);
        a.sent(MsgKind::Advertise);
        b.dropped(DropReason::NotForUs);
        let t = CounterTotals::sum([&a, &b]);
        assert_eq!(t.rx.solicit, 2);
        assert_eq!(t.rx.relay_forw, 1);
        assert_eq!(t.tx.advertise, 1);
        assert_eq!(t.dropped.not_for_us, 1);
        assert_eq!(t.dropped.malformed, 0);
    }
}
