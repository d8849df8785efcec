//! `cargo xtask bench failover [--runs N] [--io socket|xdp]`: seconds from
//! SIGKILL of the preferred server to ISC dhclient holding an address of the
//! survivor, for a dhcp6d split-prefix pair and a Kea pair configured alike
//! (hand-written, no Rapid Commit, T1 4 s, T2 6 s, preferred 9 s, valid 12 s:
//! issue 13's lab), in the same namespace lab. Runs alternate Kea and dhcp6d
//! so a busy moment of the machine hits both; the report is the median of N
//! runs per pair, their ratio, and how each run's client moved (the hook's
//! reason: REBIND6 on its Rebind, BOUND6 after a fresh Solicit).
//!
//! The scenario is `dhcp6d_tests::failover`, the one the RFC 6853 test
//! `failover_hand_written_pair_moves_the_client_on_its_rebind` checks.

use anyhow::{bail, Result};
use dhcp6d_tests::failover::{self, Outcome, Pair, ISSUE_LIFETIMES};

#[derive(Clone, clap::Args)]
pub struct Args {
    /// Runs per pair (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// dhcp6d's data path.
    #[arg(long, default_value = "socket", value_parser = ["socket", "xdp"])]
    io: String,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            runs: 3,
            io: "socket".into(),
        }
    }
}

/// One run's figures.
struct Run {
    seconds: f64,
    reason: String,
    before: Vec<String>,
    rebind_replies: usize,
}

impl Run {
    fn of(o: &Outcome) -> Run {
        Run {
            seconds: o.recovery_s(),
            reason: o.recovered.reason().to_owned(),
            before: o.between.iter().map(|e| e.reason().to_owned()).collect(),
            rebind_replies: o.rebind_replies().len(),
        }
    }
}

pub fn run(a: &Args) -> Result<()> {
    if a.runs == 0 || a.runs > 50 {
        bail!("--runs must be 1..=50");
    }
    let l = ISSUE_LIFETIMES;
    println!(
        "bench failover: {} runs per pair, T1 {} s, T2 {} s, preferred {} s, valid {} s, dhcp6d --io {}",
        a.runs, l.t1, l.t2, l.preferred, l.valid, a.io
    );
    let pairs = [
        ("Kea 2.2 pair", Pair::Kea),
        (
            "dhcp6d pair",
            Pair::Dhcp6d {
                io: a.io.clone(),
                rebind_creates_bindings: true,
            },
        ),
    ];
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for i in 0..a.runs {
        for (k, (name, pair)) in pairs.iter().enumerate() {
            let o = failover::run(pair, l, "bench-fo")?;
            let r = Run::of(&o);
            println!(
                "  run {}: {name}: {:.2} s, by {} (before it: {}), {} Rebind Replies on the wire",
                i + 1,
                r.seconds,
                r.reason,
                r.before.join(", "),
                r.rebind_replies
            );
            runs[k].push(r);
        }
    }
    let med: Vec<f64> = runs.iter().map(|r| median(r)).collect();
    println!();
    for ((name, _), (m, r)) in pairs.iter().zip(med.iter().zip(&runs)) {
        let by_rebind = r.iter().filter(|x| x.reason == "REBIND6").count();
        println!(
            "{name}: median {m:.2} s over {} runs ({by_rebind} moved on their Rebind)",
            r.len()
        );
    }
    println!(
        "dhcp6d / Kea: {:.2}x the time (median over median)",
        med[1] / med[0]
    );
    Ok(())
}

fn median(runs: &[Run]) -> f64 {
    let mut s: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
