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
//! This module owns only that decision; it does no I/O.

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

/// Spin-then-sleep state of one worker.
#[derive(Debug)]
pub struct IdleSpin {
    last_work: Instant,
    budget: Duration,
}

impl IdleSpin {
    /// A worker with the default [`SPIN_BUDGET`].
    pub fn new() -> Self {
        Self::with_budget(SPIN_BUDGET)
    }

    /// A worker with its own budget (benchmarks compare budgets).
    pub fn with_budget(budget: Duration) -> Self {
        IdleSpin {
            last_work: Instant::now(),
            budget,
        }
    }

    /// Call once per loop round. `did_work`: frames were received or sent
    /// this round. Returns true when the worker should sleep in poll() now;
    /// false when it should poll its rings again (after a spin hint).
    pub fn should_sleep(&mut self, did_work: bool) -> bool {
        if did_work {
            self.last_work = Instant::now();
            return false;
        }
        if self.last_work.elapsed() < self.budget {
            std::hint::spin_loop();
            return false;
        }
        true
    }
}

impl Default for IdleSpin {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spins_after_work_while_the_budget_lasts() {
        // A budget no scheduler hiccup can exceed between two calls.
        let mut idle = IdleSpin::with_budget(Duration::from_secs(60));
        assert!(!idle.should_sleep(true), "work never sleeps");
        assert!(!idle.should_sleep(false), "just after work: spin");
    }

    #[test]
    fn sleeps_once_the_budget_is_spent_and_work_restarts_it() {
        let mut idle = IdleSpin::with_budget(Duration::from_millis(1));
        assert!(!idle.should_sleep(true));
        std::thread::sleep(Duration::from_millis(5));
        assert!(idle.should_sleep(false), "budget spent: sleep");
        assert!(!idle.should_sleep(true), "frames after the sleep: work");
    }

    #[test]
    fn zero_budget_sleeps_at_once() {
        let mut idle = IdleSpin::with_budget(Duration::ZERO);
        assert!(!idle.should_sleep(true));
        assert!(idle.should_sleep(false));
    }
}
