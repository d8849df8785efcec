//! Counters: what the workers count and the control side sums.
//!
//! Each worker owns one [`WorkerCounters`] (cache-line aligned, relaxed
//! atomics written only by that worker); the control thread reads and sums
//! them, so reading stats never takes a lock on the packet path.
//!
//! Owns the counter layout: received and sent messages indexed by the wire's
//! [`MessageType`], drops indexed by the core's [`DropReason`], and their
//! sums in the shape of the `stats` contract. Never touches sockets, the
//! protocol or the clock.

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::protocol::DropReason;
use crate::protocol::{Refusal, Refusals};
use crate::wire::MessageType;

/// Counter slots per message type: one per msg-type code 1..=17 (RFC 9915
/// §7.3, RFC 5007, RFC 5460); slot 0 takes every other code.
const MSG_SLOTS: usize = 18;

fn slot(t: MessageType) -> usize {
    let c = usize::from(t.code());
    if c < MSG_SLOTS {
        c
    } else {
        0
    }
}

/// Counters of one worker, indexed by the wire's [`MessageType`] and by
/// [`DropReason`]. Written by that worker only.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Messages received, by type (a relayed message counts as Relay-forw
    /// and as the type of the message inside).
    rx: [AtomicU64; MSG_SLOTS],
    /// Messages sent, by the outermost type.
    tx: [AtomicU64; MSG_SLOTS],
    /// Messages dropped, by reason.
    dropped: [AtomicU64; DropReason::COUNT],
    /// IAs refused by a `[limits]` cap, by [`Refusal`].
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx: std::array::from_fn(|_| AtomicU64::new(0)),
            tx: std::array::from_fn(|_| AtomicU64::new(0)),
            dropped: std::array::from_fn(|_| AtomicU64::new(0)),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

#[inline]
fn bump(c: &AtomicU64) {
    // Single writer: a relaxed load+store is enough and avoids a locked RMW.
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerCounters {
    /// Count a received message (the innermost message type for relayed ones is
    /// counted by the caller separately from `RelayForw`).
    #[inline]
    pub fn received(&self, kind: MessageType) {
        bump(&self.rx[slot(kind)]);
    }

    /// Count a sent message.
    #[inline]
    pub fn sent(&self, kind: MessageType) {
        bump(&self.tx[slot(kind)]);
    }

    /// Count a dropped message.
    #[inline]
    pub fn dropped(&self, reason: DropReason) {
        bump(&self.dropped[reason.index()]);
    }

    /// Count the IAs one message had refused by a cap.
    #[inline]
    pub fn refused(&self, r: &Refusals) {
        if r.is_empty() {
            return;
        }
        for k in Refusal::ALL {
            let c = &self.refused[k.index()];
            c.store(
                c.load(Ordering::Relaxed) + u64::from(r.get(k)),
                Ordering::Relaxed,
            );
        }
    }

    /// Messages of type `kind` received so far.
    pub fn received_count(&self, kind: MessageType) -> u64 {
        self.rx[slot(kind)].load(Ordering::Relaxed)
    }

    /// Messages of type `kind` sent so far.
    pub fn sent_count(&self, kind: MessageType) -> u64 {
        self.tx[slot(kind)].load(Ordering::Relaxed)
    }

    /// Messages dropped for `reason` so far.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
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

/// IAs answered NoAddrsAvail / NoPrefixAvail because of a `[limits]` cap,
/// summed over workers (the `refused` object of `stats`, an extension).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RefusedTotals {
    /// The client already held `limits.bindings_per_client`.
    pub bindings_per_client: u64,
    /// The table held `limits.max_bindings`.
    pub max_bindings: u64,
}

impl RefusedTotals {
    /// IAs refused for `r`.
    pub fn get(&self, r: Refusal) -> u64 {
        match r {
            Refusal::BindingsPerClient => self.bindings_per_client,
            Refusal::MaxBindings => self.max_bindings,
        }
    }
}

/// Dropped messages by [`DropReason`] (the `dropped` object of `stats`).
///
/// In JSON: one key per reason ([`DropReason::label`]), plus `other`, the
/// sum of the reasons the base contract has no key of its own for (so a
/// reader of the base contract still sees every drop).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropTotals {
    by_reason: [u64; DropReason::COUNT],
}

impl DropTotals {
    /// Messages dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.by_reason[reason.index()]
    }

    /// The sum over reasons without a base-contract key of their own.
    pub fn other(&self) -> u64 {
        DropReason::ALL
            .iter()
            .filter(|r| !r.in_contract())
            .map(|r| self.get(*r))
            .sum()
    }

    /// Every drop, in the order shown: the base-contract keys, `other`,
    /// then each reason summed into `other`.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        let (base, rest): (Vec<DropReason>, Vec<DropReason>) =
            DropReason::ALL.iter().partition(|r| r.in_contract());
        let mut v: Vec<(&'static str, u64)> =
            base.iter().map(|r| (r.label(), self.get(*r))).collect();
        v.push(("other", self.other()));
        v.extend(rest.iter().map(|r| (r.label(), self.get(*r))));
        v
    }
}

impl serde::Serialize for DropTotals {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.entries();
        let mut m = s.serialize_map(Some(e.len()))?;
        for (k, v) in e {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for DropTotals {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Keys this build does not know (a newer server) are ignored, and
        // `other` is derived, not read.
        let m = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut t = DropTotals::default();
        for r in DropReason::ALL {
            if let Some(v) = m.get(r.label()) {
                t.by_reason[r.index()] = *v;
            }
        }
        Ok(t)
    }
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
    /// IAs refused by a cap, by reason.
    pub refused: RefusedTotals,
}

impl CounterTotals {
    /// Sum the counters of all workers. Relaxed loads: each counter is
    /// monotonic and read independently, which is all a stats reader needs,
    /// and it never makes a worker wait.
    pub fn sum<'a>(workers: impl IntoIterator<Item = &'a WorkerCounters>) -> CounterTotals {
        use MessageType as T;
        let mut rx = [0u64; MSG_SLOTS];
        let mut tx = [0u64; MSG_SLOTS];
        let mut refused = [0u64; Refusal::ALL.len()];
        let mut t = CounterTotals::default();
        for w in workers {
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            for (sum, c) in rx.iter_mut().zip(&w.rx) {
                *sum += get(c);
            }
            for (sum, c) in tx.iter_mut().zip(&w.tx) {
                *sum += get(c);
            }
            for (sum, c) in t.dropped.by_reason.iter_mut().zip(&w.dropped) {
                *sum += get(c);
            }
            for (sum, c) in refused.iter_mut().zip(&w.refused) {
                *sum += get(c);
            }
        }
        t.refused = RefusedTotals {
            bindings_per_client: refused[Refusal::BindingsPerClient.index()],
            max_bindings: refused[Refusal::MaxBindings.index()],
        };
        let at = |a: &[u64; MSG_SLOTS], k: T| a[slot(k)];
        t.rx = RxTotals {
            solicit: at(&rx, T::Solicit),
            request: at(&rx, T::Request),
            confirm: at(&rx, T::Confirm),
            renew: at(&rx, T::Renew),
            rebind: at(&rx, T::Rebind),
            release: at(&rx, T::Release),
            decline: at(&rx, T::Decline),
            information_request: at(&rx, T::InformationRequest),
            relay_forw: at(&rx, T::RelayForw),
            other: 0,
        };
        let named = t.rx.solicit
            + t.rx.request
            + t.rx.confirm
            + t.rx.renew
            + t.rx.rebind
            + t.rx.release
            + t.rx.decline
            + t.rx.information_request
            + t.rx.relay_forw;
        t.rx.other = rx.iter().sum::<u64>() - named;
        t.tx = TxTotals {
            advertise: at(&tx, T::Advertise),
            reply: at(&tx, T::Reply),
            relay_repl: at(&tx, T::RelayRepl),
        };
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
        a.received(MessageType::Solicit);
        b.received(MessageType::Solicit);
        b.received(MessageType::RelayForw);
        a.sent(MessageType::Advertise);
        b.dropped(DropReason::NotForUs);
        let t = CounterTotals::sum([&a, &b]);
        assert_eq!(t.rx.solicit, 2);
        assert_eq!(t.rx.relay_forw, 1);
        assert_eq!(t.tx.advertise, 1);
        assert_eq!(t.dropped.get(DropReason::NotForUs), 1);
        assert_eq!(t.dropped.get(DropReason::Malformed), 0);
    }

    /// Types a server does not answer are `rx.other`; every drop reason has
    /// its key, and `other` sums those the base contract has no key for.
    #[test]
    fn other_types_and_reasons_are_counted_apart_and_summed() {
        let w = WorkerCounters::default();
        w.received(MessageType::Reply);
        w.received(MessageType::Other(200));
        w.received(MessageType::Renew);
        w.dropped(DropReason::HoldQueueFull);
        w.dropped(DropReason::NoSubnet);
        w.dropped(DropReason::NoSubnet);
        w.dropped(DropReason::Malformed);
        let t = CounterTotals::sum([&w]);
        assert_eq!((t.rx.renew, t.rx.other), (1, 2));
        assert_eq!(t.dropped.other(), 3);
        let json = serde_json::to_value(t.dropped).unwrap();
        assert_eq!(json["malformed"], 1);
        assert_eq!(json["other"], 3);
        assert_eq!(json["no_subnet"], 2);
        assert_eq!(json["hold_queue_full"], 1);
        assert_eq!(json["transmit_failed"], 0);
        let back: DropTotals = serde_json::from_value(json).unwrap();
        assert_eq!(back, t.dropped);
    }
}
