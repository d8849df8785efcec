//! `cargo xtask test`: the whole test suite, the README's test command.
//!
//! fmt, clippy, every unit/integration/namespace test of the workspace, and a
//! short run of every fuzz target. Namespace tests need root; without root this
//! fails instead of skipping them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{sh, workspace_root};

/// Seconds each fuzz target runs in the test suite (the long run is `cargo xtask fuzz`).
const FUZZ_SMOKE_SECS: u64 = 15;

#[derive(clap::Args)]
pub struct Args {
    /// Passed to `cargo test` after `--workspace --no-fail-fast` (a filter, `-- --nocapture` ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_test: Vec<String>,
}

pub fn run(a: &Args) -> Result<()> {
    let args = &a.cargo_test;
    if !crate::setup::is_root() {
        bail!("cargo xtask test needs root: the namespace tests create network namespaces and attach XDP programs");
    }
    let root = workspace_root();
    step("cargo fmt --check");
    sh(Command::new("cargo")
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    step("cargo clippy");
    sh(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("cargo test");
    let totals = cargo_test(&root, args)?;
    let fuzz_runs = if root.join("fuzz/Cargo.toml").exists() {
        step("fuzz smoke");
        crate::fuzz::run(FUZZ_SMOKE_SECS)?
    } else {
        0
    };
    println!();
    println!(
        "xtask test: {} fuzz targets ran clean for {FUZZ_SMOKE_SECS}s each",
        fuzz_runs
    );
    println!("{} passed, {} failed", totals.passed, totals.failed);
    for name in &totals.failures {
        println!("FAILED: {name}");
    }
    if totals.failed > 0 || totals.passed == 0 {
        bail!("tests failed");
    }
    Ok(())
}

fn step(name: &str) {
    println!("\n==> {name}");
}

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    /// The name of every failed test, repeated after the fuzz smoke so
    /// the end of a long CI log names them.
    failures: Vec<String>,
}

/// Runs `cargo test --workspace`, echoing its output and adding up the
/// `test result:` lines so the suite ends with one plain total.
fn cargo_test(root: &std::path::Path, extra: &[String]) -> Result<Totals> {
    let mut child = Command::new("cargo")
        .current_dir(root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let mut totals = Totals::default();
    let stdout = child.stdout.take().context("cargo test stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(name) = failed_test(&line) {
            totals.failures.push(name.to_string());
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            totals.passed += count(rest, " passed");
            totals.failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && totals.failed == 0 {
        // A build failure or a crashed test binary: count it as a failure.
        totals.failed += 1;
    }
    Ok(totals)
}

/// The test's name from a `test NAME ... FAILED` line.
fn failed_test(line: &str) -> Option<&str> {
    line.strip_prefix("test ")?.strip_suffix(" ... FAILED")
}

/// The number before `label` in a `test result:` line.
fn count(line: &str, label: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            let part = part.trim();
            let n = part.strip_suffix(label.trim_start())?;
            n.trim().rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{count, failed_test};

    #[test]
    fn names_a_failed_test() {
        assert_eq!(
            failed_test("test store::damage::repair ... FAILED"),
            Some("store::damage::repair")
        );
        assert_eq!(failed_test("test store::damage::repair ... ok"), None);
    }

    #[test]
    fn counts_a_cargo_test_result_line() {
        let line =
            "ok. 12 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(count(line, " passed"), 12);
        assert_eq!(count(line, " failed"), 3);
        assert_eq!(count("FAILED. 0 passed; 1 failed", " failed"), 1);
    }
}
