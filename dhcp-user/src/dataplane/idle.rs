//! When an AF_XDP worker spins and when it sleeps in poll().
//!
//! Waking a sleeping thread costs an interrupt, a context switch and (in a
//! VM) an IPI exit: on the 2-core test machine several microseconds, more
//! than handling a packet. While requests keep coming a worker therefore
//! keeps polling its rings for a short *time* after its last packet; only
//! then does it sleep. The budget is time, not a number of rounds, so a
//! loop that does less per round (the benchmark's bare echo) waits exactly
//! as long as the dhcp6d worker does; counting rounds made the faster loop
//! sleep sooner and pay a wake-up per packet, which is how the old echo
//! "ceiling" came out at half the rate of the path it was meant to bound.
//!
//! Between streaming and idle lies the moderate rate a server sees most of
//! the day: a request every few tens of microseconds, too far apart for the
//! spin to catch the next one, so each request used to cost a wake-up from
//! poll(). There a worker *naps* instead ([`Pace`]): it sleeps a fixed
//! [`NAP`] and then takes whatever gathered meanwhile in one batch, so one
//! wake-up serves several requests, at the price of at most one nap of
//! extra latency (nothing next to a client's 1 s retransmission timer).
//!
//! This module owns only these decisions; it does no I/O.

use std::time::{Duration, Instant};

/// How long a worker keeps polling its rings after the last frame it
/// handled before it sleeps in poll(). Nothing once traffic stops; at a
/// moderate, evenly spaced rate each request can cost up to this much
/// spinning (`bench echo` prints the CPU per request at 10,000/s). Measured
/// on the 2-core test machine, closed loop under load: with 10 us and with
/// 50 us both the bare echo and dhcp6d stream (0.88-0.97 of each other),
/// but 50 us doubled the CPU per request at 10,000/s (47-50 us against
/// 26-28 us; socket mode 10-21 us). Skipping the spin when requests are
/// sparse (a moving average of the gaps) was tried and is bistable: a loop
/// that sleeps sees its gaps stretched by its own wake-ups and never spins
/// again.
pub const SPIN_BUDGET: Duration = Duration::from_micros(10);

/// Spin-then-sleep state of one worker. Pure: the caller reads the clock.
#[derive(Debug)]
pub struct IdleSpin {
    last_work: Instant,
    budget: Duration,
}

impl IdleSpin {
    /// A worker with the default [`SPIN_BUDGET`], started at `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_budget(SPIN_BUDGET, now)
    }

    /// A worker with its own budget (benchmarks compare budgets), started
    /// at `now` (which counts as work: it spins first).
    pub fn with_budget(budget: Duration, now: Instant) -> Self {
        IdleSpin {
            last_work: now,
            budget,
        }
    }

    /// Call once per loop round with the time now. `did_work`: frames were
    /// received or sent this round. Returns true when the worker should
    /// sleep in poll() now; false when it should poll its rings again
    /// (after a [`std::hint::spin_loop`] if it did no work).
    pub fn should_sleep(&mut self, now: Instant, did_work: bool) -> bool {
        if did_work {
            self.last_work = now;
            return false;
        }
        now.saturating_duration_since(self.last_work) >= self.budget
    }
}

/// How long a worker naps when requests come often but not back to back.
/// Measured on the 2-core test machine (`bench kea --quick --servers xdp
/// --cpu-rate 12713`, one run each): CPU per 100,000 leases 2.32 s without
/// naps, 1.89 s at 200 us, 1.38 s at 500 us, 1.49 s at 1 ms; CPU per
/// request of `bench echo` at 10,000/s paced 20.5, 11.8, 7.3, 4.1 us; the
/// closed-loop echo 1.00, 0.97, 0.94, 0.89 of its ceiling. At most one nap
/// of latency is added (p50 of a lease 3.4 ms at 12,700/s, most of it the
/// journal's 2 ms gather window).
pub const NAP: Duration = Duration::from_micros(500);

/// A poll() that ended this soon after it began, woken by a request, means
/// requests are frequent enough that napping will gather several.
fn dense_gap(nap: Duration) -> Duration {
    nap * 2
}

/// After a nap that gathered half a batch or more, how long a worker does not
/// nap. Requests that fast are better served by spinning or a poll() wake-up;
/// a client that waits for its answers before sending more (a relay's
/// window, the echo benchmark) would otherwise be held to a window per nap.
/// Checking again once per hold costs such a client one nap per hold (1 %
/// of its time with the default nap).
pub const FAST_HOLD: Duration = Duration::from_millis(50);

/// What a worker does after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Poll the rings or the socket again now.
    Again,
    /// Sleep this long without polling, then poll again.
    Nap(Duration),
    /// Block in poll() until a request (or the journal) wakes the worker;
    /// then report with [`Pace::woke`].
    Sleep,
}

/// Spin, nap or sleep: the pacing of one worker. Pure: the time comes in,
/// a [`Next`] goes out; the worker loop does the sleeping.
///
/// Requests are *dense* once a poll() sleep ended, woken by a request,
/// within [`dense_gap`]; they stay dense while naps keep finding requests,
/// and stop being dense at the first nap that found none. So an idle or
/// sparse worker never naps (its wake-ups come from requests only), and a
/// busy one never sleeps in poll(). A nap that gathered half a batch or more
/// means requests come too fast to nap for: no nap for [`FAST_HOLD`].
#[derive(Debug)]
pub struct Pace {
    idle: IdleSpin,
    nap: Duration,
    dense: bool,
    napped: bool,
    no_nap_until: Option<Instant>,
}

impl Pace {
    /// `spin`: see [`SPIN_BUDGET`] (zero for a socket, whose polling is a
    /// syscall). `nap`: see [`NAP`]; zero never naps. `now`: the start.
    pub fn new(spin: Duration, nap: Duration, now: Instant) -> Self {
        Pace {
            idle: IdleSpin::with_budget(spin, now),
            nap,
            dense: false,
            napped: false,
            no_nap_until: None,
        }
    }

    /// Call once per round with the time now, the number of requests
    /// received and the batch size (a full batch: more may be waiting).
    pub fn after_round(&mut self, now: Instant, got: usize, batch: usize) -> Next {
        let full = got >= batch;
        if std::mem::take(&mut self.napped) {
            if got == 0 {
                self.dense = false;
            } else if got * 2 >= batch {
                self.no_nap_until = Some(now + FAST_HOLD);
            }
        }
        if full {
            self.idle.should_sleep(now, true);
            return Next::Again;
        }
        // Requests trickling in densely: nap at once. Spinning first would
        // rarely catch the next one (profiled at 12,700 leases/s, the spin's
        // clock reads were 7 % of the worker's CPU).
        if got > 0 && self.may_nap(now) {
            self.napped = true;
            return Next::Nap(self.nap);
        }
        // Without a spin budget a batch that did not fill drained the queue:
        // polling again at once would find it empty.
        let drained = got > 0 && self.idle.budget.is_zero();
        if !drained && !self.idle.should_sleep(now, got > 0) {
            return Next::Again;
        }
        if self.may_nap(now) {
            self.napped = true;
            return Next::Nap(self.nap);
        }
        Next::Sleep
    }

    fn may_nap(&mut self, now: Instant) -> bool {
        self.dense && !self.nap.is_zero() && !self.holding_off(now)
    }

    fn holding_off(&mut self, now: Instant) -> bool {
        match self.no_nap_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.no_nap_until = None;
                false
            }
            None => false,
        }
    }

    /// After a poll() sleep of `slept`: `request` is whether a request (not
    /// a timeout or the journal) woke it.
    pub fn woke(&mut self, slept: Duration, request: bool) {
        if request {
            self.dense = slept < dense_gap(self.nap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn spins_after_work_while_the_budget_lasts() {
        let t0 = Instant::now();
        let mut idle = IdleSpin::with_budget(MS, t0);
        assert!(!idle.should_sleep(t0, true), "work never sleeps");
        assert!(
            !idle.should_sleep(t0 + MS / 2, false),
            "just after work: spin"
        );
    }

    #[test]
    fn sleeps_once_the_budget_is_spent_and_work_restarts_it() {
        let t0 = Instant::now();
        let mut idle = IdleSpin::with_budget(MS, t0);
        assert!(!idle.should_sleep(t0, true));
        assert!(idle.should_sleep(t0 + 5 * MS, false), "budget spent: sleep");
        assert!(
            !idle.should_sleep(t0 + 6 * MS, true),
            "frames after the sleep: work"
        );
        assert!(
            !idle.should_sleep(t0 + 6 * MS + MS / 2, false),
            "spin again"
        );
    }

    #[test]
    fn a_new_worker_spins_for_its_budget_first() {
        let t0 = Instant::now();
        let mut idle = IdleSpin::new(t0);
        assert!(!idle.should_sleep(t0, false));
        assert!(idle.should_sleep(t0 + SPIN_BUDGET, false));
    }

    /// A socket-like pace: no spin, a one second nap.
    fn socket_pace(t0: Instant) -> Pace {
        Pace::new(Duration::ZERO, SEC, t0)
    }

    #[test]
    fn a_sparse_worker_sleeps_and_never_naps() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        assert_eq!(p.after_round(t0, 0, 32), Next::Sleep);
        // Woken by a request after a long sleep: still sparse.
        p.woke(5 * SEC, true);
        assert_eq!(
            p.after_round(t0 + 5 * SEC, 1, 32),
            Next::Sleep,
            "drained, sparse"
        );
    }

    #[test]
    fn a_full_batch_polls_again() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        assert_eq!(p.after_round(t0, 32, 32), Next::Again);
    }

    #[test]
    fn dense_requests_nap_until_a_nap_finds_nothing() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        // Woken by a request right after going to sleep: dense.
        p.woke(Duration::ZERO, true);
        assert_eq!(p.after_round(t0, 3, 32), Next::Nap(SEC));
        assert_eq!(
            p.after_round(t0 + SEC, 5, 32),
            Next::Nap(SEC),
            "the nap found requests"
        );
        assert_eq!(
            p.after_round(t0 + 2 * SEC, 0, 32),
            Next::Sleep,
            "the nap found none"
        );
        assert_eq!(
            p.after_round(t0 + 3 * SEC, 2, 32),
            Next::Sleep,
            "sparse again"
        );
    }

    #[test]
    fn a_nap_that_gathers_half_a_batch_stops_napping_for_a_while() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        p.woke(Duration::ZERO, true);
        assert_eq!(p.after_round(t0, 3, 32), Next::Nap(SEC));
        // The nap gathered 20 of 32: too fast to nap for.
        let t1 = t0 + SEC;
        assert_eq!(p.after_round(t1, 20, 32), Next::Sleep);
        p.woke(Duration::ZERO, true);
        assert_eq!(p.after_round(t1 + MS, 3, 32), Next::Sleep, "held off");
        assert_eq!(
            p.after_round(t1 + FAST_HOLD - MS, 3, 32),
            Next::Sleep,
            "still held off"
        );
        // Once the hold has passed, naps resume.
        assert_eq!(p.after_round(t1 + FAST_HOLD, 3, 32), Next::Nap(SEC));
    }

    #[test]
    fn a_quick_wake_by_the_journal_or_a_timeout_is_not_a_request() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        p.woke(Duration::ZERO, false);
        assert_eq!(p.after_round(t0, 1, 32), Next::Sleep);
    }

    #[test]
    fn a_slow_wake_by_a_request_ends_the_naps() {
        let t0 = Instant::now();
        let mut p = socket_pace(t0);
        p.woke(Duration::ZERO, true);
        assert_eq!(p.after_round(t0, 3, 32), Next::Nap(SEC));
        assert_eq!(p.after_round(t0 + SEC, 0, 32), Next::Sleep);
        p.woke(dense_gap(SEC), true);
        assert_eq!(p.after_round(t0 + 4 * SEC, 3, 32), Next::Sleep);
    }

    #[test]
    fn a_zero_nap_never_naps() {
        let t0 = Instant::now();
        let mut p = Pace::new(Duration::ZERO, Duration::ZERO, t0);
        p.woke(Duration::ZERO, true);
        assert_eq!(p.after_round(t0, 3, 32), Next::Sleep);
    }

    #[test]
    fn a_spinning_worker_spins_while_sparse_and_naps_without_spinning_while_dense() {
        let t0 = Instant::now();
        let mut p = Pace::new(MS, SEC, t0);
        p.woke(5 * SEC, true);
        assert_eq!(p.after_round(t0, 3, 32), Next::Again, "work: spin");
        assert_eq!(
            p.after_round(t0 + MS / 2, 0, 32),
            Next::Again,
            "budget left: spin"
        );
        assert_eq!(p.after_round(t0 + MS, 0, 32), Next::Sleep, "budget spent");
        p.woke(Duration::ZERO, true);
        assert_eq!(
            p.after_round(t0 + 2 * MS, 3, 32),
            Next::Nap(SEC),
            "dense: nap, no spin"
        );
        assert_eq!(
            p.after_round(t0 + 2 * MS + SEC, 32, 32),
            Next::Again,
            "a full batch: poll again"
        );
    }

    #[test]
    fn zero_budget_sleeps_at_once() {
        let t0 = Instant::now();
        let mut idle = IdleSpin::with_budget(Duration::ZERO, t0);
        assert!(!idle.should_sleep(t0, true));
        assert!(idle.should_sleep(t0, false));
    }
}
