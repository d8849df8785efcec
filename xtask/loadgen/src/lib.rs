//! The load generator of `cargo xtask loadgen` and `cargo xtask bench`:
//! simulated DHCPv6 clients with distinct DUIDs, driven at a target rate or all
//! at once, directly or through 1..=8 simulated relays, checking every binding
//! the server hands out. See `--help` for the modes. [`lab`] is the namespace
//! lab it attaches to (`--lab NAME`).
//!
//! A library of its own so that the xtask binary, the tests (`tests/dhcp6d.rs`
//! checks it against dhcp6d's allocation function) and the benchmarks share it
//! without xtask and the test crate depending on each other. It owns the
//! simulated clients, their packet and socket I/O and the binding checks; it
//! never links dhcp6d itself (only its tests do, to predict allocations).

pub mod check;
pub mod engine;
pub mod frame;
pub mod io;
pub mod lab;
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

use crate::lab::LinkPools;
use dhcp6d_tests::netns::{Entered, Netns};
use engine::{Engine, Params, Stage, StageResult};
use io::{Dest, Io, IoKind};
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

/// Options of `cargo xtask loadgen` (also a clap `Args`: xtask embeds them).
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
    /// Share of extra messages from one source (one peer-address; use
    /// --relay so the good clients have peer-addresses of their own):
    /// Rebinds naming a foreign address and Rapid Commit Solicits, each with
    /// a new DUID, so each can create a binding. 0..1.
    #[arg(long, default_value_t = 0.0)]
    pub flood: f64,
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
             latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms, all done {}, servers {}, bad sent {} answered {} (malformed/truncated/foreign-server-id {:?}), flood sent {} answered {}, unexpected {}",
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
            s.flood_sent,
            s.flood_answered,
            t.unexpected,
        )
    }
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
///
/// The steps: where to run and what to check against ([`Target`]), where
/// messages go ([`destinations`]), which I/O path ([`io_kind`]), the built-in
/// responder of a ceiling run ([`Mirror`]), the engine's parameters
/// ([`params`]), the stages ([`run_stages`]), then the check and the files.
pub fn run_with_predictor(o: &Options, predict: Option<check::Predictor>) -> Result<Summary> {
    if o.relay > 8 {
        bail!("--relay takes 0..=8 hops");
    }
    let ia = IaKinds {
        na: o.ia != Ia::Pd,
        pd: o.ia != Ia::Na,
    };
    let mut target = Target::resolve(o)?;
    let inside = target.netns.as_deref().map(Entered::enter).transpose()?;
    let salt = std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos()
            << 8);
    let (dests, port) = destinations(o, &target.servers)?;
    let io_kind = io_kind(o)?;
    let ifindex = match (io_kind, o.ceiling) {
        (IoKind::Packet, true) => io::ifindex("lo")?,
        (IoKind::Packet, false) | (IoKind::Udp, _) => dests[0].scope,
    };
    let mirror = if o.ceiling {
        let m = Mirror::start(ia, io_kind, ifindex)?;
        target.pools.get_or_insert_with(Mirror::pools);
        Some(m)
    } else {
        None
    };
    let mut sock = Io::open(io_kind, port, ifindex)?;
    let (base, setup) = params(o, ia, dests, salt);
    let measured = measured_stage(o.mode);
    let (result, clients, servers) = run_stages(o, measured, &base, &setup, &mut sock);
    drop(mirror);
    // Leave before deleting: deleting kills the processes whose main thread
    // is inside, and a command-line run's main thread is.
    drop(inside);
    drop(target.temp_ns.take());
    let renewed = matches!(measured, Stage::Renew | Stage::Rebind);
    let prediction = predict.map(|predict| check::Prediction {
        predict,
        servers: &servers,
        salt,
    });
    let report = check::check(
        &clients,
        ia,
        target.pools.as_ref(),
        renewed,
        prediction.as_ref(),
    );
    let summary = summarize(o, &base, result, report, servers.len(), io_kind);
    write_files(o, &summary)?;
    Ok(summary)
}

/// Where a run happens and what its bindings are checked against.
struct Target {
    /// The namespace to run in (none: the caller's).
    netns: Option<String>,
    /// A private namespace of a ceiling run, deleted when the run ends.
    temp_ns: Option<Netns>,
    pools: Option<LinkPools>,
    servers: Vec<Ipv6Addr>,
}

impl Target {
    /// The lab's client side (with its pools and servers), an explicit
    /// namespace, or a private one for the ceiling run.
    fn resolve(o: &Options) -> Result<Target> {
        let mut t = Target {
            netns: o.netns.clone(),
            temp_ns: None,
            pools: parse_pools(o)?,
            servers: o.servers.clone(),
        };
        if let Some(name) = &o.lab {
            let lo = lab::load_options(name)?;
            if t.pools.is_none() {
                t.pools = Some(lab::all_pools(&lo, o.relay > 0)?);
            }
            if t.servers.is_empty() {
                t.servers = (1..=lo.servers).map(lab::server_addr).collect();
            }
            t.netns = Some(format!("{name}-cl"));
        } else if o.ceiling && o.netns.is_none() {
            // Unique per run, also for runs on several threads of one process.
            let tmp = Netns::new("lgceil")?;
            t.netns = Some(tmp.name().to_owned());
            t.temp_ns = Some(tmp);
        }
        Ok(t)
    }
}

/// Where every message goes, and the local port: loopback for the ceiling,
/// each server's unicast address for relayed clients (port 547, as a relay
/// sends), else the All_DHCP_Relay_Agents_and_Servers group on the interface.
fn destinations(o: &Options, servers: &[Ipv6Addr]) -> Result<(Vec<Dest>, u16)> {
    let dest = |addr, scope| Dest {
        addr,
        scope,
        port: 547,
    };
    if o.ceiling {
        if o.relay > 0 {
            bail!("--ceiling measures direct clients only");
        }
        Ok((vec![dest(Ipv6Addr::LOCALHOST, 0)], 546))
    } else if o.relay > 0 {
        if servers.is_empty() {
            bail!("--relay needs --server ADDR (or --lab)");
        }
        Ok((servers.iter().map(|&a| dest(a, 0)).collect(), 547))
    } else {
        let idx = io::ifindex(&o.interface)?;
        Ok((vec![dest("ff02::1:2".parse()?, idx)], 546))
    }
}

/// The I/O path: as asked, else packet rings for direct clients and kernel
/// UDP sockets for relayed ones.
fn io_kind(o: &Options) -> Result<IoKind> {
    let kind = o.io.unwrap_or(if o.relay > 0 {
        IoKind::Udp
    } else {
        IoKind::Packet
    });
    if kind == IoKind::Packet && o.relay > 0 {
        // Relayed messages go to each server's unicast address, which would need
        // neighbour discovery; the kernel's UDP path does that for us.
        bail!("--io packet sends as directly attached clients; use --io udp with --relay");
    }
    Ok(kind)
}

/// The built-in responder of a ceiling run, on its own thread; stopped on drop.
struct Mirror {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<u64>>>,
}

impl Mirror {
    fn start(ia: IaKinds, io_kind: IoKind, ifindex: u32) -> Result<Mirror> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || mirror::serve(ia, io_kind, ifindex, 546, s2, tx));
        rx.recv()
            .context("mirror responder did not start")?
            .map_err(|e| anyhow::anyhow!("mirror responder: {e}"))?;
        Ok(Mirror {
            stop,
            thread: Some(thread),
        })
    }

    /// What the responder hands out.
    fn pools() -> LinkPools {
        LinkPools {
            na: vec![(
                mirror::NA_BASE.into(),
                (mirror::NA_BASE + u128::from(u32::MAX)).into(),
            )],
            pd: vec![(mirror::PD_BASE.into(), 36, 56)],
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The stage a mode measures.
fn measured_stage(mode: Mode) -> Stage {
    match mode {
        Mode::Sarr | Mode::Avalanche => Stage::Bind,
        Mode::SolicitOnly => Stage::SolicitOnly,
        Mode::Renew => Stage::Renew,
        Mode::Rebind => Stage::Rebind,
        Mode::Release => Stage::Release,
    }
}

/// The measured stage's parameters, and the set-up stage's (everyone bound
/// at once, with retransmission, no bad input).
fn params(o: &Options, ia: IaKinds, dests: Vec<Dest>, salt: u32) -> (Params, Params) {
    let avalanche = o.mode == Mode::Avalanche;
    let base = Params {
        ia,
        hops: o.relay,
        relay_link: o.relay_link,
        dests,
        rate: if avalanche { 0.0 } else { o.rate },
        retransmit: o.retransmit || avalanche,
        timeout_ns: o.timeout_ms * 1_000_000,
        max_ns: (o.max_secs * 1e9) as u64,
        rapid_commit: o.rapid_commit,
        bad_share: o.bad,
        flood_share: o.flood,
        salt,
        progress: !o.quiet,
        sol_max_delay_ns: if avalanche {
            o.sol_max_delay_ms * 1_000_000
        } else {
            0
        },
    };
    let setup = Params {
        rate: 0.0,
        retransmit: true,
        bad_share: 0.0,
        flood_share: 0.0,
        sol_max_delay_ns: 0,
        ..base.clone()
    };
    (base, setup)
}

/// Runs the set-up stage when the measured one needs bound clients (renew,
/// rebind, release), then the measured stage with the same clients and
/// servers; the result, the clients and every server seen.
fn run_stages(
    o: &Options,
    measured: Stage,
    base: &Params,
    setup: &Params,
    sock: &mut Io,
) -> (StageResult, Vec<engine::Client>, Vec<Vec<u8>>) {
    let is_prep = matches!(measured, Stage::Renew | Stage::Rebind | Stage::Release);
    let mut eng = Engine::new(if is_prep { setup } else { base }, sock, o.clients);
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
    let mut eng = Engine::new(base, sock, o.clients);
    eng.clients = clients;
    eng.adopt_servers(servers_seen);
    let r = eng.run(measured);
    (r, std::mem::take(&mut eng.clients), eng.servers().to_vec())
}

/// The figures of a run: leases per second while leases came, and the drop
/// ratio (retransmissions per message with retransmission, else exchanges
/// lost or unfinished per started one).
fn summarize(
    o: &Options,
    base: &Params,
    result: StageResult,
    check: check::CheckReport,
    servers_seen: usize,
    io: IoKind,
) -> Summary {
    let t = &result.total;
    let active = if result.last_lease_s > 0.0 {
        result.last_lease_s
    } else {
        result.elapsed_s
    };
    Summary {
        mode: o.mode,
        clients: o.clients,
        leases_per_s: t.leases as f64 / active.max(1e-9),
        drop_ratio: if base.retransmit {
            t.retransmits as f64 / t.sent.max(1) as f64
        } else {
            (t.drops + result.unfinished) as f64 / t.started.max(1) as f64
        },
        check,
        stage: result,
        servers_seen,
        io,
    }
}

/// The per-interval rows as CSV and as an SVG chart under `--out`.
fn write_files(o: &Options, summary: &Summary) -> Result<()> {
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let stem = o.out.join(format!("loadgen-{:?}", o.mode));
    stats::write_csv(&stem.with_extension("csv"), &summary.stage.rows)?;
    stats::write_svg(
        &stem.with_extension("svg"),
        &stats::run_charts(&summary.stage.rows),
    )
}

#[cfg(test)]
mod ceiling_tests;
#[cfg(test)]
mod lab_tests;
