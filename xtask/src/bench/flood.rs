//! `cargo xtask bench flood`: what `limits.messages_per_second_per_source`
//! buys under a flood (issue 13 item 1), one run.
//!
//! Good clients (SARR through one simulated relay hop, each with its own
//! peer-address) at a fixed rate, first alone, then with 20 % of the offered
//! messages coming from one source: Rebinds naming a foreign address and
//! Rapid Commit Solicits, each with a new DUID, so each can create a binding.
//! Once with the limit and once without, each on a fresh server. Reported:
//! the good clients' served rate under the flood as a ratio of the clean
//! run's, the bindings the flood made, and the server's resident memory
//! after the flood as a ratio of before it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use dhcp6d_loadgen::lab::{Lab, LabOptions, ServerKind};
use dhcp6d_loadgen::{run_with, Ia, Mode, Options, Summary};

#[derive(Clone, clap::Args)]
pub struct Args {
    /// Good clients started per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of each step.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// `limits.messages_per_second_per_source` of the limited server.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Share of the offered messages that is the flood.
    #[arg(long, default_value_t = 0.2)]
    flood: f64,
    /// Where the report goes [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One server configuration's figures.
struct Figures {
    name: String,
    clean: Summary,
    flooded: Summary,
    rss_kib: [u64; 3],
    leases: [u64; 2],
    rate_limited: u64,
}

pub fn run(a: &Args) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    std::fs::create_dir_all(&out)?;
    super::kea::build_dhcp6d()?;
    let mut lab = Lab::up(LabOptions {
        name: "d6flood".into(),
        ..LabOptions::default()
    })?;
    let config = lab.dhcp6d_config(1);
    let base = std::fs::read_to_string(&config).context("the lab's dhcp6d config")?;
    // Rapid Commit on, so that a Rapid Commit Solicit commits (the flood's
    // second kind); Rebinds create bindings by default.
    let base = base.replacen("[server]\n", "[server]\nrapid_commit = true\n", 1);
    let mut all = Vec::new();
    for (name, limits) in [
        (
            format!("limit {}/s per source", a.limit),
            format!("\n[limits]\nmessages_per_second_per_source = {}\n", a.limit),
        ),
        ("no limit".to_string(), String::new()),
    ] {
        std::fs::write(&config, format!("{base}{limits}"))?;
        let r = measure(&mut lab, a, &out, &name);
        lab.stop_server(1);
        all.push(r?);
    }
    lab.down()?;
    let md = report(a, &all);
    std::fs::write(out.join("flood.md"), &md)?;
    println!("{md}");
    Ok(())
}

fn measure(lab: &mut Lab, a: &Args, out: &std::path::Path, name: &str) -> Result<Figures> {
    println!("bench flood: {name}");
    let pid = lab.start_server(1, ServerKind::Dhcp6d { io: "socket" })?;
    let socket = lab.control_socket(1);
    let bin = lab.dhcp6d_bin()?;
    let options = |flood: f64| Options {
        mode: Mode::Sarr,
        clients: (a.rate * a.secs) as u32,
        rate: a.rate,
        max_secs: a.secs + 3.0,
        ia: Ia::Na,
        relay: 1,
        flood,
        lab: Some(lab.opts.name.clone()),
        out: out.join("runs"),
        quiet: true,
        ..Options::default()
    };
    let rss0 = rss_kib(pid)?;
    let clean = run_with(&options(0.0))?;
    println!("  clean:   {}", clean.line());
    let rss1 = rss_kib(pid)?;
    let leases1 = stat(&bin, &socket, &["leases", "addresses"])?;
    let flooded = run_with(&options(a.flood))?;
    println!("  flooded: {}", flooded.line());
    let rss2 = rss_kib(pid)?;
    let leases2 = stat(&bin, &socket, &["leases", "addresses"])?;
    let rate_limited = stat(&bin, &socket, &["dropped", "rate_limited"])?;
    Ok(Figures {
        name: name.to_string(),
        clean,
        flooded,
        rss_kib: [rss0, rss1, rss2],
        leases: [leases1, leases2],
        rate_limited,
    })
}

/// Resident memory of the server process, KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// One counter of `dhcp6d stats --json`, by its path.
fn stat(bin: &str, socket: &std::path::Path, path: &[&str]) -> Result<u64> {
    let o = Command::new(bin)
        .args(["stats", "--json", "--control"])
        .arg(socket)
        .output()
        .context("dhcp6d stats")?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("stats JSON")?;
    path.iter()
        .fold(&v, |v, k| &v[k])
        .as_u64()
        .with_context(|| format!("stats has no {}", path.join(".")))
}

/// Bindings the flood made: held after the flooded step, less those before
/// it and the good clients' leases of that step.
fn flood_made(f: &Figures) -> u64 {
    let good = f.flooded.stage.total.leases;
    f.leases[1].saturating_sub(f.leases[0]).saturating_sub(good)
}

fn report(a: &Args, all: &[Figures]) -> String {
    let mut md = format!(
        "# Flood: {} good clients/s (SARR, one relay hop, a peer-address each) for {} s, \
         then the same with {:.0} % of the offered messages from one peer-address \
         (new-DUID Rebinds and Rapid Commit Solicits), dhcp6d --io socket\n\n\
         | server | good leases/s clean | good leases/s flooded | ratio | flood sent | flood answered | rate_limited | bindings made by the flood | RSS before flood (KiB) | RSS after flood (KiB) | ratio |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        a.rate,
        a.secs,
        a.flood * 100.0
    );
    for f in all {
        let made = flood_made(f);
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {} | {:.3} |\n",
            f.name,
            f.clean.leases_per_s,
            f.flooded.leases_per_s,
            f.flooded.leases_per_s / f.clean.leases_per_s.max(1.0),
            f.flooded.stage.flood_sent,
            f.flooded.stage.flood_answered,
            f.rate_limited,
            made,
            f.rss_kib[1],
            f.rss_kib[2],
            f.rss_kib[2] as f64 / f.rss_kib[1].max(1) as f64,
        ));
    }
    md.push_str(&format!(
        "\nRSS at start: {} KiB (limited), {} KiB (no limit). The RSS after the flood \
         includes the good clients' bindings of the flooded step. Bindings made by the flood: \
         bindings held after the flooded step, less those before it and the good clients' leases.\n",
        all.first().map_or(0, |f| f.rss_kib[0]),
        all.get(1).map_or(0, |f| f.rss_kib[0]),
    ));
    if let [limited, open] = all {
        let grown = |f: &Figures| f.rss_kib[2].saturating_sub(f.rss_kib[1]) as f64;
        md.push_str(&format!(
            "Limited / no limit, same run: bindings made by the flood {:.3}, RSS growth over \
             the flooded step {:.3}.\n",
            flood_made(limited) as f64 / flood_made(open).max(1) as f64,
            grown(limited) / grown(open).max(1.0),
        ));
    }
    md
}
