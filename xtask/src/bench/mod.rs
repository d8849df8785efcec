//! `cargo xtask bench [WHAT]`: every benchmark, each printing ratios or counts
//! measured in one run (never timed assertions in tests).

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{sh, workspace_root};

pub mod echo;
pub mod failover;
pub mod flood;
pub mod kea;

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark (all of them when left out).
    #[command(subcommand)]
    what: Option<Bench>,
}

#[derive(Clone, clap::Subcommand)]
enum Bench {
    /// Raw AF_XDP echo ceiling vs the dhcp6d data path vs socket mode.
    Echo {
        /// Seconds per mode (three interleaved rounds of three modes).
        #[arg(default_value_t = 2)]
        secs: u64,
    },
    /// Wire codec: criterion, then instructions per Solicit decode + Advertise encode.
    Codec(Passed),
    /// Protocol core: criterion, then instructions per SARR.
    Core(Passed),
    /// Journal: group commit vs one fsync per lease, recovery.
    Store(Passed),
    /// Stats and control socket under load.
    Stats,
    /// dhcp6d against ISC Kea 2.2 in one lab (runs echo too).
    Kea(kea::Args),
    /// Failover: kill the preferred server, seconds until dhclient holds the
    /// survivor's address; dhcp6d pair vs Kea pair, median of N runs.
    Failover(failover::Args),
    /// Good clients' served rate and memory under a one-source flood, with
    /// and without limits.messages_per_second_per_source.
    Flood(flood::Args),
    /// codec, core, store, stats, kea and failover, in that order.
    All,
}

/// Arguments handed to the bench binary after `--`.
#[derive(Clone, clap::Args)]
struct Passed {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(a: Args) -> Result<()> {
    bench(a.what.unwrap_or(Bench::All))
}

fn bench(what: Bench) -> Result<()> {
    match what {
        Bench::Echo { secs } => echo::measure(secs).map(drop),
        Bench::Codec(p) => {
            criterion("codec", &p.args)?;
            let n = 10_000;
            let per = callgrind("codec_advertise", "run_codec", n)?;
            println!("codec: {per} instructions per Solicit decode + Advertise encode, callgrind over {n}");
            Ok(())
        }
        Bench::Core(p) => core(&p.args),
        Bench::Store(p) => criterion("store", &p.args),
        Bench::Stats => sh(Command::new("cargo").current_dir(workspace_root()).args([
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
        Bench::Kea(k) => kea::run(&k),
        Bench::Failover(f) => failover::run(&f),
        Bench::Flood(f) => flood::run(&f),
        Bench::All => {
            // `kea` runs `echo` too (its report carries the ceiling of the same session).
            let none = || Passed { args: Vec::new() };
            for (name, step) in [
                ("codec", Bench::Codec(none())),
                ("core", Bench::Core(none())),
                ("store", Bench::Store(none())),
                ("stats", Bench::Stats),
                ("kea", Bench::Kea(kea::Args::default())),
                ("failover", Bench::Failover(failover::Args::default())),
            ] {
                println!("\n### bench {name}");
                bench(step)?;
            }
            Ok(())
        }
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
