//! `cargo xtask bench echo`: the raw AF_XDP echo ceiling vs the dhcp6d data
//! path (trivial handler) vs socket mode, on one veth pair, in one run, with
//! the CPU each side used (so a generator-bound run says so).
//!
//! The measurement lives in `tests/examples/bench_echo/` because it needs
//! the dhcp6d library (and so the eBPF build); xtask must not depend on it,
//! or `cargo xtask setup` could not build on a fresh machine. This runs that
//! example in release mode.

use std::process::Command;

use anyhow::{bail, Context};

/// Runs the measurement, printing its report as it comes and returning it
/// (`bench kea` puts it in its own report: the ceiling of the same session).
pub fn measure(secs: u64) -> anyhow::Result<String> {
    if secs == 0 || secs > 60 {
        bail!("seconds per mode must be 1..=60");
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "dhcp6d-tests",
            "--example",
            "bench_echo",
            "--",
        ])
        .arg(secs.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the bench_echo example")?;
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{report}");
    if !out.status.success() {
        bail!("bench echo failed ({})", out.status);
    }
    Ok(report)
}
