//! `cargo xtask bench flood`: what `limits.messages_per_second_per_source`
//! buys under a flood (issue 13 item 1), one run.
//!
//! Good clients (SARR through one simulated relay hop, each with its own
//! peer-address) at a fixed rate, first alone, then with 20 % of the offered
//! messages coming from one source: Rebinds naming a foreign address and
//! Rapid Commit Solicits, each with a new DUID, so each can create a binding.
//! Once with the limit and once without, each on a fresh server, then ISC Kea
//! 2.2 under the identical offered load (started as `bench kea` starts it:
//! same pools and lifetimes, memfile persist; Rapid Commit on in its subnets
//! so the flood's Rapid Commit Solicits commit, as they do in dhcp6d; no rate
//! limit, Kea 2.2 has none built in). Reported: the good clients' served rate
//! under the flood as a ratio of the clean run's, the bindings the flood made,
//! and the server's resident memory after the flood as a ratio of before it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use dhcp6d_loadgen::lab::{Lab, LabOptions, ServerKind};
use dhcp6d_loadgen::{run_with, Ia, Mode, Options, Summary};

/// Where a server's binding count comes from.
enum Bindings {
    /// `dhcp6d stats --json`: `leases.addresses`.
    Dhcp6d { bin: String, socket: PathBuf },
    /// Kea's memfile lease file (persist on, written per lease change).
    Kea { csv: PathBuf },
}

impl Bindings {
    fn count(&self) -> Result<u64> {
        match self {
            Bindings::Dhcp6d { bin, socket } => stat(bin, socket, &["leases", "addresses"]),
            Bindings::Kea { csv } => kea_bindings(csv),
        }
    }
}

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
    /// Kea's packet threads (0: multi-threading off).
    #[arg(long, default_value_t = 2)]
    kea_threads: u32,
    /// Leave Kea out (dhcp6d with and without the limit only).
    #[arg(long)]
    no_kea: bool,
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
    /// `dropped.rate_limited` (None: the server has no such limit).
    rate_limited: Option<u64>,
}

pub fn run(a: &Args) -> Result<()> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    std::fs::create_dir_all(&out)?;
    super::kea::build_dhcp6d()?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
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
        let r = measure(
            &mut lab,
            a,
            &out,
            &name,
            ServerKind::Dhcp6d { io: "socket" },
        );
        lab.stop_server(1);
        all.push(r?);
    }
    // Kea's config is derived from the (unlimited) dhcp6d config just used:
    // same pools and lifetimes.
    std::fs::write(&config, &base)?;
    if !a.no_kea {
        lab.kea_rapid_commit = true;
        let name = format!(
            "Kea 2.2 ({} threads, memfile persist, Rapid Commit on, no rate limit)",
            a.kea_threads
        );
        let kind = ServerKind::Kea {
            threads: a.kea_threads,
        };
        let r = measure(&mut lab, a, &out, &name, kind);
        lab.stop_server(1);
        all.push(r?);
    }
    lab.down()?;
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut md = report(a, &all);
    md.push_str(&format!(
        "Load average before: {}, after: {} (2 cores shared with everything else running).\n",
        load_before.trim(),
        load_after.trim()
    ));
    std::fs::write(out.join("flood.md"), &md)?;
    println!("{md}");
    Ok(())
}

fn measure(
    lab: &mut Lab,
    a: &Args,
    out: &std::path::Path,
    name: &str,
    kind: ServerKind,
) -> Result<Figures> {
    println!("bench flood: {name}");
    let pid = lab.start_server(1, kind)?;
    let bindings = match kind {
        ServerKind::Dhcp6d { .. } => Bindings::Dhcp6d {
            bin: lab.dhcp6d_bin()?,
            socket: lab.control_socket(1),
        },
        ServerKind::Kea { .. } => Bindings::Kea {
            csv: lab.server_dir(1).join("kea-leases6.csv"),
        },
    };
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
    let leases1 = bindings.count()?;
    let flooded = run_with(&options(a.flood))?;
    println!("  flooded: {}", flooded.line());
    let rss2 = rss_kib(pid)?;
    let leases2 = bindings.count()?;
    let rate_limited = match &bindings {
        Bindings::Dhcp6d { bin, socket } => Some(stat(bin, socket, &["dropped", "rate_limited"])?),
        Bindings::Kea { .. } => None,
    };
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

/// Address bindings Kea holds, from its memfile lease file: the distinct
/// IA_NA addresses whose last record has a non-zero valid lifetime and the
/// default state (0; 1 is declined, 2 expired-reclaimed). Kea appends a record
/// per change, so the last one of an address is its current lease.
fn kea_bindings(csv: &std::path::Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty Kea lease file")?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("Kea lease file has no {name} column"))
    };
    let (addr, valid, kind, state) = (
        col("address")?,
        col("valid_lifetime")?,
        col("lease_type")?,
        col("state")?,
    );
    let mut current = std::collections::HashMap::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or("");
        if field(kind) != "0" {
            continue;
        }
        let live = field(valid).parse::<u64>().unwrap_or(0) > 0 && field(state) == "0";
        current.insert(field(addr).to_string(), live);
    }
    Ok(current.values().filter(|&&live| live).count() as u64)
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
         (new-DUID Rebinds and Rapid Commit Solicits); dhcp6d --io socket, and Kea 2.2 \
         under the identical offered load (no rate limit: Kea 2.2 has none built in)\n\n\
         | server | good leases/s clean | good leases/s flooded | ratio | flood sent | flood answered | rate_limited | bindings made by the flood | RSS at start (KiB) | RSS before flood (KiB) | RSS after flood (KiB) | ratio |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        a.rate,
        a.secs,
        a.flood * 100.0
    );
    for f in all {
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {:.3} |\n",
            f.name,
            f.clean.leases_per_s,
            f.flooded.leases_per_s,
            served(f),
            f.flooded.stage.flood_sent,
            f.flooded.stage.flood_answered,
            f.rate_limited
                .map_or_else(|| "none built in".to_string(), |n| n.to_string()),
            flood_made(f),
            f.rss_kib[0],
            f.rss_kib[1],
            f.rss_kib[2],
            f.rss_kib[2] as f64 / f.rss_kib[1].max(1) as f64,
        ));
    }
    md.push_str(
        "\nEach server fresh (empty lease database), the clean step then the flooded step. \
         The RSS after the flood includes the good clients' bindings of the flooded step. \
         Bindings made by the flood: bindings held after the flooded step, less those before \
         it and the good clients' leases of that step (dhcp6d: `leases.addresses` of \
         `dhcp6d stats`; Kea: live IA_NA leases in its memfile lease file). \
         The flood is a share of the messages the generator sends, interleaved with the good \
         clients': a server that leaves Solicits unanswered is sent fewer Requests, so fewer \
         flood messages (its flood sent is smaller).\n",
    );
    let grown = |f: &Figures| f.rss_kib[2].saturating_sub(f.rss_kib[1]) as f64;
    let ratio = |x: f64, y: f64| {
        if y > 0.0 {
            format!("{:.3}", x / y)
        } else {
            "n/a".to_string()
        }
    };
    if let [limited, open, ..] = all {
        md.push_str(&format!(
            "Limited / no limit, same run: bindings made by the flood {}, RSS growth over \
             the flooded step {}.\n",
            ratio(flood_made(limited) as f64, flood_made(open) as f64),
            ratio(grown(limited), grown(open)),
        ));
    }
    if let Some(kea) = all.iter().find(|f| f.rate_limited.is_none()) {
        for d in all.iter().filter(|f| f.rate_limited.is_some()) {
            md.push_str(&format!(
                "{} / Kea, same run: good clients' flooded/clean {:.3} vs {:.3}, bindings made \
                 by the flood {} vs {} ({}), RSS growth over the flooded step {} vs {} KiB ({}).\n",
                d.name,
                served(d),
                served(kea),
                flood_made(d),
                flood_made(kea),
                ratio(flood_made(d) as f64, flood_made(kea) as f64),
                grown(d),
                grown(kea),
                ratio(grown(d), grown(kea)),
            ));
        }
    }
    md
}

/// Good clients' served rate under the flood as a ratio of the clean step's.
fn served(f: &Figures) -> f64 {
    f.flooded.leases_per_s / f.clean.leases_per_s.max(1.0)
}
