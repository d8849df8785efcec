//! `cargo xtask`: set-up, tests, demo, lab, load generator and benchmarks.
//!
//! Every command runs `setup` first, so a fresh machine needs nothing but
//! the Rust toolchain and root.

mod bench;
mod demo;
mod setup;
mod test;

use std::process::Command;

use anyhow::{bail, Context, Result};

fn usage() -> &'static str {
    "usage: cargo xtask <command> [args]

commands:
  setup                 install what is missing (Debian packages, bpf-linker, toolchain link, cargo-fuzz)
  test                  every test: fmt, clippy, unit, integration and namespace tests, fuzz smoke
  demo                  the lab demo: two dhcp6d servers (split-prefix), clients, failover
  lab up|down [--servers N] [--model M] [--relay]
                        network namespaces: clients, optional relay, N servers on one link
  loadgen [--help]      simulated DHCPv6 clients (sarr, avalanche, renew, rebind, release, solicit-only)
  crash [KILLS]         kill -9 dhcp6d serve KILLS times (default 20) under load; no acknowledged lease may be lost
  fuzz [SECS]           run every fuzz target for SECS seconds each (default 300)
  bench [echo|codec|core|store|stats|kea|all]
                        benchmarks, printed as ratios measured in one run"
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        println!("{}", usage());
        return Ok(());
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "setup" => setup::run(),
        "test" => {
            setup::run()?;
            test::run(rest)
        }
        "crash" => {
            setup::run()?;
            let kills = rest.first().map(String::as_str).unwrap_or("20");
            sh(Command::new("cargo")
                .current_dir(workspace_root())
                .env("DHCP6D_CRASH_KILLS", kills)
                .args([
                    "test",
                    "-p",
                    "dhcp6d-tests",
                    "--test",
                    "load",
                    "--",
                    "store_crash::",
                    "--nocapture",
                ]))
        }
        "fuzz" => {
            setup::run()?;
            test::fuzz(rest.first().map(|s| s.parse()).transpose()?.unwrap_or(300)).map(drop)
        }
        "demo" => {
            setup::run()?;
            demo::run(rest)
        }
        "lab" => {
            setup::run()?;
            xtask::lab::run(rest)
        }
        "loadgen" => {
            setup::run()?;
            xtask::loadgen::run(rest)
        }
        "bench" => {
            setup::run()?;
            bench::run(rest)
        }
        "-h" | "--help" | "help" => {
            println!("{}", usage());
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{}", usage()),
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
