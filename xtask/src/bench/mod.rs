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
        "codec" => {
            criterion("codec", rest)?;
            let n = 10_000;
            let per = callgrind("codec_advertise", "run_codec", n)?;
            println!("codec: {per} instructions per Solicit decode + Advertise encode, callgrind over {n}");
            Ok(())
        }
        "core" => core(rest),
        "store" => criterion("store", rest),
        "stats" => sh(Command::new("cargo").current_dir(workspace_root()).args([
            "test",
            "--release",
            "-p",
            "dhcp-user",
            "--test",
            "cli",
            "--",
            "stats_load::",
            "--nocapture",
        ])),
        "kea" => xtask::bench_kea::run(rest),
        "all" => {
            // `kea` runs `echo` too (its report carries the ceiling of the same session).
            for step in ["codec", "core", "store", "stats", "kea"] {
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
    let n = 10_000;
    let per = callgrind("core_sarr", "run_sarrs", n)?;
    println!(
        "core: {per} instructions per full SARR (Solicit, Advertise, Request, Reply) over {n} clients, callgrind"
    );
    Ok(())
}

/// Instructions per iteration of `function` in dhcp-user's example `example`
/// (which takes the iteration count as its argument), counted by callgrind:
/// a count, not a time, so it does not depend on the machine's load.
fn callgrind(example: &str, function: &str, n: u64) -> Result<u64> {
    let root = workspace_root();
    sh(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "dhcp-user",
        "--example",
        example,
    ]))?;
    let out_file = std::env::temp_dir().join(format!("dhcp6d-{example}.callgrind"));
    let out = Command::new("valgrind")
        .current_dir(&root)
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect=*{function}*"))
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(format!("target/release/examples/{example}"))
        .arg(n.to_string())
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
        .and_then(|c| c.trim().replace(',', "").parse::<u64>().ok())
        .context("callgrind printed no `Collected :` line")?;
    Ok(collected / n)
}
