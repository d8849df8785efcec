//! Trivial [`Handler`] and [`Durability`] implementations for data-plane
//! tests and the echo benchmark, before (and independently of) the protocol
//! core. Not used by `dhcp6d serve`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::DropReason;
use crate::protocol::{Handled, Handler, Ingress, LeaseChanges, Reply, Timestamp};
use crate::store::Durability;
use crate::wire::{MessageType, CLIENT_PORT, SERVER_PORT};

/// Answers every message with the same bytes, message type rewritten to
/// Advertise (2), sent back to where it came from (546 for clients, 547 for
/// relays). Messages whose first byte is 3 (Request) need durability.
/// An empty message is dropped as malformed.
#[derive(Debug, Default)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    fn handle(
        &self,
        ingress: &Ingress,
        payload: &[u8],
        _now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        changes.clear();
        let received = match payload.first() {
            Some(1) => Some(MessageType::Solicit),
            Some(3) => Some(MessageType::Request),
            Some(&c) => Some(MessageType::from_code(c)),
            None => None,
        };
        if payload.is_empty() || payload.len() > out.len() {
            return Handled {
                received,
                relayed: false,
                result: Err(DropReason::Malformed),
                refused: Default::default(),
            };
        }
        out[..payload.len()].copy_from_slice(payload);
        out[0] = 2;
        Handled {
            received,
            relayed: false,
            result: Ok(Reply {
                len: payload.len(),
                to: ingress.src,
                port: if ingress.src_port == SERVER_PORT {
                    SERVER_PORT
                } else {
                    CLIENT_PORT
                },
                sent: MessageType::Advertise,
                needs_durable: payload[0] == 3,
            }),
            refused: Default::default(),
        }
    }
}

/// [`EchoHandler`], except that a message starting with
/// [`PanicOnMarker::MARKER`] makes it panic, as a handler bug would: for
/// the worker supervision test.
#[derive(Debug, Default)]
pub struct PanicOnMarker;

impl PanicOnMarker {
    /// The first bytes of the message that kills the worker.
    pub const MARKER: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
}

impl Handler for PanicOnMarker {
    fn handle(
        &self,
        ingress: &Ingress,
        payload: &[u8],
        now: Timestamp,
        out: &mut [u8],
        changes: &mut LeaseChanges,
    ) -> Handled {
        assert!(
            !payload.starts_with(&Self::MARKER),
            "PanicOnMarker: marker message received"
        );
        EchoHandler.handle(ingress, payload, now, out, changes)
    }
}

/// Collects the XDP program's log records as text (a sink for
/// [`crate::dataplane::xdp::LoadedXdp::load_with_log`] in tests).
#[derive(Debug, Default, Clone)]
pub struct XdpLogLines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl XdpLogLines {
    /// The records so far, as `LEVEL message`.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl log::Log for XdpLogLines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, r: &log::Record<'_>) {
        if let Ok(mut l) = self.0.lock() {
            l.push(format!("{} {}", r.level(), r.args()));
        }
    }

    fn flush(&self) {}
}

/// A journal whose records become durable only when the test says so
/// (or immediately, with [`ManualDurability::immediate`]).
#[derive(Debug, Default)]
pub struct ManualDurability {
    appended: AtomicU64,
    durable: AtomicU64,
    immediate: bool,
    signals: crate::store::Signals,
}

impl ManualDurability {
    /// Every append is durable at once.
    pub fn immediate() -> Self {
        ManualDurability {
            immediate: true,
            ..Default::default()
        }
    }

    /// Make everything appended so far durable.
    pub fn sync(&self) {
        self.durable
            .store(self.appended.load(Ordering::SeqCst), Ordering::SeqCst);
        self.signals.notify();
    }

    /// Number of appends so far.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::SeqCst)
    }
}

impl Durability for ManualDurability {
    fn append(&self, _changes: &LeaseChanges) -> Option<u64> {
        let seq = self.appended.fetch_add(1, Ordering::SeqCst) + 1;
        if self.immediate {
            self.durable.fetch_max(seq, Ordering::SeqCst);
        }
        Some(seq)
    }

    fn durable_seq(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    fn subscribe(&self) -> Option<std::sync::Arc<crate::store::DurableSignal>> {
        self.signals.subscribe()
    }
}
