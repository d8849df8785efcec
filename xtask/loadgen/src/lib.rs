//! `cargo xtask loadgen`: simulated DHCPv6 clients with distinct DUIDs, driven at a
//! target rate or all at once, directly or through 1..=8 simulated relays, checking
//! every binding the server hands out. See `--help` for the modes.

pub mod check;
pub mod engine;
pub mod frame;
pub mod io;
pub mod mirror;
pub mod packet;
mod packet_setup;
pub mod stats;
pub mod wire;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::lab::{self, LinkPools};
use engine::{Engine, Params, Stage, StageResult};
use io::{Dest, Io, IoKind, NetnsGuard};
use wire::IaKinds;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Solicit-Advertise-Request-Reply, clients started at --rate per second.
    Sarr,
    /// All --clients start at once, each delaying its first Solicit by a random
    /// time up to --sol-max-delay-ms (RFC 9915 §18.2.1), and retransmit (§15)
    /// until bound.
    Avalanche,
    /// Bind everyone, then measure Renew at --rate.
    Renew,
    /// Bind everyone, then measure Rebind at --rate.
    Rebind,
    /// Bind everyone, then measure Release at --rate.
    Release,
    /// Solicit-Advertise only, at --rate.
    SolicitOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Ia {
    Na,
    Pd,
    Both,
}

/// Options of `cargo xtask loadgen`.
#[derive(Clone, Debug, Parser)]
#[command(name = "loadgen", about = "DHCPv6 load generator with binding checks")]
pub struct Options {
    #[arg(long, value_enum, default_value = "sarr")]
    pub mode: Mode,
    /// Number of simulated clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: u32,
    /// Clients started per second (0: all at once).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// A stage ends at the latest after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub max_secs: f64,
    #[arg(long, value_enum, default_value = "na")]
    pub ia: Ia,
    /// Wrap every message in HOPS nested Relay-forw (1..=8) and send it to each server.
    #[arg(long, default_value_t = 0)]
    pub relay: u8,
    /// Innermost relay's link-address (selects the server's subnet).
    #[arg(long, default_value = "2001:db8:1:2::1")]
    pub relay_link: Ipv6Addr,
    /// Attach to lab NAME: run in its client namespace, send to its servers, check its pools.
    #[arg(long)]
    pub lab: Option<String>,
    /// Run inside this network namespace (without --lab).
    #[arg(long)]
    pub netns: Option<String>,
    #[arg(long, default_value = "eth0")]
    pub interface: String,
    /// Server unicast addresses (relay mode without --lab).
    #[arg(long = "server")]
    pub servers: Vec<Ipv6Addr>,
    /// Retransmit per RFC 9915 §15 (default for avalanche and the renew/rebind/release set-up).
    #[arg(long)]
    pub retransmit: bool,
    /// Without retransmission, an exchange unanswered after this long is a drop.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    #[arg(long)]
    pub rapid_commit: bool,
    /// Share of extra bad messages (malformed, truncated, foreign Server ID), 0..1.
    #[arg(long, default_value_t = 0.0)]
    pub bad: f64,
    /// Address pools to check bindings against: CIDR or FIRST-LAST (default: the lab's).
    #[arg(long = "pool")]
    pub pools: Vec<String>,
    /// PD pools to check against: PREFIX/LEN:DELEGATED_LEN.
    #[arg(long = "pd-pool")]
    pub pd_pools: Vec<String>,
    /// Avalanche: SOL_MAX_DELAY in ms (RFC 9915 §7.6 default 1000); each
    /// client's first Solicit waits a random time up to it (§18.2.1). 0: none.
    #[arg(long, default_value_t = 1000)]
    pub sol_max_delay_ms: u64,
    /// Measure the generator itself against a built-in responder on loopback.
    #[arg(long)]
    pub ceiling: bool,
    /// I/O path: `packet` (AF_PACKET rings, about 4x the UDP path's ceiling
    /// here; direct clients only; latencies include up to one ring retire
    /// period) or `udp` (kernel sockets). Default: packet for direct clients,
    /// udp with --relay.
    #[arg(long, value_enum)]
    pub io: Option<IoKind>,
    /// Where the CSV and SVG go.
    #[arg(long, default_value = "target/loadgen")]
    pub out: PathBuf,
    #[arg(long)]
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::parse_from(["loadgen"])
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Summary {
    pub mode: Mode,
    pub clients: u32,
    pub stage: StageResult,
    pub check: check::CheckReport,
    pub leases_per_s: f64,
    pub drop_ratio: f64,
    pub servers_seen: usize,
    pub io: IoKind,
}

impl Summary {
    pub fn line(&self) -> String {
        let s = &self.stage;
        let t = &s.total;
        format!(
            "{:?} (io {:?}): {} clients, {} leases in {:.2} s = {:.0} leases/s, drops {:.2}% ({} dropped, {} retransmits, {} unfinished), \
             latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms, all done {}, servers {}, bad sent {} answered {} (malformed/truncated/foreign-server-id {:?}), unexpected {}",
            self.mode,
            self.io,
            self.clients,
            t.leases,
            s.elapsed_s,
            self.leases_per_s,
            self.drop_ratio * 100.0,
            t.drops,
            t.retransmits,
            s.unfinished,
            s.hist.quantile(0.5) as f64 / 1000.0,
            s.hist.quantile(0.99) as f64 / 1000.0,
            s.hist.quantile(0.999) as f64 / 1000.0,
            s.all_done_s.map(|v| format!("after {v:.2} s")).unwrap_or_else(|| "never".into()),
            self.servers_seen,
            t.bad_sent,
            t.bad_answered,
            s.bad_answered_by_kind,
            t.unexpected,
        )
    }
}

/// `cargo xtask loadgen ARGS`.
pub fn run(args: &[String]) -> Result<()> {
    let o = Options::try_parse_from(
        std::iter::once("loadgen".to_string()).chain(args.iter().cloned()),
    )?;
    let s = run_with(&o)?;
    println!("{}", s.line());
    println!("check: {}", s.check);
    println!(
        "files: {}/loadgen-{:?}.csv and .svg",
        o.out.display(),
        s.mode
    );
    if !s.check.ok() {
        bail!("binding check failed");
    }
    Ok(())
}

fn parse_pools(o: &Options) -> Result<Option<LinkPools>> {
    if o.pools.is_empty() && o.pd_pools.is_empty() {
        return Ok(None);
    }
    let mut p = LinkPools {
        na: Vec::new(),
        pd: Vec::new(),
    };
    for s in &o.pools {
        p.na.push(lab::parse_range(s)?);
    }
    for s in &o.pd_pools {
        let (pfx, dl) = s
            .split_once(':')
            .context("pd-pool: PREFIX/LEN:DELEGATED_LEN")?;
        let (a, len) = pfx
            .split_once('/')
            .context("pd-pool: PREFIX/LEN:DELEGATED_LEN")?;
        p.pd.push((a.parse()?, len.parse()?, dl.parse()?));
    }
    Ok(Some(p))
}

/// Run the load generator as configured; the caller decides what failing checks mean.
pub fn run_with(o: &Options) -> Result<Summary> {
    run_with_predictor(o, None)
}

/// [`run_with`], also checking every binding against the allocation function.
pub fn run_with_predictor(o: &Options, predict: Option<check::Predictor>) -> Result<Summary> {
    if o.relay > 8 {
        bail!("--relay takes 0..=8 hops");
    }
    let ia = IaKinds {
        na: o.ia != Ia::Pd,
        pd: o.ia != Ia::Na,
    };
    let mut pools = parse_pools(o)?;
    let mut servers = o.servers.clone();
    // Namespace: the lab's client side, an explicit one, or a private one for the ceiling run.
    let mut temp_ns = None;
    let ns = if let Some(name) = &o.lab {
        let lo = lab::load_options(name)?;
        if pools.is_none() {
            pools = Some(lab::all_pools(&lo, o.relay > 0)?);
        }
        if servers.is_empty() {
            servers = (1..=lo.servers).map(lab::server_addr).collect();
        }
        Some(format!("{name}-cl"))
    } else if o.ceiling && o.netns.is_none() {
        // Unique per run, also for runs on several threads of one process.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("lgceil{}x{n}", std::process::id());
        lab::ip(&["netns", "add", &name])?;
        lab::ip(&["-n", &name, "link", "set", "lo", "up"])?;
        temp_ns = Some(TempNs(name.clone()));
        Some(name)
    } else {
        o.netns.clone()
    };
    let _guard = ns.as_deref().map(NetnsGuard::enter).transpose()?;
    let salt = std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos()
            << 8);
    let (dests, port) = if o.ceiling {
        if o.relay > 0 {
            bail!("--ceiling measures direct clients only");
        }
        (
            vec![Dest {
                addr: Ipv6Addr::LOCALHOST,
                scope: 0,
                port: 547,
            }],
            546,
        )
    } else if o.relay > 0 {
        if servers.is_empty() {
            bail!("--relay needs --server ADDR (or --lab)");
        }
        (
            servers
                .iter()
                .map(|&addr| Dest {
                    addr,
                    scope: 0,
                    port: 547,
                })
                .collect(),
            547,
        )
    } else {
        let idx = io::ifindex(&o.interface)?;
        (
            vec![Dest {
                addr: "ff02::1:2".parse()?,
                scope: idx,
                port: 547,
            }],
            546,
        )
    };
    let io_kind = o.io.unwrap_or(if o.relay > 0 {
        IoKind::Udp
    } else {
        IoKind::Packet
    });
    if io_kind == IoKind::Packet && o.relay > 0 {
        // Relayed messages go to each server's unicast address, which would need
        // neighbour discovery; the kernel's UDP path does that for us.
        bail!("--io packet sends as directly attached clients; use --io udp with --relay");
    }
    let ifindex = match (io_kind, o.ceiling) {
        (IoKind::Packet, true) => io::ifindex("lo")?,
        (IoKind::Packet, false) | (IoKind::Udp, _) => dests[0].scope,
    };
    let mirror = if o.ceiling {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = stop.clone();
        let h = std::thread::spawn(move || mirror::serve(ia, io_kind, ifindex, 546, s2, tx));
        rx.recv()
            .context("mirror responder did not start")?
            .map_err(|e| anyhow::anyhow!("mirror responder: {e}"))?;
        if pools.is_none() {
            pools = Some(LinkPools {
                na: vec![(
                    mirror::NA_BASE.into(),
                    (mirror::NA_BASE + u128::from(u32::MAX)).into(),
                )],
                pd: vec![(mirror::PD_BASE.into(), 36, 56)],
            });
        }
        Some((stop, h))
    } else {
        None
    };
    let mut sock = Io::open(io_kind, port, ifindex)?;
    let measured = match o.mode {
        Mode::Sarr => Stage::Bind,
        Mode::Avalanche => Stage::Bind,
        Mode::SolicitOnly => Stage::SolicitOnly,
        Mode::Renew => Stage::Renew,
        Mode::Rebind => Stage::Rebind,
        Mode::Release => Stage::Release,
    };
    let base = Params {
        ia,
        hops: o.relay,
        relay_link: o.relay_link,
        dests,
        rate: if o.mode == Mode::Avalanche {
            0.0
        } else {
            o.rate
        },
        retransmit: o.retransmit || o.mode == Mode::Avalanche,
        timeout_ns: o.timeout_ms * 1_000_000,
        max_ns: (o.max_secs * 1e9) as u64,
        rapid_commit: o.rapid_commit,
        bad_share: o.bad,
        salt,
        progress: !o.quiet,
        sol_max_delay_ns: if o.mode == Mode::Avalanche {
            o.sol_max_delay_ms * 1_000_000
        } else {
            0
        },
    };
    let setup = Params {
        rate: 0.0,
        retransmit: true,
        bad_share: 0.0,
        sol_max_delay_ns: 0,
        ..base.clone()
    };
    let is_prep = matches!(measured, Stage::Renew | Stage::Rebind | Stage::Release);
    // The set-up stage binds everyone first; its engine keeps the bindings for the measured stage.
    let (result, clients, servers) = {
        let mut eng = Engine::new(if is_prep { &setup } else { &base }, &mut sock, o.clients);
        if is_prep {
            let prep = eng.run(Stage::Bind);
            if !o.quiet {
                eprintln!(
                    "set-up: {} of {} clients bound in {:.2} s",
                    prep.total.leases, o.clients, prep.elapsed_s
                );
            }
        }
        let clients = std::mem::take(&mut eng.clients);
        let servers_seen = eng.servers().to_vec();
        drop(eng);
        let mut eng = Engine::new(&base, &mut sock, o.clients);
        eng.clients = clients;
        eng.adopt_servers(servers_seen);
        let r = eng.run(measured);
        (r, std::mem::take(&mut eng.clients), eng.servers().to_vec())
    };
    if let Some((stop, h)) = mirror {
        stop.store(true, Ordering::Relaxed);
        let _ = h.join();
    }
    drop(temp_ns);
    let renewed = matches!(measured, Stage::Renew | Stage::Rebind);
    let prediction = predict.map(|predict| check::Prediction {
        predict,
        servers: &servers,
        salt,
    });
    let report = check::check(&clients, ia, pools.as_ref(), renewed, prediction.as_ref());
    let servers_seen = servers.len();
    let t = &result.total;
    let active = if result.last_lease_s > 0.0 {
        result.last_lease_s
    } else {
        result.elapsed_s
    };
    let summary = Summary {
        mode: o.mode,
        clients: o.clients,
        leases_per_s: t.leases as f64 / active.max(1e-9),
        drop_ratio: if base.retransmit {
            t.retransmits as f64 / t.sent.max(1) as f64
        } else {
            (t.drops + result.unfinished) as f64 / t.started.max(1) as f64
        },
        check: report,
        stage: result,
        servers_seen,
        io: io_kind,
    };
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let stem = o.out.join(format!("loadgen-{:?}", o.mode));
    stats::write_csv(&stem.with_extension("csv"), &summary.stage.rows)?;
    stats::write_svg(
        &stem.with_extension("svg"),
        &stats::run_charts(&summary.stage.rows),
    )?;
    Ok(summary)
}

/// A namespace made for one run, deleted on drop.
struct TempNs(String);

impl Drop for TempNs {
    fn drop(&mut self) {
        let _ = lab::ip(&["netns", "del", &self.0]);
    }
}

#[cfg(test)]
mod ceiling_tests;
#[cfg(test)]
mod lab_tests;
