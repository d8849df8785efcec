//! Pool use and lease counts in `stats` against a simulated clock: a binding
//! whose valid lifetime has ended is not in use, even before the sweep
//! removes it. RFC 9915 §21.6: "valid-lifetime: The valid lifetime for the
//! address in the option, expressed in units of seconds"; past it the address
//! is no longer the client's (§18.3: the server may give it to another).
use crate::core_harness::*;

use std::net::Ipv6Addr;

use dhcp6d::protocol::{LeaseRecord, Server, Timestamp};
use dhcp6d::wire::MessageType;
use proptest::prelude::*;

/// BASE's lifetimes: valid 4000 s.
const VALID: u64 = 4000;

fn renew(s: &Server, n: u32, addr: Ipv6Addr, now: u64) {
    let msg = build(MessageType::Renew, 0x5000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[addr])
    });
    let out = direct(s, &msg, now);
    let (got, _, valid) = first_addr(&out.message()).unwrap();
    assert_eq!((got, u64::from(valid)), (addr, VALID), "renewed");
}

fn release(s: &Server, n: u32, addr: Ipv6Addr, now: u64) {
    let msg = build(MessageType::Release, 0x6000 + n, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[addr])
    });
    direct(s, &msg, now).message();
}

fn sweep(s: &Server, now: u64) -> usize {
    let mut out: Vec<LeaseRecord> = Vec::new();
    s.sweep(Timestamp(now), &mut out);
    out.len()
}

/// Addresses in use in the first pool (subnet[0]'s /65) and leases, at `now`.
fn in_use(s: &Server, now: u64) -> (u64, (u64, u64)) {
    let (pools, leases) = s.usage_at(Timestamp(now));
    (pools[0].used, leases)
}

/// The same, counted the slow way: every held binding still valid at `now`.
fn brute_force(s: &Server, now: u64) -> (u64, (u64, u64)) {
    let mut n = 0;
    s.for_each_binding(|r| n += u64::from(r.valid_until > now));
    (n, (n, 0))
}

#[test]
fn ended_bindings_are_not_in_use_before_the_sweep() {
    let s = server(BASE);
    for n in 0..3 {
        acquire(&s, n, T0);
    }
    assert_eq!(in_use(&s, T0 + 1), (3, (3, 0)));
    // At T0 + valid the lifetime has ended; no sweep has run (the scan path).
    assert_eq!(in_use(&s, T0 + VALID), (0, (0, 0)));
    assert_eq!(s.pool_usage()[0].used, 3, "still held until the sweep");
    assert_eq!(s.lease_counts(), (3, 0));
    assert_eq!(sweep(&s, T0 + VALID), 3);
    assert_eq!(s.pool_usage()[0].used, 0);
    assert_eq!(in_use(&s, T0 + VALID), (0, (0, 0)));
}

#[test]
fn inside_the_sweeps_window_renewals_and_releases_count() {
    let s = server(BASE);
    let addrs: Vec<_> = (0..4).map(|n| acquire(&s, n, T0)).collect();
    // A sweep 10 s before they end lists all four in its expiry window.
    assert_eq!(sweep(&s, T0 + VALID - 10), 0);
    renew(&s, 1, addrs[1], T0 + VALID - 5);
    release(&s, 2, addrs[2], T0 + VALID - 5);
    // Client 3 comes back after its lease ended and gets it again (a new binding).
    assert_eq!(in_use(&s, T0 + VALID - 1), (3, (3, 0)));
    assert_eq!(in_use(&s, T0 + VALID), (1, (1, 0)));
    assert_eq!(acquire(&s, 3, T0 + VALID + 2), addrs[3]);
    assert_eq!(in_use(&s, T0 + VALID + 2), (2, (2, 0)));
    assert_eq!(in_use(&s, T0 + VALID + 2), brute_force(&s, T0 + VALID + 2));
}

#[test]
fn a_quarantined_address_is_in_use_until_its_quarantine_ends() {
    // §18.3.8: a declined address is not assigned again before the quarantine ends.
    let s = server(BASE);
    let addr = acquire(&s, 1, T0);
    sweep(&s, T0 + 1);
    let msg = build(MessageType::Decline, 0x7001, |e| {
        e.client_id(&client_duid(1))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[addr])
    });
    direct(&s, &msg, T0 + 10).message();
    // Quarantine until T0 + 10 + valid; no binding, but the pool slot is taken.
    assert_eq!(in_use(&s, T0 + 11), (1, (0, 0)));
    assert_eq!(in_use(&s, T0 + 10 + VALID), (0, (0, 0)));
}

/// One step of the random schedule.
#[derive(Clone, Debug)]
enum Step {
    Acquire(u32),
    Renew(u32),
    Release(u32),
    Sweep,
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u32..12).prop_map(Step::Acquire),
        2 => (0u32..12).prop_map(Step::Renew),
        1 => (0u32..12).prop_map(Step::Release),
        1 => Just(Step::Sweep),
        3 => prop_oneof![0u64..40, 0u64..1500].prop_map(Step::Wait),
    ]
}

proptest! {
    // Failures persist next to this file (`usage_at_expiry.proptest-regressions`):
    // proptest's default, inside a `tests/NAME/main.rs` binary, is a
    // `proptest-regressions/` directory beside the binary's directory.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(64)
    })]

    /// Whatever the order of commits, renewals, releases, sweeps and time
    /// passing, the use at `now` equals the count of held bindings still
    /// valid at `now` (with and without a recent sweep's window).
    /// Lifetimes of 30 s (under the window) make renewals and new bindings
    /// land inside a sweep's window; 4000 s ones land outside it.
    #[test]
    fn usage_at_now_equals_the_bindings_valid_at_now(
        steps in proptest::collection::vec(step(), 1..60),
        short in any::<bool>(),
    ) {
        let config = if short {
            // The relayed subnet's own t1 (500) shrinks too: t1 <= t2 is checked.
            BASE.replace("preferred = 3000\nvalid = 4000\nt1 = 1000\nt2 = 2000", "preferred = 25\nvalid = 30\nt1 = 10\nt2 = 20")
                .replace("\nt1 = 500\n", "\nt1 = 5\n")
        } else {
            BASE.to_string()
        };
        prop_assert_eq!(short, config != BASE, "the short lifetimes are in the config");
        let s = server(&config);
        let mut now = T0;
        let mut held: std::collections::HashMap<u32, Ipv6Addr> = Default::default();
        for st in steps {
            match st {
                Step::Acquire(n) => {
                    held.insert(n, acquire(&s, n, now));
                }
                Step::Renew(n) => {
                    if let Some(&a) = held.get(&n) {
                        let msg = build(MessageType::Renew, 0x5000 + n, |e| {
                            e.client_id(&client_duid(n))?;
                            e.server_id(SERVER_DUID)?;
                            ia_na(e, 1, &[a])
                        });
                        direct(&s, &msg, now);
                    }
                }
                Step::Release(n) => {
                    if let Some(a) = held.remove(&n) {
                        release(&s, n, a, now);
                    }
                }
                Step::Sweep => {
                    sweep(&s, now);
                }
                Step::Wait(d) => now += d,
            }
            for t in [now, now + 30, now + 61] {
                prop_assert_eq!(in_use(&s, t), brute_force(&s, t), "at now + {}", t - now);
            }
        }
    }
}
