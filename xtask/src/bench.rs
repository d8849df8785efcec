//! `cargo xtask bench [WHAT]`: every benchmark, each printing ratios or counts
//! measured in one run (never timed assertions in tests).

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{sh, workspace_root};

const WHAT: &str = "echo, codec, core, store, stats, kea, all";

pub fn run(args: &[String]) -> Result<()> {
    let what = args.first().map(String::as_str).unwrap_or("all");
    let rest = args.get(1..).unwrap_or(&[]);
    match what {
        "echo" => xtask::bench_echo::run(rest),
        "codec" => criterion("codec", rest),
        "core" => core(rest),
        "store" => criterion("store", rest),
        "stats" => sh(Command::new("cargo").current_dir(workspace_root()).args([
            "test",
            "--release",
            "-p",
            "dhcp-user",
            "--test",
            "cli_stats_load",
            "--",
            "--nocapture",
        ])),
        "kea" => xtask::bench_kea::run(rest),
        "all" => {
            for step in ["echo", "codec", "core", "store", "stats", "kea"] {
                println!("\n### bench {step}");
                run(&[step.to_string()])?;
            }
            Ok(())
        }
        other => bail!("unknown benchmark {other:?}; one of: {WHAT}"),
    }
}

/// A `harness = false` bench of dhcp-user (criterion, or a plain figures run).
fn criterion(name: &str, rest: &[String]) -> Result<()> {
    sh(Command::new("cargo")
        .current_dir(workspace_root())
        .args(["bench", "-p", "dhcp-user", "--bench", name, "--"])
        .args(rest))
}

/// Core: criterion ns/op, then instructions per SARR counted by callgrind.
fn core(rest: &[String]) -> Result<()> {
    criterion("core", rest)?;
    let root = workspace_root();
    sh(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "dhcp-user",
        "--example",
        "core_sarr",
    ]))?;
    let sarrs: u64 = 10_000;
    let out_file = std::env::temp_dir().join("dhcp6d-core.callgrind");
    let out = Command::new("valgrind")
        .current_dir(&root)
        .args([
            "--tool=callgrind",
            "--toggle-collect=*run_sarrs*",
            &format!("--callgrind-out-file={}", out_file.display()),
            "target/release/examples/core_sarr",
            &sarrs.to_string(),
        ])
        .output()
        .context("running valgrind (installed by cargo xtask setup)")?;
    if !out.status.success() {
        bail!("callgrind failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let log = String::from_utf8_lossy(&out.stderr);
    let collected = log
        .lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|n| n.trim().replace(',', "").parse::<u64>().ok())
        .context("callgrind printed no `Collected :` line")?;
    println!(
        "core: {} instructions per full SARR (Solicit, Advertise, Request, Reply) over {sarrs} clients, callgrind",
        collected / sarrs
    );
    Ok(())
}
