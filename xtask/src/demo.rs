//! `cargo xtask demo`: RFC 6853 split prefixes, live, in two minutes.
//!
//! Builds `dhcp6d`, writes two server configs with `dhcp6d plan`, starts both
//! servers and a few real clients (ISC dhclient, perfdhcp) on one link made of
//! network namespaces, shows both servers' stats, kills the preferred server
//! and shows each client moving to the survivor, then tears everything down.
//! Everything lives in namespaces and a temp dir; nothing on the host changes.
//!
//! Options: `--io socket|xdp` (default socket), `--clients N` (default 4),
//! `--keep` (keep the temp dir with configs, logs and the capture).

use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use dhcp6d_tests::capture::Capture;
use dhcp6d_tests::dhclient::{Ask, LeaseEvent};
use dhcp6d_tests::dhcp6d::{binary, ServerConfig};
use dhcp6d_tests::netns::BRIDGE;
use dhcp6d_tests::perfdhcp;
use dhcp6d_tests::tempdir::TempDir;
use dhcp6d_tests::topology::{node, OneLink, IF};

/// Lifetimes of the demo (preferred, valid, T1, T2): short, as RFC 6853 §6.1
/// advises, so the failover happens while you watch.
const LIFETIMES: (u32, u32, u32, u32) = (8, 10, 2, 3);
const PREFIX: &str = "2001:db8:1:1::/64";

#[derive(clap::Args)]
pub struct Args {
    /// The data path the servers use.
    #[arg(long, value_enum, default_value = "socket")]
    io: Io,
    /// How many dhclient clients to start.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Keep the temp dir with configs, logs and the capture.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Io {
    Socket,
    Xdp,
}

impl Io {
    fn as_str(self) -> &'static str {
        match self {
            Io::Socket => "socket",
            Io::Xdp => "xdp",
        }
    }
}

fn step(start: Instant, text: &str) {
    println!("\n[{:5.1}s] == {text}", start.elapsed().as_secs_f64());
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// "s1"/"s2" for a DUID, so the output speaks of servers, not hex.
fn server_name(duid: Option<String>, duids: &[String]) -> String {
    duid.and_then(|d| duids.iter().position(|x| *x == d))
        .map_or_else(|| "?".into(), |i| format!("s{}", i + 1))
}

/// `dhcp6d stats` without its zero counters, to keep the screen readable.
fn print_stats(table: &str) {
    for line in table.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let zero_counter = words.len() == 2 && words[1] == "0";
        if !zero_counter && !line.trim().is_empty() {
            println!("    {line}");
        }
    }
}

/// Runs the demo.
pub fn run(o: &Args) -> Result<()> {
    if o.keep {
        std::env::set_var("DHCP6D_TESTS_KEEP", "1");
    }
    let start = Instant::now();
    step(start, "building dhcp6d");
    let bin = binary().context("building dhcp6d")?;
    println!("    {}", bin.display());

    step(
        start,
        &format!("dhcp6d plan --model split-prefix --prefix {PREFIX} --servers 2"),
    );
    let plan_dir = TempDir::new("demo-plan")?;
    let mut cfgs = ServerConfig::plan("split-prefix", PREFIX, 2, plan_dir.path())?;
    let (preferred, valid, t1, t2) = LIFETIMES;
    for (i, c) in cfgs.iter_mut().enumerate() {
        c.lifetimes(preferred, valid, t1, t2);
        println!(
            "    s{}: preference {:3}, pool {}",
            i + 1,
            c.get_preference(),
            c.pools().join(", ")
        );
    }
    println!("    lifetimes shortened for the demo: T1 {t1}s, T2 {t2}s, preferred {preferred}s, valid {valid}s");

    step(
        start,
        &format!("starting both servers (--io {}) on one link", o.io.as_str()),
    );
    let mut lab = OneLink::new("demo", &cfgs, o.io.as_str())?;
    let capture = Capture::start(lab.link.hub(), BRIDGE, lab.dir.path(), "link")?;
    let duids: Vec<String> = lab
        .servers
        .iter()
        .map(|s| s.duid())
        .collect::<Result<_, _>>()?;
    for (i, d) in duids.iter().enumerate() {
        println!("    s{} up, DUID {d}", i + 1);
    }

    step(start, &format!("{} dhclient -6 clients solicit", o.clients));
    lab.add_clients(o.clients, Ask::Address)?;
    let leases = lab.wait_all_bound(Duration::from_secs(20))?;
    for (i, l) in leases.iter().enumerate() {
        println!(
            "    c{}: {:<40} from {} (the preference-255 server answers at once)",
            i + 1,
            l.address().map_or("-".into(), |a: Ipv6Addr| a.to_string()),
            server_name(l.server_id(), &duids)
        );
    }

    step(start, "perfdhcp -6: 100 more clients at 100/s");
    let perf_node = node(&lab.link, "perf")?;
    let report = perfdhcp::run(&perf_node, IF, 100, 100, 10)?;
    println!(
        "    Solicits {} / Advertises {} / Requests {} / Replies {}",
        report.solicits_sent,
        report.advertises_received,
        report.requests_sent,
        report.replies_received
    );
    println!("    (perfdhcp takes the first Advertise, so both servers serve some of these)");

    for (i, s) in lab.servers.iter().enumerate() {
        step(start, &format!("dhcp6d stats of s{}", i + 1));
        print_stats(&s.stats_table()?);
    }

    step(start, "kill -9 s1, the preferred server");
    let skips: Vec<usize> = lab
        .clients
        .iter()
        .map(|c| c.events().map(|e| e.len()))
        .collect::<Result<_, _>>()?;
    let killed_at = now_epoch();
    lab.servers[0].kill()?;
    println!(
        "    clients renew at T1 ({t1}s) and get no answer; at T2 ({t2}s) they rebind and s2 answers.\n    \
         s2 never hands out s1's addresses: each client moves to an address from s2's pool."
    );
    let s2 = duids[1].clone();
    let deadline = Duration::from_secs(u64::from(valid) + 15);
    let mut worst = 0.0f64;
    for (i, (client, skip)) in lab.clients.iter_mut().zip(skips).enumerate() {
        let old = leases[i].address();
        let s2 = s2.clone();
        let moved: LeaseEvent = client.wait_event("a lease from s2", skip, deadline, move |e| {
            e.is_bound() && e.server_id().as_deref() == Some(s2.as_str()) && e.address() != old
        })?;
        let secs = moved.time - killed_at;
        worst = worst.max(secs);
        println!(
            "    c{}: {} -> {} (s2) after {secs:.1}s",
            i + 1,
            old.map_or("-".into(), |a| a.to_string()),
            moved.address().map_or("-".into(), |a| a.to_string())
        );
    }
    println!("    every client holds a lease from the survivor {worst:.1}s after the crash");

    step(start, "dhcp6d stats of s2 after the failover");
    print_stats(&lab.servers[1].stats_table()?);
    for c in &mut lab.clients {
        c.stop()?;
    }
    let packets = capture.finish()?;
    println!(
        "\n    {} DHCPv6 messages captured on the link",
        packets.len()
    );

    step(start, "tearing down (servers, clients, namespaces)");
    drop(perf_node);
    drop(lab);
    println!(
        "\ndone in {:.0}s: two dhcp6d servers, split prefixes (RFC 6853 §6.1), one crash, no client left without an address.",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
