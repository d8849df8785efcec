//! `cargo xtask bench kea [--quick]`: dhcp6d against ISC Kea 2.2 in one lab, one run.
//!
//! For each server (Kea with the best thread count of a quick sweep, dhcp6d with
//! `--io socket`, dhcp6d with `--io xdp`): a perfdhcp rate sweep to the 2.5% drop
//! point (ISC's method), the same sweep with our load generator, server CPU-seconds
//! per 100,000 leases at a rate every server sustains (from /proc/PID/stat), a
//! 20% bad-input mix, and an avalanche (perfdhcp and ours), time until all bound.
//! Everything is bounded in time; results go to target/bench/kea.md and SVG plots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use dhcp6d_loadgen::io::IoKind;
use dhcp6d_loadgen::lab::{Lab, LabOptions, ServerKind};
use dhcp6d_loadgen::stats::{write_svg, Chart};
use dhcp6d_loadgen::{run_with, Ia, Mode, Options};

/// Leases/s offered to each Kea thread count in the thread sweep.
const KEA_SWEEP_RATE: f64 = 24_000.0;
/// The CPU step lasts this many rate steps: long enough that one scheduling
/// hiccup of the VM does not move the figure much (4 s varied by ±20 %).
const CPU_STEPS: f64 = 5.0;

/// Largest drop ratio a rate step may have to count (ISC's perfdhcp method).
const MAX_DROP: f64 = 0.025;

struct Plan {
    quick: bool,
    step_s: f64,
    avalanche_clients: u32,
    avalanche_max_s: f64,
    out: PathBuf,
    only: Vec<String>,
    /// The CPU step's rate, when given (else 80% of the first server's best).
    cpu_rate: Option<f64>,
}

#[derive(Default)]
struct ServerResult {
    name: String,
    error: Option<String>,
    perfdhcp_best: f64,
    perfdhcp_sweep: Vec<(f64, f64, f64)>,
    loadgen_best: f64,
    loadgen_sweep: Vec<(f64, f64, f64)>,
    cpu_rate: f64,
    cpu_per_100k: Option<f64>,
    /// Context switches of all server threads per lease in the CPU step.
    switches_per_lease: Option<f64>,
    bad_rate: f64,
    bad_answered: u64,
    aval_perfdhcp_s: Option<f64>,
    aval_loadgen_s: Option<f64>,
}

#[derive(Clone, Default, clap::Args)]
pub struct Args {
    /// Shorter steps, fewer rates, a 10,000-client avalanche.
    #[arg(long)]
    quick: bool,
    /// Clients of the avalanche (default 100,000; 10,000 with --quick).
    #[arg(long)]
    clients: Option<u32>,
    /// Where the report and plots go [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Which servers, in order.
    #[arg(long, value_delimiter = ',', default_value = "kea,socket,xdp")]
    servers: Vec<String>,
    /// The CPU step's rate in leases/s (default: 80% of the first server's best).
    #[arg(long)]
    cpu_rate: Option<f64>,
}

fn plan(a: &Args) -> Result<Plan> {
    let mut p = Plan {
        quick: a.quick,
        step_s: if a.quick { 1.0 } else { 2.0 },
        avalanche_clients: if a.quick { 10_000 } else { 100_000 },
        avalanche_max_s: if a.quick { 12.0 } else { 60.0 },
        out: a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("target/bench")),
        only: if a.servers.is_empty() {
            vec!["kea".into(), "socket".into(), "xdp".into()]
        } else {
            a.servers.clone()
        },
        cpu_rate: a.cpu_rate,
    };
    if let Some(n) = a.clients {
        p.avalanche_clients = n;
    }
    if let Some(bad) = p
        .only
        .iter()
        .find(|s| !["kea", "socket", "xdp"].contains(&s.as_str()))
    {
        bail!("bench kea --servers: {bad:?} is none of kea, socket, xdp");
    }
    Ok(p)
}

/// `cargo xtask bench kea [--quick] [--clients N] [--out DIR] [--servers kea,socket,xdp] [--cpu-rate R]`.
pub fn run(a: &Args) -> Result<()> {
    let plan = plan(a)?;
    let t0 = Instant::now();
    std::fs::create_dir_all(&plan.out)?;
    build_dhcp6d()?;
    let machine = machine();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut lab = Lab::up(LabOptions {
        name: "d6bench".into(),
        ..LabOptions::default()
    })?;
    println!("bench: lab up; machine: {machine}");

    let ceiling = [
        (IoKind::Packet, loadgen_ceiling(&plan, IoKind::Packet)?),
        (IoKind::Udp, loadgen_ceiling(&plan, IoKind::Udp)?),
    ];
    for (io, c) in ceiling {
        println!("bench: load generator ceiling, {io:?} I/O: {c:.0} leases/s (null responder on loopback)");
    }

    let rates: Vec<f64> = if plan.quick {
        vec![1000.0, 2000.0, 4000.0, 16000.0, 64000.0]
    } else {
        vec![1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 64000.0]
    };
    let mut kea_threads = 2;
    let mut thread_sweep = Vec::new();
    let mut results = Vec::new();
    let mut common_rate = plan.cpu_rate;
    for which in plan.only.clone() {
        let kind = match which.as_str() {
            "kea" => {
                if !plan.quick {
                    // Offered above what one thread serves, so the sweep
                    // tells the thread counts apart (at 4,000/s all three
                    // kept up and the first, 1 thread, was taken).
                    for t in [1u32, 2, 4] {
                        lab.start_server(1, ServerKind::Kea { threads: t })?;
                        let (r, _) = loadgen_step(&lab, &plan, KEA_SWEEP_RATE)?;
                        thread_sweep.push((t, r));
                    }
                    kea_threads = thread_sweep
                        .iter()
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map_or(2, |x| x.0);
                }
                ServerKind::Kea {
                    threads: kea_threads,
                }
            }
            "socket" => ServerKind::Dhcp6d { io: "socket" },
            "xdp" => ServerKind::Dhcp6d { io: "xdp" },
            other => bail!("--servers: unknown server {other:?}"),
        };
        let name = match kind {
            ServerKind::Kea { threads } => format!("Kea 2.2 ({threads} threads, memfile persist)"),
            ServerKind::Dhcp6d { io } => format!("dhcp6d --io {io}"),
        };
        println!("bench: {name}");
        let mut r = ServerResult {
            name,
            ..ServerResult::default()
        };
        if let Err(e) = measure(&mut lab, kind, &plan, &rates, &mut common_rate, &mut r) {
            println!("bench: {}: {e:#}", r.name);
            r.error = Some(format!("{e:#}"));
        }
        lab.stop_server(1);
        results.push(r);
    }
    lab.down()?;
    // The AF_XDP echo ceiling in the same session (its own veth pair, after
    // the lab is down so nothing else runs); a failure goes into the report.
    println!("bench: AF_XDP echo ceiling (bench echo)");
    let echo = super::echo::measure(2).unwrap_or_else(|e| format!("bench echo failed: {e:#}\n"));
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let md = report(
        &plan,
        &machine,
        &load_before,
        &load_after,
        &ceiling,
        &thread_sweep,
        &results,
        &echo,
        t0.elapsed(),
    );
    std::fs::write(plan.out.join("kea.md"), &md)?;
    plots(&plan.out, &results)?;
    println!("{md}");
    let out = std::fs::canonicalize(&plan.out).unwrap_or_else(|_| plan.out.clone());
    println!(
        "bench: report {}, plots {} (per-run CSV/SVG under {}), {:.0} s",
        out.join("kea.md").display(),
        out.join("kea-sweep.svg").display(),
        out.join("runs").display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn measure(
    lab: &mut Lab,
    kind: ServerKind,
    plan: &Plan,
    rates: &[f64],
    common: &mut Option<f64>,
    r: &mut ServerResult,
) -> Result<()> {
    let pid = lab.start_server(1, kind)?;
    // A step over 2.5% drops ends the sweep only when the next one fails too:
    // on a shared machine one step can be unlucky.
    let mut failed = 0;
    for &rate in rates {
        let (got, drop) = perfdhcp_step(lab, rate, plan.step_s)?;
        r.perfdhcp_sweep.push((rate, got, drop));
        if drop > MAX_DROP {
            failed += 1;
            if failed == 2 {
                break;
            }
            continue;
        }
        failed = 0;
        r.perfdhcp_best = r.perfdhcp_best.max(got);
    }
    failed = 0;
    let (mut good, mut bad) = (0.0f64, None);
    for &rate in rates.iter().chain([128_000.0, 256_000.0].iter()) {
        let (got, drop) = loadgen_step(lab, plan, rate)?;
        r.loadgen_sweep.push((rate, got, drop));
        if drop > MAX_DROP {
            bad = bad.or(Some(rate));
            failed += 1;
            if failed == 2 {
                break;
            }
            continue;
        }
        failed = 0;
        good = good.max(rate);
        r.loadgen_best = r.loadgen_best.max(got);
    }
    // Two bisection steps between the last passing and the first failing rate.
    if let Some(mut hi) = bad.filter(|&b| b > good) {
        let mut lo = good;
        for _ in 0..2 {
            let mid = (lo + hi) / 2.0;
            let (got, drop) = loadgen_step(lab, plan, mid)?;
            r.loadgen_sweep.push((mid, got, drop));
            if drop > MAX_DROP {
                hi = mid;
            } else {
                lo = mid;
                r.loadgen_best = r.loadgen_best.max(got);
            }
        }
        r.loadgen_sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    // CPU per lease at one rate every server sustains: 80% of the first server's
    // best (Kea's, when it runs), the same rate for all that follow.
    let rate = *common.get_or_insert((r.loadgen_best * 0.8).max(500.0));
    r.cpu_rate = rate;
    let before = cpu_seconds(pid)?;
    let switches_before = context_switches(pid);
    let n = (rate * plan.step_s * CPU_STEPS) as u32;
    let s = run_with(&lg_options(
        lab,
        plan,
        Mode::Sarr,
        rate,
        n,
        plan.step_s * CPU_STEPS + 3.0,
    ))?;
    let cpu = cpu_seconds(pid)? - before;
    let switches = context_switches(pid)
        .zip(switches_before)
        .map(|(a, b)| a.saturating_sub(b));
    if s.stage.total.leases > 0 {
        let leases = s.stage.total.leases as f64;
        r.cpu_per_100k = Some(cpu / leases * 100_000.0);
        r.switches_per_lease = switches.map(|n| n as f64 / leases);
    }
    let n = (rate * plan.step_s) as u32;
    let mut bad = lg_options(lab, plan, Mode::Sarr, rate, n, plan.step_s + 3.0);
    bad.bad = 0.2;
    let s = run_with(&bad)?;
    r.bad_rate = s.leases_per_s;
    r.bad_answered = s.stage.total.bad_answered;
    // Avalanches start from an empty lease database, like a fresh outage recovery.
    lab.start_server(1, kind)?;
    r.aval_perfdhcp_s = perfdhcp_avalanche(lab, plan.avalanche_clients, plan.avalanche_max_s)?;
    lab.start_server(1, kind)?;
    let s = run_with(&lg_options(
        lab,
        plan,
        Mode::Avalanche,
        0.0,
        plan.avalanche_clients,
        plan.avalanche_max_s,
    ))?;
    r.aval_loadgen_s = s.stage.all_done_s;
    Ok(())
}

fn lg_options(
    lab: &Lab,
    plan: &Plan,
    mode: Mode,
    rate: f64,
    clients: u32,
    max_secs: f64,
) -> Options {
    Options {
        mode,
        clients: clients.max(1),
        rate,
        max_secs,
        ia: Ia::Na,
        lab: Some(lab.opts.name.clone()),
        out: plan.out.join("runs"),
        quiet: true,
        ..Options::default()
    }
}

/// One loadgen sarr step: (leases/s, drop ratio).
fn loadgen_step(lab: &Lab, plan: &Plan, rate: f64) -> Result<(f64, f64)> {
    let s = run_with(&lg_options(
        lab,
        plan,
        Mode::Sarr,
        rate,
        (rate * plan.step_s) as u32,
        plan.step_s + 3.0,
    ))?;
    println!(
        "  loadgen sarr {rate:>7.0}/s: {:>8.0} leases/s, drops {:.2}%",
        s.leases_per_s,
        s.drop_ratio * 100.0
    );
    Ok((s.leases_per_s, s.drop_ratio))
}

/// The generator's own ceiling with `io`: the best rate under 2.5% drops
/// against its null responder (same I/O kind) on loopback.
fn loadgen_ceiling(plan: &Plan, io: IoKind) -> Result<f64> {
    let mut best = 0.0f64;
    let mut failed = 0;
    let rates: &[f64] = if plan.quick {
        &[50_000.0, 100_000.0, 200_000.0]
    } else {
        &[
            25_000.0, 50_000.0, 100_000.0, 150_000.0, 200_000.0, 300_000.0,
        ]
    };
    for &rate in rates {
        let o = Options {
            io: Some(io),
            rate,
            clients: (rate * plan.step_s) as u32,
            max_secs: plan.step_s + 3.0,
            ceiling: true,
            quiet: true,
            out: plan.out.join("runs"),
            ..Options::default()
        };
        let s = run_with(&o)?;
        // Like the server sweeps: one unlucky step on a shared machine does
        // not end it, two failing in a row do.
        if s.drop_ratio > MAX_DROP {
            failed += 1;
            if failed == 2 {
                break;
            }
            continue;
        }
        failed = 0;
        best = best.max(s.leases_per_s);
    }
    Ok(best)
}

/// One perfdhcp rate step in the client namespace: (4-way exchanges/s, drop ratio).
fn perfdhcp_step(lab: &Lab, rate: f64, secs: f64) -> Result<(f64, f64)> {
    let out = Lab::netns_cmd(&lab.ns_client(), "perfdhcp")
        .args([
            "-6",
            "-l",
            "eth0",
            "-r",
            &format!("{rate:.0}"),
            "-p",
            &format!("{:.0}", secs.ceil()),
            "-R",
            "100000000",
        ])
        .current_dir(&lab.dir)
        .stdin(Stdio::null())
        .output()
        .context("running perfdhcp (package kea-admin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let got = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Rate: ")
                .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    // Exchanges completed over Solicits sent, across both exchanges.
    let nums = |key: &str| -> Vec<f64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
            .collect()
    };
    let (sent, recv) = (nums("sent packets: "), nums("received packets: "));
    let drop = match (sent.first(), recv.get(1)) {
        (Some(&s), Some(&r)) if s > 0.0 => 1.0 - r / s,
        _ => 1.0,
    };
    println!(
        "  perfdhcp     {rate:>7.0}/s: {got:>8.0} 4-way/s, drops {:.2}%",
        drop * 100.0
    );
    Ok((got, drop))
}

/// `perfdhcp --scenario avalanche -R N`: seconds until all bound, or None if not within `max_s`.
fn perfdhcp_avalanche(lab: &Lab, n: u32, max_s: f64) -> Result<Option<f64>> {
    let mut child = Lab::netns_cmd(&lab.ns_client(), "perfdhcp")
        .args([
            "-6",
            "-l",
            "eth0",
            "--scenario",
            "avalanche",
            "-R",
            &n.to_string(),
        ])
        .current_dir(&lab.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running perfdhcp")?;
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < max_s {
        if child.try_wait()?.is_some() {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            // "It took 00:00:16.459361 to provision 2000 clients."
            let took = text.lines().find_map(|l| {
                let t = l.strip_prefix("It took ")?.split_whitespace().next()?;
                let mut parts = t.split(':').map(|x| x.parse::<f64>().ok());
                Some(parts.next()?? * 3600.0 + parts.next()?? * 60.0 + parts.next()??)
            });
            println!("  perfdhcp avalanche {n}: {took:?} s");
            return Ok(took);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    println!("  perfdhcp avalanche {n}: not all bound within {max_s:.0} s");
    Ok(None)
}

/// Build the dhcp6d under test from this tree (release), unless `DHCP6D_BIN`
/// names one: a stale binary would measure old code.
pub(super) fn build_dhcp6d() -> Result<()> {
    if std::env::var_os("DHCP6D_BIN").is_some() {
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask is inside the workspace")?;
    println!("bench: building dhcp6d (release)");
    let status = Command::new("cargo")
        .current_dir(root)
        .args(["build", "--release", "-p", "dhcp-user", "--bin", "dhcp6d"])
        // The xdp runs need the real XDP object, never the empty stand-in.
        .env_remove("DHCP6D_SKIP_EBPF")
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building dhcp6d failed with {status}");
    }
    Ok(())
}

/// Voluntary and involuntary context switches of all of a process's threads
/// (wake-ups are much of a server's CPU at moderate rates; README profile).
fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

/// User plus system CPU-seconds of a process (all its threads).
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "not reached".into(), |x| format!("{x:.2} {unit}"))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename the arguments"
)]
fn report(
    plan: &Plan,
    machine: &str,
    before: &str,
    after: &str,
    ceiling: &[(IoKind, f64)],
    sweep: &[(u32, f64)],
    rs: &[ServerResult],
    echo: &str,
    took: Duration,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## dhcp6d vs Kea ({} run, {:.0} s)\n",
        if plan.quick { "quick" } else { "full" },
        took.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Machine: {machine}. Load average before: {}, after: {}.",
        before.trim(),
        after.trim()
    );
    let _ = writeln!(s, "All servers, clients and generators share these cores; one lab (veth + bridge in namespaces), IA_NA only.\n");
    let c: Vec<String> = ceiling
        .iter()
        .map(|(io, c)| format!("{io:?} I/O {c:.0}"))
        .collect();
    let _ = writeln!(
        s,
        "Load generator ceiling (leases/s under 2.5% drops against its null responder on loopback, same I/O on both sides): {}. The loadgen columns use Packet I/O (AF_PACKET rings).",
        c.join(", ")
    );
    let _ = writeln!(
        s,
        "Avalanche: the loadgen's clients delay their first Solicit by a random 0-1 s (RFC 9915 §18.2.1, SOL_MAX_DELAY), so its times include up to 1 s of that; perfdhcp's avalanche sends at once."
    );
    if !sweep.is_empty() {
        let v: Vec<String> = sweep
            .iter()
            .map(|(t, r)| format!("{t} threads: {r:.0}/s"))
            .collect();
        let _ = writeln!(
            s,
            "Kea thread sweep (loadgen, {KEA_SWEEP_RATE:.0}/s offered): {}.",
            v.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "AF_XDP echo ceiling, same session (`cargo xtask bench echo`, after the lab above is down):\n\n```text\n{}```\n",
        echo
    );
    let _ = writeln!(
        s,
        "| server | perfdhcp 4-way/s (<2.5% drops) | loadgen leases/s (<2.5% drops) | CPU-s per 100k leases (at rate) | leases/s with 20% bad input (bad answered) | avalanche {n}: perfdhcp | avalanche {n}: loadgen |",
        n = plan.avalanche_clients
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in rs {
        if let Some(e) = &r.error {
            let _ = writeln!(
                s,
                "| {} | failed: {} | | | | | |",
                r.name,
                e.lines().next().unwrap_or("")
            );
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {} (at {:.0}/s{}) | {:.0} ({}) | {} | {} |",
            r.name,
            r.perfdhcp_best,
            r.loadgen_best,
            r.cpu_per_100k.map_or("n/a".into(), |c| format!("{c:.2}")),
            r.cpu_rate,
            r.switches_per_lease.map_or(String::new(), |w| format!(
                "; {w:.2} context switches per lease"
            )),
            r.bad_rate,
            r.bad_answered,
            opt(r.aval_perfdhcp_s, "s"),
            opt(r.aval_loadgen_s, "s"),
        );
    }
    if let Some(kea) = rs
        .iter()
        .find(|r| r.name.starts_with("Kea") && r.error.is_none())
    {
        for r in rs
            .iter()
            .filter(|r| !r.name.starts_with("Kea") && r.error.is_none())
        {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.1}x", a / b)
                } else {
                    "n/a".into()
                }
            };
            let cpu = match (kea.cpu_per_100k, r.cpu_per_100k) {
                (Some(k), Some(d)) if d > 0.0 => format!("{:.1}x less CPU per lease", k / d),
                _ => "CPU ratio n/a".into(),
            };
            let aval = match (kea.aval_loadgen_s, r.aval_loadgen_s) {
                (Some(k), Some(d)) => format!("avalanche bound {} sooner", ratio(k, d)),
                (None, Some(d)) => format!(
                    "avalanche bound more than {} sooner (Kea not done in {:.0} s)",
                    ratio(plan.avalanche_max_s, d),
                    plan.avalanche_max_s
                ),
                _ => "avalanche n/a".into(),
            };
            let _ = writeln!(
                s,
                "\n{} vs Kea: {} leases/s (loadgen), {} (perfdhcp), {cpu}, {aval}.",
                r.name,
                ratio(r.loadgen_best, kea.loadgen_best),
                ratio(r.perfdhcp_best, kea.perfdhcp_best)
            );
        }
    }
    s
}

fn plots(out: &Path, rs: &[ServerResult]) -> Result<()> {
    let ok = |r: &&ServerResult| r.error.is_none();
    let charts = vec![
        Chart {
            title: "loadgen sweep: leases/s achieved vs offered",
            x_label: "offered clients/s",
            y_label: "leases/s",
            series: rs
                .iter()
                .filter(ok)
                .map(|r| {
                    (
                        r.name.as_str(),
                        r.loadgen_sweep.iter().map(|x| (x.0, x.1)).collect(),
                    )
                })
                .collect(),
        },
        Chart {
            title: "perfdhcp sweep: 4-way exchanges/s vs offered",
            x_label: "offered rate/s",
            y_label: "exchanges/s",
            series: rs
                .iter()
                .filter(ok)
                .map(|r| {
                    (
                        r.name.as_str(),
                        r.perfdhcp_sweep.iter().map(|x| (x.0, x.1)).collect(),
                    )
                })
                .collect(),
        },
        Chart {
            title: "drop ratio (loadgen sweep)",
            x_label: "offered clients/s",
            y_label: "% dropped",
            series: rs
                .iter()
                .filter(ok)
                .map(|r| {
                    (
                        r.name.as_str(),
                        r.loadgen_sweep.iter().map(|x| (x.0, x.2 * 100.0)).collect(),
                    )
                })
                .collect(),
        },
    ];
    write_svg(&out.join("kea-sweep.svg"), &charts)
}
