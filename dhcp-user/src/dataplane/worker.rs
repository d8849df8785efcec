//! What a worker does with one DHCPv6 message: call the [`Handler`], count,
//! hand lease changes to the journal, and say whether the reply must wait for
//! durability; and the queue such replies wait in. The loop around it is
//! [`super::worker_loop`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::DropReason;
use crate::protocol::{Handler, Ingress, LeaseChanges, Reply, Timestamp, WorkerLocal};
use crate::stats::WorkerCounters;
use crate::store::{Durability, DurableSignal};
use crate::wire::MessageType;

/// Most replies a worker holds while they wait for the journal. When full,
/// new replies that need durability are dropped (and counted as [`DropReason::HoldQueueFull`]):
/// the client retransmits, which is better than unbounded memory.
pub const PENDING_CAPACITY: usize = 4096;

/// The handler, the journal and this worker's counters.
pub struct Processor<H, D> {
    handler: Arc<H>,
    // What the handler keeps between this worker's messages (the core's policy cache).
    local: WorkerLocal,
    durability: Arc<D>,
    counters: Arc<WorkerCounters>,
    // Boxed once per worker: LeaseChanges is a fixed array, reused per message.
    changes: Box<LeaseChanges>,
    now: Timestamp,
    // Readable when the journal made more replies durable (None: it cannot tell).
    signal: Option<Arc<DurableSignal>>,
}

/// What to do with a handled message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send now.
    Send(Reply),
    /// Send once `Durability::durable_seq() >= seq`.
    Hold(Reply, u64),
    /// Nothing to send (already counted).
    Drop,
}

impl<H: Handler, D: Durability> Processor<H, D> {
    /// A processor for one worker: `handler` answers, `durability` is the journal,
    /// `counters` this worker's block (the stats reader holds the other `Arc`).
    pub fn new(handler: Arc<H>, durability: Arc<D>, counters: Arc<WorkerCounters>) -> Self {
        let signal = durability.subscribe();
        Processor {
            signal,
            handler,
            local: WorkerLocal::default(),
            durability,
            counters,
            changes: Box::default(),
            now: Timestamp(0),
        }
    }

    /// Read the clock once per batch, not once per packet.
    pub fn start_batch(&mut self) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.now = Timestamp(secs);
    }

    /// This worker's counters.
    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    /// The journal's durable sequence number now.
    pub fn durable_seq(&self) -> u64 {
        self.durability.durable_seq()
    }

    /// Readable when the journal made more replies durable (None: it cannot
    /// tell, and a worker holding replies must look at `durable_seq` often).
    pub fn signal(&self) -> Option<&DurableSignal> {
        self.signal.as_deref()
    }

    /// Handle one message; the reply payload (if any) is left in `out[..reply.len]`.
    pub fn process(&mut self, ingress: &Ingress, payload: &[u8], out: &mut [u8]) -> Verdict {
        crate::fault::hit(crate::fault::Point::Worker);
        self.changes.clear();
        let handled = self.handler.handle_local(
            &mut self.local,
            ingress,
            payload,
            self.now,
            out,
            &mut self.changes,
        );
        if handled.relayed {
            self.counters.received(MessageType::RelayForw);
        }
        if let Some(kind) = handled.received {
            self.counters.received(kind);
        }
        self.counters.refused(&handled.refused);
        let reply = match handled.result {
            Ok(reply) => reply,
            Err(reason) => {
                self.counters.dropped(reason);
                return Verdict::Drop;
            }
        };
        if reply.len > out.len() {
            self.counters.dropped(DropReason::ReplyTooLarge);
            return Verdict::Drop;
        }
        if !reply.needs_durable {
            return Verdict::Send(reply);
        }
        match self.durability.append(&self.changes) {
            Some(seq) => Verdict::Hold(reply, seq),
            // Journal cannot take writes: never acknowledge what is not on disk.
            None => {
                self.counters.dropped(DropReason::JournalUnavailable);
                Verdict::Drop
            }
        }
    }

    /// Count a frame dropped before or after the handler.
    pub fn drop_frame(&self, reason: DropReason) {
        self.counters.dropped(reason);
    }

    /// Count a reply that left.
    pub fn sent(&self, kind: MessageType) {
        self.counters.sent(kind);
    }
}

/// Replies waiting for the journal, in append order. Fixed capacity,
/// allocated once; `T` is whatever the backend needs to send later (a UMEM
/// frame address, a buffer slot).
pub struct PendingQueue<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> PendingQueue<T> {
    /// An empty queue with room for [`PENDING_CAPACITY`] replies, allocated now so
    /// that holding a reply never allocates.
    pub fn new() -> Self {
        PendingQueue {
            items: VecDeque::with_capacity(PENDING_CAPACITY),
        }
    }

    /// Queue `item` until `seq` is durable; gives it back when full.
    pub fn push(&mut self, seq: u64, item: T) -> Result<(), T> {
        if self.items.len() == PENDING_CAPACITY {
            return Err(item);
        }
        self.items.push_back((seq, item));
        Ok(())
    }

    /// The oldest item whose sequence is durable. Sequence numbers are
    /// assigned in append order, so checking the front is enough.
    pub fn pop_ready(&mut self, durable: u64) -> Option<T> {
        if self.items.front()?.0 <= durable {
            self.items.pop_front().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// Take everything (shutdown), durable or not.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..).map(|(_, item)| item)
    }

    /// Replies waiting for the journal.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no reply is waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> Default for PendingQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_releases_in_order_only_when_durable() {
        let mut q = PendingQueue::new();
        q.push(3, 'a').unwrap();
        q.push(5, 'b').unwrap();
        assert_eq!(q.pop_ready(2), None);
        assert_eq!(q.pop_ready(4), Some('a'));
        assert_eq!(q.pop_ready(4), None);
        assert_eq!(q.pop_ready(9), Some('b'));
        assert!(q.is_empty());
        for i in 0..PENDING_CAPACITY as u64 {
            q.push(i, 'x').unwrap();
        }
        assert_eq!(q.push(0, 'y'), Err('y'));
        assert_eq!(q.drain().count(), PENDING_CAPACITY);
    }
}
