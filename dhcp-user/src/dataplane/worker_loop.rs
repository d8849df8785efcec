//! The one worker loop both backends run. A backend is a [`Device`]: it
//! receives a batch, hands out each request's bytes and reply buffer, builds
//! the reply frame, sends a batch and frees buffers, and gives poll() a file
//! descriptor. Everything else is here, once: the [`Processor`] call, the
//! queue of replies held until the journal made them durable
//! ([`PendingQueue`]) and their release, the send queue, the pacing
//! ([`Pace`]: spin, nap or sleep), the shutdown drain and abandon, and every
//! counter a worker keeps.
//!
//! The loop is generic over the device and the [`Clock`] (monomorphised, no
//! `dyn` on the packet path) and allocates nothing per packet: both queues
//! are allocated when the loop is built. Its unit tests (`tests.rs`) drive
//! it with an in-memory device and a fake clock: no root, no real sleeps.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::idle::{Next, Pace};
use super::worker::{PendingQueue, Processor, Verdict};
use crate::protocol::{DropReason, Handler, Ingress, Reply};
use crate::store::{Durability, DurableSignal};
use crate::wire::MessageType;

/// How long an idle worker sleeps in poll() before re-checking for stop.
pub const IDLE_POLL_MS: i32 = 100;
/// At stop: rounds (of up to 1 ms each) that held replies get to become
/// durable before the rest are dropped.
pub const SHUTDOWN_ROUNDS: usize = 200;

/// One packet I/O backend instance (a UDP socket, or one AF_XDP queue). It
/// does I/O only; [`WorkerLoop`] decides and counts.
///
/// Every buffer is always in exactly one place: the device (free or being
/// received into), a request the loop is handling ([`Device::Rx`]), a reply
/// the loop queued or holds ([`Device::Tx`]), or a transmission the device
/// took. The loop gives each one back with [`Device::free_rx`],
/// [`Device::free_tx`] or [`Device::transmit`].
pub trait Device {
    /// A received request's buffer and what its reply needs from it.
    type Rx: Copy;
    /// A reply ready to send: its buffer and where it goes.
    type Tx: Copy;
    /// Most requests one [`Device::receive`] returns; a full batch means
    /// more may be waiting.
    const BATCH: usize;
    /// Buffers the device has: no more replies than this can be queued.
    const BUFFERS: usize;

    /// Readable when requests arrive: what the loop sleeps on in poll().
    fn fd(&self) -> RawFd;

    /// Receive up to [`Device::BATCH`] requests without blocking (after
    /// taking back what finished sending, and giving free buffers to the
    /// receiver); returns how many.
    fn receive(&mut self) -> usize;

    /// Request `i` (below what [`Device::receive`] returned): where it came
    /// from, its DHCPv6 payload and the buffer the reply is written into.
    /// An error says why it cannot be handled; its buffer is already back
    /// with the device then.
    fn request(&mut self, i: usize) -> Result<Request<'_, Self::Rx>, DropReason>;

    /// Make the reply the handler wrote into the request's `out` ready to
    /// send. On an error the buffer is still the caller's ([`Device::free_rx`]).
    fn reply(&mut self, rx: Self::Rx, reply: &Reply) -> Result<Self::Tx, DropReason>;

    /// Give back the buffer of a request that gets no reply.
    fn free_rx(&mut self, rx: Self::Rx);

    /// Give back the buffer of a reply that will not be sent.
    fn free_tx(&mut self, tx: Self::Tx);

    /// Send from the front of `queue` (never empty). The device takes the
    /// first `sent + failed` entries (and frees their buffers once done with
    /// them); see [`Sent`].
    fn transmit(&mut self, queue: &[Queued<Self::Tx>]) -> Sent;
}

/// A device lent to a loop: the socket-mode supervisor keeps its socket
/// across a worker's restart (supervise.rs) and lends it to each new loop.
impl<Dev: Device> Device for &mut Dev {
    type Rx = Dev::Rx;
    type Tx = Dev::Tx;
    const BATCH: usize = Dev::BATCH;
    const BUFFERS: usize = Dev::BUFFERS;

    fn fd(&self) -> RawFd {
        (**self).fd()
    }

    #[inline]
    fn receive(&mut self) -> usize {
        (**self).receive()
    }

    #[inline]
    fn request(&mut self, i: usize) -> Result<Request<'_, Self::Rx>, DropReason> {
        (**self).request(i)
    }

    #[inline]
    fn reply(&mut self, rx: Self::Rx, reply: &Reply) -> Result<Self::Tx, DropReason> {
        (**self).reply(rx, reply)
    }

    #[inline]
    fn free_rx(&mut self, rx: Self::Rx) {
        (**self).free_rx(rx)
    }

    #[inline]
    fn free_tx(&mut self, tx: Self::Tx) {
        (**self).free_tx(tx)
    }

    #[inline]
    fn transmit(&mut self, queue: &[Queued<Self::Tx>]) -> Sent {
        (**self).transmit(queue)
    }
}

/// One received request, lent by the device to the loop.
pub struct Request<'a, R> {
    /// Where it came from.
    pub ingress: Ingress,
    /// The DHCPv6 message.
    pub payload: &'a [u8],
    /// Where the handler writes the reply's DHCPv6 message.
    pub out: &'a mut [u8],
    /// The buffer, for [`Device::reply`] or [`Device::free_rx`].
    pub rx: R,
}

/// A reply waiting to be sent (or for the journal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued<T> {
    /// The device's reply.
    pub tx: T,
    /// Its message type, counted when it leaves.
    pub kind: MessageType,
}

/// What one [`Device::transmit`] did with the front of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The first `sent` entries left.
    pub sent: usize,
    /// The `failed` entries after them were dropped (counted as
    /// [`DropReason::TransmitFailed`], never retried).
    pub failed: usize,
    /// Whether to call again with the rest now. False when the device
    /// is full: the rest stays queued for the next round.
    pub more: bool,
}

/// Time and sleeping, for the loop: the real clock and poll(), or a fake in
/// tests.
pub trait Clock {
    /// The time now.
    fn now(&self) -> Instant;
    /// Sleep `d`.
    fn nap(&mut self, d: Duration);
    /// Block until `fd` is readable, `signal` is (the journal made more
    /// replies durable; cleared then), or `timeout_ms` passed. True when
    /// `fd` became readable.
    fn wait(&mut self, fd: RawFd, signal: Option<&DurableSignal>, timeout_ms: i32) -> bool;
}

/// [`Instant::now`], `thread::sleep` and poll().
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn nap(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn wait(&mut self, fd: RawFd, signal: Option<&DurableSignal>, timeout_ms: i32) -> bool {
        let mut pfds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                // poll() skips a negative fd.
                fd: signal.map_or(-1, DurableSignal::fd),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds. For AF_XDP, poll() also kicks the fill
        // queue when the driver asked for a wake-up (need_wakeup).
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout_ms) };
        if n <= 0 {
            return false;
        }
        if pfds[1].revents & libc::POLLIN != 0 {
            if let Some(s) = signal {
                s.clear();
            }
        }
        pfds[0].revents & libc::POLLIN != 0
    }
}

/// One worker: a device, the processor (borrowed, so that it outlives a
/// device that is rebuilt after a failure), the clock, and the queues.
pub struct WorkerLoop<'p, Dev: Device, H, D, C = SystemClock> {
    dev: Dev,
    proc: &'p mut Processor<H, D>,
    clock: C,
    /// Replies that may leave, in order (what the device could not take
    /// last round first).
    txq: Vec<Queued<Dev::Tx>>,
    pending: PendingQueue<Queued<Dev::Tx>>,
    pace: Pace,
    shed: bool,
}

impl<'p, Dev: Device, H: Handler, D: Durability, C: Clock> WorkerLoop<'p, Dev, H, D, C> {
    /// A loop over `dev`, paced by `spin` and `nap` (see [`Pace::new`]).
    pub fn new(
        dev: Dev,
        proc: &'p mut Processor<H, D>,
        clock: C,
        spin: Duration,
        nap: Duration,
    ) -> Self {
        let pace = Pace::new(spin, nap, clock.now());
        WorkerLoop {
            dev,
            proc,
            clock,
            txq: Vec::with_capacity(Dev::BUFFERS),
            pending: PendingQueue::new(),
            pace,
            shed: false,
        }
    }

    /// The device.
    pub fn device(&self) -> &Dev {
        &self.dev
    }

    /// The device, mutably (tests feed an in-memory one).
    pub fn device_mut(&mut self) -> &mut Dev {
        &mut self.dev
    }

    /// The clock, mutably (tests move a fake one).
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Replies held for durability.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Replies that may leave but the device has not taken yet.
    pub fn queued(&self) -> usize {
        self.txq.len()
    }

    /// Serve until `stop`, then give held replies their chance
    /// ([`WorkerLoop::finish`]).
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            // Once `serve` dropped root, give up what only the drop needed
            // (caps.rs); one load per round until then.
            if !self.shed && crate::caps::dropped() {
                self.shed = true;
                if let Err(e) = crate::caps::after_drop() {
                    tracing::warn!("worker capabilities after the drop: {e}");
                }
            }
            self.round(IDLE_POLL_MS);
        }
        self.finish();
    }

    /// At stop: give the journal a moment ([`SHUTDOWN_ROUNDS`]) to make
    /// held replies durable (they are sent), then drop the rest.
    pub fn finish(&mut self) {
        for _ in 0..SHUTDOWN_ROUNDS {
            if self.pending.is_empty() {
                break;
            }
            self.round(1);
        }
        self.abandon();
    }

    /// Drop (and count as [`DropReason::AbandonedAtShutdown`]) every held or
    /// queued reply, giving its buffer back.
    pub fn abandon(&mut self) {
        for q in self.pending.drain() {
            self.proc.drop_frame(DropReason::AbandonedAtShutdown);
            self.dev.free_tx(q.tx);
        }
        for q in self.txq.drain(..) {
            self.proc.drop_frame(DropReason::AbandonedAtShutdown);
            self.dev.free_tx(q.tx);
        }
    }

    /// One round: receive and handle a batch, release what became durable,
    /// send, then spin, nap or sleep (up to `idle_timeout_ms` in poll(); the
    /// journal's signal wakes a worker holding replies).
    pub fn round(&mut self, idle_timeout_ms: i32) {
        let got = self.dev.receive();
        if got > 0 {
            self.proc.start_batch();
            for i in 0..got {
                self.handle(i);
            }
        }
        if !self.pending.is_empty() {
            let durable = self.proc.durable_seq();
            while let Some(q) = self.pending.pop_ready(durable) {
                self.txq.push(q);
            }
        }
        if !self.txq.is_empty() {
            self.transmit();
        }
        self.pace(got, idle_timeout_ms);
    }

    #[inline]
    fn handle(&mut self, i: usize) {
        let (rx, verdict) = match self.dev.request(i) {
            Ok(req) => (
                req.rx,
                self.proc.process(&req.ingress, req.payload, req.out),
            ),
            Err(reason) => {
                self.proc.drop_frame(reason);
                return;
            }
        };
        let (reply, seq) = match verdict {
            Verdict::Send(reply) => (reply, None),
            Verdict::Hold(reply, seq) => (reply, Some(seq)),
            // The processor counted why.
            Verdict::Drop => {
                self.dev.free_rx(rx);
                return;
            }
        };
        let tx = match self.dev.reply(rx, &reply) {
            Ok(tx) => tx,
            Err(reason) => {
                self.proc.drop_frame(reason);
                self.dev.free_rx(rx);
                return;
            }
        };
        let q = Queued {
            tx,
            kind: reply.sent,
        };
        match seq {
            None => self.txq.push(q),
            Some(seq) => {
                if let Err(q) = self.pending.push(seq, q) {
                    self.proc.drop_frame(DropReason::HoldQueueFull);
                    self.dev.free_tx(q.tx);
                }
            }
        }
    }

    fn transmit(&mut self) {
        let mut done = 0;
        while done < self.txq.len() {
            let s = self.dev.transmit(&self.txq[done..]);
            for q in &self.txq[done..done + s.sent] {
                self.proc.sent(q.kind);
            }
            for _ in 0..s.failed {
                self.proc.drop_frame(DropReason::TransmitFailed);
            }
            done += s.sent + s.failed;
            if !s.more {
                break;
            }
        }
        self.txq.drain(..done);
    }

    fn pace(&mut self, got: usize, idle_timeout_ms: i32) {
        let now = self.clock.now();
        match self.pace.after_round(now, got, Dev::BATCH) {
            Next::Again => {
                if got == 0 {
                    std::hint::spin_loop();
                }
            }
            Next::Nap(d) => self.clock.nap(d),
            Next::Sleep => {
                let timeout = self.sleep_timeout(idle_timeout_ms);
                let request = self.clock.wait(self.dev.fd(), self.proc.signal(), timeout);
                let slept = self.clock.now().saturating_duration_since(now);
                self.pace.woke(slept, request);
            }
        }
    }

    /// How long to sleep in poll(): 1 ms when the device was full (retry
    /// soon); while replies wait for the journal, as long as when idle if
    /// the journal wakes us, else 1 ms between looks at `durable_seq`.
    fn sleep_timeout(&self, idle_timeout_ms: i32) -> i32 {
        let device_full = !self.txq.is_empty();
        let holding_unwoken = !self.pending.is_empty() && self.proc.signal().is_none();
        if device_full || holding_unwoken {
            1
        } else {
            idle_timeout_ms
        }
    }
}

#[cfg(test)]
mod tests;
