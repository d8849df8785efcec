//! The worker loop over an in-memory device and a fake clock: no root, no
//! sockets, no real sleeps (except the one test of the real poll()).

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::*;
use crate::dataplane::idle::NAP;
use crate::dataplane::testing::{EchoHandler, ManualDurability};
use crate::dataplane::worker::PENDING_CAPACITY;
use crate::protocol::LeaseChanges;
use crate::stats::WorkerCounters;

const CLIENT: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);
const US: Duration = Duration::from_micros(1);

/// One received datagram: a DHCPv6 message, or one the device itself
/// rejects (for that reason).
#[derive(Clone, Debug)]
enum Fake {
    Msg(Vec<u8>),
    Bad(DropReason),
}

fn solicit() -> Fake {
    Fake::Msg(vec![1, 0xaa, 0xbb, 0xcc])
}

/// EchoHandler: a message starting with 3 (Request) needs durability.
fn request() -> Fake {
    Fake::Msg(vec![3, 0x11, 0x22, 0x33])
}

/// A device in memory: scripted receive batches, recorded transmissions.
#[derive(Debug)]
struct Mem {
    inbox: VecDeque<Vec<Fake>>,
    batch: Vec<Fake>,
    bufs: Vec<[u8; 64]>,
    free: Vec<usize>,
    /// Payload, destination and port of every reply sent, in order.
    sent: Vec<(Vec<u8>, Ipv6Addr, u16)>,
    /// Most replies one transmit takes (an AF_XDP TX ring with this much
    /// room); `None`: a socket, which takes a batch per call, always.
    room: Option<usize>,
    /// Transmits that fail entirely (a socket's sendmmsg error).
    failing: bool,
    /// `reply` finds no source address.
    no_source: bool,
    transmits: usize,
}

#[derive(Clone, Copy, Debug)]
struct MemTx {
    buf: usize,
    len: usize,
    to: Ipv6Addr,
    port: u16,
}

impl Mem {
    fn new() -> Mem {
        Mem {
            inbox: VecDeque::new(),
            batch: Vec::with_capacity(Mem::BATCH),
            bufs: vec![[0; 64]; Mem::BUFFERS],
            free: (0..Mem::BUFFERS).collect(),
            sent: Vec::new(),
            room: None,
            failing: false,
            no_source: false,
            transmits: 0,
        }
    }

    /// Queue `msgs` for receiving, a batch at a time.
    fn arrive(&mut self, msgs: impl IntoIterator<Item = Fake>) {
        let msgs: Vec<Fake> = msgs.into_iter().collect();
        for chunk in msgs.chunks(Mem::BATCH) {
            self.inbox.push_back(chunk.to_vec());
        }
    }

    fn all_free(&self) -> bool {
        self.free.len() == Mem::BUFFERS
    }
}

impl Device for Mem {
    type Rx = usize;
    type Tx = MemTx;
    const BATCH: usize = 4;
    const BUFFERS: usize = PENDING_CAPACITY + 16;

    fn fd(&self) -> RawFd {
        -1
    }

    fn receive(&mut self) -> usize {
        self.batch.clear();
        if let Some(b) = self.inbox.pop_front() {
            self.batch.extend(b);
        }
        self.batch.len()
    }

    fn request(&mut self, i: usize) -> Result<Request<'_, usize>, DropReason> {
        let payload = match &self.batch[i] {
            Fake::Bad(reason) => return Err(*reason),
            Fake::Msg(p) => p,
        };
        let buf = self.free.pop().ok_or(DropReason::NoBuffer)?;
        Ok(Request {
            ingress: Ingress {
                ifindex: 7,
                src: CLIENT,
                src_port: 546,
                dst_multicast: true,
            },
            payload,
            out: &mut self.bufs[buf],
            rx: buf,
        })
    }

    fn reply(&mut self, rx: usize, reply: &Reply) -> Result<MemTx, DropReason> {
        if self.no_source {
            return Err(DropReason::NoSourceAddress);
        }
        Ok(MemTx {
            buf: rx,
            len: reply.len,
            to: reply.to,
            port: reply.port,
        })
    }

    fn free_rx(&mut self, rx: usize) {
        assert!(!self.free.contains(&rx), "buffer {rx} freed twice");
        self.free.push(rx);
    }

    fn free_tx(&mut self, tx: MemTx) {
        self.free_rx(tx.buf);
    }

    fn transmit(&mut self, queue: &[Queued<MemTx>]) -> Sent {
        assert!(!queue.is_empty(), "transmit is never called with nothing");
        self.transmits += 1;
        let take = queue.len().min(self.room.unwrap_or(Mem::BATCH));
        for q in &queue[..take] {
            if !self.failing {
                let t = q.tx;
                self.sent
                    .push((self.bufs[t.buf][..t.len].to_vec(), t.to, t.port));
            }
            self.free_rx(q.tx.buf);
        }
        if let Some(room) = &mut self.room {
            *room -= take;
        }
        let (sent, failed) = if self.failing { (0, take) } else { (take, 0) };
        Sent {
            sent,
            failed,
            more: self.room.is_none(),
        }
    }
}

/// A clock that moves only when told to, or by the naps and sleeps the loop
/// asks for (which take no real time).
#[derive(Debug)]
struct FakeClock {
    t0: Instant,
    at: Duration,
    naps: Vec<Duration>,
    /// Timeout of every poll() the loop asked for.
    waits: Vec<i32>,
    /// How the next sleeps end: after how long, and whether a request
    /// woke it. When empty, a sleep lasts its whole timeout.
    wakes: VecDeque<(Duration, bool)>,
    /// Made durable during every sleep (the journal syncing meanwhile).
    syncs: Option<Arc<ManualDurability>>,
}

impl FakeClock {
    fn new() -> FakeClock {
        FakeClock {
            t0: Instant::now(),
            at: Duration::ZERO,
            naps: Vec::new(),
            waits: Vec::new(),
            wakes: VecDeque::new(),
            syncs: None,
        }
    }

    fn advance(&mut self, d: Duration) {
        self.at += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.t0 + self.at
    }

    fn nap(&mut self, d: Duration) {
        self.naps.push(d);
        self.at += d;
    }

    fn wait(&mut self, _fd: RawFd, _signal: Option<&DurableSignal>, timeout_ms: i32) -> bool {
        self.waits.push(timeout_ms);
        if let Some(j) = &self.syncs {
            j.sync();
        }
        let (slept, request) = self
            .wakes
            .pop_front()
            .unwrap_or((Duration::from_millis(timeout_ms as u64), false));
        self.at += slept;
        request
    }
}

/// A journal that cannot wake workers: they must look at `durable_seq`.
#[derive(Debug, Default)]
struct Mute(ManualDurability);

impl Durability for Mute {
    fn append(&self, c: &LeaseChanges) -> Option<u64> {
        self.0.append(c)
    }
    fn durable_seq(&self) -> u64 {
        self.0.durable_seq()
    }
}

struct Setup<D> {
    proc: Processor<EchoHandler, D>,
    counters: Arc<WorkerCounters>,
    journal: Arc<D>,
}

fn setup<D: Durability + Default>() -> Setup<D> {
    let counters = Arc::new(WorkerCounters::default());
    let journal = Arc::new(D::default());
    Setup {
        proc: Processor::new(Arc::new(EchoHandler), journal.clone(), counters.clone()),
        counters,
        journal,
    }
}

/// A socket-like pace (no spin, no nap) unless a test needs another.
fn worker<D: Durability>(
    proc: &mut Processor<EchoHandler, D>,
) -> WorkerLoop<'_, Mem, EchoHandler, D, FakeClock> {
    WorkerLoop::new(
        Mem::new(),
        proc,
        FakeClock::new(),
        Duration::ZERO,
        Duration::ZERO,
    )
}

#[test]
fn a_reply_is_sent_back_and_counted() {
    let mut s = setup::<ManualDurability>();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([solicit()]);
    w.round(IDLE_POLL_MS);
    let dev = w.device();
    assert_eq!(dev.sent, [(vec![2, 0xaa, 0xbb, 0xcc], CLIENT, 546)]);
    assert!(dev.all_free(), "the reply's buffer came back");
    assert_eq!(s.counters.received_count(MessageType::Solicit), 1);
    assert_eq!(s.counters.sent_count(MessageType::Advertise), 1);
    assert_eq!(s.journal.appended(), 0, "an Advertise needs no journal");
}

#[test]
fn a_held_reply_leaves_only_once_durable() {
    let mut s = setup::<ManualDurability>();
    let journal = s.journal.clone();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([request(), solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(journal.appended(), 1);
    assert_eq!(w.pending(), 1);
    assert_eq!(w.device().sent.len(), 1, "only the Advertise left");
    // The journal wakes this worker: it may sleep as long as when idle.
    assert_eq!(w.clock_mut().waits, [IDLE_POLL_MS]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.device().sent.len(), 1, "not durable yet: still held");
    journal.sync();
    w.round(IDLE_POLL_MS);
    assert_eq!(w.pending(), 0);
    assert_eq!(w.device().sent.len(), 2);
    assert_eq!(w.device().sent[1].0, [2, 0x11, 0x22, 0x33]);
    assert!(w.device().all_free());
    assert_eq!(s.counters.sent_count(MessageType::Advertise), 2);
}

#[test]
fn a_worker_the_journal_cannot_wake_looks_again_after_1_ms() {
    let mut s = setup::<Mute>();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([request()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.pending(), 1);
    w.round(IDLE_POLL_MS);
    s.journal.0.sync();
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().waits, [1, 1, IDLE_POLL_MS], "idle again");
    assert_eq!(w.device().sent.len(), 1);
}

#[test]
fn a_full_hold_queue_drops_and_counts_the_reply() {
    let mut s = setup::<ManualDurability>();
    let journal = s.journal.clone();
    let mut w = worker(&mut s.proc);
    w.device_mut()
        .arrive(std::iter::repeat_with(request).take(PENDING_CAPACITY + 3));
    while !w.device().inbox.is_empty() {
        w.round(IDLE_POLL_MS);
    }
    assert_eq!(w.pending(), PENDING_CAPACITY);
    assert_eq!(s.counters.dropped_count(DropReason::HoldQueueFull), 3);
    assert_eq!(
        w.device().free.len(),
        Mem::BUFFERS - PENDING_CAPACITY,
        "the dropped replies' buffers came back"
    );
    journal.sync();
    w.round(IDLE_POLL_MS);
    assert_eq!(w.device().sent.len(), PENDING_CAPACITY);
    assert!(w.device().all_free());
}

#[test]
fn at_shutdown_held_replies_get_their_chance_then_are_abandoned_and_counted() {
    let mut s = setup::<ManualDurability>();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([request(), request()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.pending(), 2);
    w.clock_mut().waits.clear();
    w.run(&AtomicBool::new(true));
    assert_eq!(w.clock_mut().waits, [1; SHUTDOWN_ROUNDS], "1 ms rounds");
    assert_eq!(w.pending(), 0);
    assert!(w.device().sent.is_empty());
    assert!(w.device().all_free(), "abandoned buffers came back");
    assert_eq!(s.counters.dropped_count(DropReason::AbandonedAtShutdown), 2);
}

#[test]
fn at_shutdown_replies_that_become_durable_are_sent() {
    let mut s = setup::<ManualDurability>();
    let journal = s.journal.clone();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([request()]);
    w.round(IDLE_POLL_MS);
    w.clock_mut().waits.clear();
    w.clock_mut().syncs = Some(journal);
    w.run(&AtomicBool::new(true));
    assert_eq!(w.device().sent.len(), 1);
    assert_eq!(
        w.clock_mut().waits.len(),
        2,
        "a round that saw the sync, one that sent: no more"
    );
    assert_eq!(s.counters.dropped_count(DropReason::AbandonedAtShutdown), 0);
}

#[test]
fn a_full_device_keeps_replies_queued_retries_in_1_ms_and_abandons_them_at_shutdown() {
    let mut s = setup::<ManualDurability>();
    let mut w = worker(&mut s.proc);
    w.device_mut().room = Some(1);
    w.device_mut().arrive([solicit(), solicit(), solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.device().sent.len(), 1, "the ring took one");
    assert_eq!(w.device().transmits, 1, "a full device is not asked again");
    assert_eq!(w.queued(), 2);
    assert_eq!(w.clock_mut().waits, [1], "retry soon");
    w.device_mut().room = Some(1);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.device().sent.len(), 2, "in order, on the next round");
    assert_eq!(w.queued(), 1);
    w.device_mut().room = Some(0);
    w.finish();
    assert_eq!(w.queued(), 0);
    assert!(w.device().all_free());
    assert_eq!(s.counters.dropped_count(DropReason::AbandonedAtShutdown), 1);
    assert_eq!(s.counters.sent_count(MessageType::Advertise), 2);
}

#[test]
fn a_socket_like_device_gets_the_whole_queue_a_batch_per_call() {
    let mut s = setup::<ManualDurability>();
    let journal = s.journal.clone();
    let mut w = worker(&mut s.proc);
    w.device_mut()
        .arrive(std::iter::repeat_with(request).take(10));
    for _ in 0..3 {
        w.round(IDLE_POLL_MS);
    }
    journal.sync();
    let before = w.device().transmits;
    w.round(IDLE_POLL_MS);
    assert_eq!(w.device().sent.len(), 10);
    assert_eq!(w.device().transmits - before, 3, "4 + 4 + 2");
}

#[test]
fn failed_transmissions_are_counted_and_not_retried() {
    let mut s = setup::<ManualDurability>();
    let mut w = worker(&mut s.proc);
    w.device_mut().failing = true;
    w.device_mut().arrive([solicit(), solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.queued(), 0);
    assert!(w.device().all_free());
    assert_eq!(s.counters.dropped_count(DropReason::TransmitFailed), 2);
    assert_eq!(s.counters.sent_count(MessageType::Advertise), 0);
}

#[test]
fn each_drop_keeps_its_reason_and_returns_its_buffer() {
    let mut s = setup::<ManualDurability>();
    let mut w = worker(&mut s.proc);
    w.device_mut().arrive([
        Fake::Bad(DropReason::NotOurInterface),
        Fake::Bad(DropReason::Malformed),
        // The handler's own drop: an empty message is malformed.
        Fake::Msg(vec![]),
    ]);
    w.round(IDLE_POLL_MS);
    assert_eq!(s.counters.dropped_count(DropReason::NotOurInterface), 1);
    assert_eq!(s.counters.dropped_count(DropReason::Malformed), 2);
    w.device_mut().no_source = true;
    w.device_mut().arrive([solicit(), request()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(s.counters.dropped_count(DropReason::NoSourceAddress), 2);
    assert_eq!(w.pending(), 0);
    assert!(w.device().all_free());
    assert!(w.device().sent.is_empty());
    // No buffer left: the device says so.
    w.device_mut().no_source = false;
    let free = std::mem::take(&mut w.device_mut().free);
    w.device_mut().arrive([solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(s.counters.dropped_count(DropReason::NoBuffer), 1);
    w.device_mut().free = free;
    assert!(w.device().all_free());
}

#[test]
fn the_pace_spins_then_sleeps_naps_while_dense_and_never_really_sleeps() {
    let mut s = setup::<ManualDurability>();
    let began = Instant::now();
    let mut w = WorkerLoop::new(Mem::new(), &mut s.proc, FakeClock::new(), 10 * US, NAP);
    // Nothing yet, within the spin budget: poll again, no sleep.
    w.round(IDLE_POLL_MS);
    assert!(w.clock_mut().waits.is_empty() && w.clock_mut().naps.is_empty());
    // The budget spent: sleep in poll(), idle timeout. A request wakes it
    // at once: requests are dense.
    w.clock_mut().advance(20 * US);
    w.clock_mut().wakes.push_back((US, true));
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().waits, [IDLE_POLL_MS]);
    // A partial batch while dense: nap instead of spinning.
    w.device_mut().arrive([solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().naps, [NAP]);
    // The nap gathered a little: nap again.
    w.device_mut().arrive([solicit()]);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().naps, [NAP, NAP]);
    // The nap found nothing: no longer dense; the spin budget (counted
    // from the last work it saw) long spent: sleep.
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().naps.len(), 2);
    assert_eq!(w.clock_mut().waits, [IDLE_POLL_MS, IDLE_POLL_MS]);
    // A full batch: poll again at once, then spin for the budget.
    w.device_mut()
        .arrive(std::iter::repeat_with(solicit).take(Mem::BATCH));
    w.round(IDLE_POLL_MS);
    w.round(IDLE_POLL_MS);
    assert_eq!(w.clock_mut().waits.len(), 2, "work just now: spin");
    assert_eq!(w.clock_mut().naps.len(), 2);
    assert_eq!(w.device().sent.len(), 2 + Mem::BATCH);
    // Over 100 ms of sleeps and naps in fake time, next to nothing in real.
    assert!(w.clock_mut().at > Duration::from_millis(100));
    assert!(began.elapsed() < Duration::from_secs(10));
}

/// A pipe whose read end never becomes readable while the write end lives.
fn quiet_pipe() -> [std::os::fd::OwnedFd; 2] {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a two-int array; both fds owned right away.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    fds.map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[test]
fn the_system_clock_wakes_a_waiting_worker_when_the_journal_syncs() {
    use std::os::fd::AsRawFd;
    let journal = Arc::new(ManualDurability::default());
    let signal = journal.subscribe().expect("the journal signals");
    let [rd, _wr] = quiet_pipe();
    let syncer = {
        let journal = journal.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            journal.sync();
        })
    };
    // A minute-long timeout: only the journal's signal can end this wait
    // within the test's lifetime.
    let began = Instant::now();
    let readable = SystemClock.wait(rd.as_raw_fd(), Some(&signal), 60_000);
    syncer.join().unwrap();
    assert!(!readable, "the socket had nothing");
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "woken by the sync, not the timeout"
    );
    // The signal was cleared: the next wait times out.
    assert!(!SystemClock.wait(rd.as_raw_fd(), Some(&signal), 10));
}
