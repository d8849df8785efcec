//! `cargo xtask`: set-up, tests, demo, lab, load generator and benchmarks.
//!
//! One clap [`Subcommand`] per task, one module per task. Only the commands
//! that build dhcp6d or start real peers run `setup` first (so a fresh machine
//! needs nothing but the Rust toolchain and root); `loadgen` and `lab down`
//! work on what an earlier `lab up` made. The load generator and the lab are
//! a library of their own (`xtask/loadgen`, crate `dhcp6d-loadgen`) that the
//! tests use too; xtask depends on it and on the namespace harness
//! (`dhcp6d-tests`), and nothing depends on xtask.

mod bench;
mod crash;
mod demo;
mod fuzz;
mod lab;
mod loadgen;
mod setup;
mod test;

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "dhcp6d's tasks: set-up, tests, demo, lab, load generator, benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing (Debian packages, bpf-linker, toolchain link, cargo-fuzz).
    Setup,
    /// Every test: fmt, clippy, unit, integration and namespace tests, fuzz smoke.
    Test(test::Args),
    /// The lab demo: two dhcp6d servers (split prefixes), real clients, failover.
    Demo(demo::Args),
    /// Network namespaces: clients, optional relay, N servers on one link.
    Lab(lab::Args),
    /// Simulated DHCPv6 clients (sarr, avalanche, renew, rebind, release, solicit-only).
    Loadgen(dhcp6d_loadgen::Options),
    /// kill -9 `dhcp6d serve` KILLS times under load; no acknowledged lease may be lost.
    Crash(crash::Args),
    /// Run every fuzz target for SECS seconds each.
    Fuzz(fuzz::Args),
    /// Benchmarks, printed as ratios or counts measured in one run.
    Bench(bench::Args),
}

impl Task {
    /// Whether the task builds dhcp6d (the eBPF toolchain) or starts real
    /// peers (Debian packages), so `setup` must run first.
    fn needs_setup(&self) -> bool {
        match self {
            Task::Setup | Task::Loadgen(_) => false,
            Task::Lab(a) => a.needs_setup(),
            Task::Test(_) | Task::Demo(_) | Task::Crash(_) | Task::Fuzz(_) | Task::Bench(_) => true,
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.task.needs_setup() {
        setup::run()?;
    }
    match cli.task {
        Task::Setup => setup::run(),
        Task::Test(a) => test::run(&a),
        Task::Demo(a) => demo::run(&a),
        Task::Lab(a) => lab::run(a),
        Task::Loadgen(o) => loadgen::run(&o),
        Task::Crash(a) => crash::run(&a),
        Task::Fuzz(a) => fuzz::run(a.secs).map(drop),
        Task::Bench(a) => bench::run(a),
    }
}

/// Root of the workspace (xtask lives one level below it).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Run a command, inheriting stdio; fail with its exit status.
pub fn sh(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn only_tasks_that_build_or_start_peers_run_setup() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
                .task
        };
        assert!(parse(&["test"]).needs_setup());
        assert!(parse(&["demo", "--io", "xdp"]).needs_setup());
        assert!(parse(&["bench", "store", "--bindings", "1000"]).needs_setup());
        assert!(parse(&["lab", "up", "--servers", "2"]).needs_setup());
        assert!(!parse(&["lab", "down"]).needs_setup());
        assert!(!parse(&["loadgen", "--lab", "d6lab", "--clients", "10"]).needs_setup());
        assert!(!parse(&["setup"]).needs_setup());
    }

    #[test]
    fn positional_counts_keep_their_defaults() {
        let Task::Crash(c) = Cli::try_parse_from(["xtask", "crash"]).unwrap().task else {
            panic!("crash parses as crash");
        };
        assert_eq!(c.kills, 20);
        let Task::Fuzz(f) = Cli::try_parse_from(["xtask", "fuzz", "60"]).unwrap().task else {
            panic!("fuzz parses as fuzz");
        };
        assert_eq!(f.secs, 60);
        assert!(Cli::try_parse_from(["xtask", "fuzz", "sixty"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "nonsense"]).is_err());
    }
}
