//! The control socket (CONTRACT.md, "Control socket"): newline-delimited
//! JSON, mode 0600, errors as `{"error": ...}` without harming the server;
//! the `stats`/`leases` commands of the binary against it; the Prometheus
//! endpoint checked by `promtool check metrics`.
//!
//! The server side here is the real control server with a fixed view of a
//! server (counters and leases), so every number below is known.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use dhcp6d::control::{
    ControlHandle, ControlLimits, JournalStats, LeaseEntry, LeaseFilter, LeaseList, PoolStats,
    ServerView, StatsSnapshot, XdpStats,
};
use dhcp6d::protocol::{Refusal, Refusals};
use dhcp6d::stats::{CounterTotals, DropReason, WorkerCounters};
use dhcp6d::wire::MessageType;

struct FixedServer {
    workers: Vec<WorkerCounters>,
    leases: Vec<LeaseEntry>,
}

impl FixedServer {
    fn new() -> FixedServer {
        let workers = vec![WorkerCounters::default(), WorkerCounters::default()];
        for _ in 0..3 {
            workers[0].received(MessageType::Solicit);
        }
        workers[1].received(MessageType::Solicit);
        workers[1].received(MessageType::Request);
        workers[0].sent(MessageType::Advertise);
        workers[1].dropped(DropReason::Malformed);
        let mut refused = Refusals::default();
        refused.add(Refusal::BindingsPerClient);
        refused.add(Refusal::BindingsPerClient);
        workers[0].refused(&refused);
        workers[1].refused(&refused);
        let lease = |lease: &str, kind: &str, duid: &str| LeaseEntry {
            kind: kind.into(),
            lease: lease.into(),
            duid: duid.into(),
            iaid: 7,
            preferred_until: 4_000_000_000,
            valid_until: 4_000_000_100,
            state: "active".into(),
        };
        FixedServer {
            workers,
            leases: vec![
                lease("2001:db8:1:1::5", "na", "000100010000000000000001"),
                lease("2001:db8:1:1::9", "na", "000100010000000000000002"),
                lease("2001:db8:100:200::/56", "pd", "000100010000000000000002"),
            ],
        }
    }
}

impl ServerView for FixedServer {
    fn stats(&self) -> StatsSnapshot {
        let t = CounterTotals::sum(&self.workers);
        StatsSnapshot {
            uptime_s: 5,
            io: "socket".into(),
            server_duid: "00010001aabbccdd".into(),
            preference: 255,
            model: "split-prefix".into(),
            rx: t.rx,
            tx: t.tx,
            dropped: t.dropped,
            refused: t.refused,
            leases: dhcp6d::control::LeaseCounts {
                addresses: 2,
                prefixes: 1,
                poisoned_locks: 1,
            },
            pools: vec![PoolStats {
                pool: "2001:db8:1:1::/65".into(),
                kind: "na".into(),
                capacity: "9223372036854775808".into(),
                used: 2,
            }],
            journal: JournalStats {
                records: 3,
                fsyncs: 2,
                bytes: 600,
                queue_full: 4,
            },
            xdp: XdpStats {
                redirected: 6,
                passed: 1,
                dropped: 0,
                worker_restarts: 2,
                not_ours: 5,
                no_socket: 7,
                beyond_queue_limit: 8,
                fallback_answered: 9,
                queues_without_worker: 16,
            },
            // The control server fills in its own refusal counters.
            control: Default::default(),
        }
    }

    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String> {
        let all: Vec<LeaseEntry> = self
            .leases
            .iter()
            .filter(|e| {
                let (addr, len) = match e.lease.split_once('/') {
                    Some((a, l)) => (a.parse().unwrap(), l.parse().unwrap()),
                    None => (e.lease.parse().unwrap(), 128),
                };
                filter.matches(&hex::decode(&e.duid).unwrap(), addr, len)
            })
            .cloned()
            .collect();
        Ok(LeaseList {
            total: all.len() as u64,
            truncated: all.len() > filter.limit,
            limit: filter.limit as u64,
            leases: all.into_iter().take(filter.limit).collect(),
            next: None,
        })
    }
}

fn start(name: &str, metrics: bool) -> (ControlHandle, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_control");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.sock"));
    let metrics = metrics.then(|| "127.0.0.1:0".parse().unwrap());
    let handle = ControlHandle::start(&path, metrics, Arc::new(FixedServer::new())).unwrap();
    (handle, path)
}

/// One connection, several request lines, one response line each.
struct Conn(BufReader<UnixStream>);

impl Conn {
    fn open(path: &PathBuf) -> Conn {
        Conn(BufReader::new(UnixStream::connect(path).unwrap()))
    }
    fn ask(&mut self, line: &[u8]) -> serde_json::Value {
        self.0.get_mut().write_all(line).unwrap();
        self.0.get_mut().write_all(b"\n").unwrap();
        let mut answer = String::new();
        self.0.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    }
}

#[test]
fn socket_is_private() {
    let (_h, path) = start("private", false);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn malformed_requests_get_an_error_object_and_the_server_lives_on() {
    let (_h, path) = start("malformed", false);
    let mut c = Conn::open(&path);
    let bad: [&[u8]; 7] = [
        b"not json",
        b"{\"command\":\"reboot\"}",
        b"{\"command\":\"leases\",\"duid\":\"xyz\"}",
        b"{\"command\":\"leases\",\"address\":\"2001:db8::g\"}",
        b"{\"command\":\"stats\",\"verbose\":true}",
        b"[1,2,3]",
        b"\xff\xfe{}",
    ];
    for line in bad {
        let v = c.ask(line);
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 1, "{v}");
        assert!(obj["error"].is_string(), "{v}");
    }
    assert_eq!(
        c.ask(b"{\"command\":\"reboot\"}")["error"],
        "unknown command \"reboot\" (known: \"stats\", \"leases\")"
    );
    // The same connection still answers.
    assert_eq!(c.ask(b"{\"command\":\"stats\"}")["preference"], 255);
    // A request longer than the limit is refused and that connection closed.
    let mut c2 = Conn::open(&path);
    let mut huge = vec![b'x'; dhcp6d::control::server::MAX_REQUEST + 10];
    huge.push(b'\n');
    // The server stops reading at the limit, answers and closes, so the end
    // of this write may meet a closed socket (EPIPE): that is the point.
    match c2.0.get_mut().write_all(&huge) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}"),
    }
    let mut answer = String::new();
    c2.0.read_line(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert!(v["error"].as_str().unwrap().contains("longer than"), "{v}");
    // Closed: end of stream, or ECONNRESET when the server closed with our
    // excess bytes unread (AF_UNIX reports that once the answer is read).
    c2.0.get_ref()
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut rest = String::new();
    match c2.0.read_to_string(&mut rest) {
        Ok(n) => assert_eq!(n, 0, "{rest}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // And a new connection is served, and shows every refusal counted.
    let stats = Conn::open(&path).ask(b"{\"command\":\"stats\"}");
    assert_eq!(stats["io"], "socket");
    assert_eq!(
        stats["control"]["socket"],
        serde_json::json!({"bad_request": 8, "too_long": 1, "busy": 0, "timeout": 0})
    );
}

/// Every key CONTRACT.md lists is in the stats response, counters summed
/// over the workers.
#[test]
fn stats_has_every_contract_key() {
    let (_h, path) = start("keys", false);
    let v = Conn::open(&path).ask(b"{\"command\":\"stats\"}");
    for key in [
        "uptime_s",
        "io",
        "server_duid",
        "preference",
        "model",
        "rx",
        "tx",
        "dropped",
        "leases",
        "pools",
        "journal",
        "xdp",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let nested: [(&str, &[&str]); 7] = [
        (
            "rx",
            &[
                "solicit",
                "request",
                "confirm",
                "renew",
                "rebind",
                "release",
                "decline",
                "information_request",
                "relay_forw",
            ],
        ),
        ("tx", &["advertise", "reply", "relay_repl"]),
        (
            "dropped",
            &[
                "malformed",
                "not_for_us",
                "no_client_id",
                "rate_limited",
                "other",
            ],
        ),
        ("refused", &["bindings_per_client", "max_bindings"]),
        ("leases", &["addresses", "prefixes"]),
        ("journal", &["records", "fsyncs", "bytes"]),
        (
            "xdp",
            &[
                "redirected",
                "passed",
                "dropped",
                "worker_restarts",
                "not_ours",
                "no_socket",
                "beyond_queue_limit",
                "fallback_answered",
                "queues_without_worker",
            ],
        ),
    ];
    for (obj, keys) in nested {
        for key in keys {
            assert!(v[obj].get(key).is_some(), "missing {obj}.{key}: {v}");
        }
    }
    for key in ["pool", "kind", "capacity", "used"] {
        assert!(v["pools"][0].get(key).is_some(), "missing pools[0].{key}");
    }
    assert_eq!(v["rx"]["solicit"], 4, "3 on worker 0 + 1 on worker 1");
    assert_eq!(v["dropped"]["malformed"], 1);
    assert_eq!(v["xdp"]["worker_restarts"], 2);
    assert_eq!(v["xdp"]["not_ours"], 5);
    assert_eq!(
        v["refused"]["bindings_per_client"], 4,
        "2 IAs on each worker"
    );
    assert_eq!(v["refused"]["max_bindings"], 0);
    assert_eq!(v["xdp"]["no_socket"], 7);
    assert_eq!(v["xdp"]["beyond_queue_limit"], 8);
    assert_eq!(v["xdp"]["fallback_answered"], 9);
    assert_eq!(v["xdp"]["queues_without_worker"], 16);
    assert_eq!(v["leases"]["poisoned_locks"], 1);
}

#[test]
fn leases_filters() {
    let (_h, path) = start("leases", false);
    let mut c = Conn::open(&path);
    let leases = |v: serde_json::Value| -> Vec<String> {
        v["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["lease"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(leases(c.ask(b"{\"command\":\"leases\"}")).len(), 3);
    assert_eq!(
        leases(c.ask(b"{\"command\":\"leases\",\"duid\":\"00:01:00:01:00:00:00:00:00:00:00:02\"}")),
        ["2001:db8:1:1::9", "2001:db8:100:200::/56"]
    );
    assert_eq!(
        leases(c.ask(b"{\"command\":\"leases\",\"address\":\"2001:db8:100:2ff::1\"}")),
        ["2001:db8:100:200::/56"]
    );
    assert_eq!(
        leases(c.ask(b"{\"command\":\"leases\",\"prefix\":\"2001:db8:1:1::/64\"}")),
        ["2001:db8:1:1::5", "2001:db8:1:1::9"]
    );
    let v = c.ask(b"{\"command\":\"leases\",\"limit\":1}");
    assert_eq!(
        (v["total"].as_u64(), v["truncated"].as_bool()),
        (Some(3), Some(true))
    );
}

fn dhcp6d(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dhcp6d"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn stats_and_leases_commands() {
    let (_h, path) = start("commands", false);
    let p = path.to_str().unwrap();
    let (code, stdout, stderr) = dhcp6d(&["stats", "--control", p, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["tx"]["advertise"], 1);

    let (code, table, _) = dhcp6d(&["stats", "--control", p]);
    assert_eq!(code, 0);
    assert!(table.starts_with(
        "dhcp6d up 5s  io socket  model split-prefix  preference 255\nserver duid 00010001aabbccdd\n"
    ));
    assert!(
        table.contains("\n  solicit                           4\n"),
        "{table}"
    );
    assert!(table.contains("\nleases: 2 addresses, 1 prefixes\n"));
    assert!(
        table.contains("\nWARNING: 1 binding-table locks found poisoned"),
        "{table}"
    );
    assert!(table.contains("journal: 3 records, 2 fsyncs, 600 bytes\n"));

    let (code, stdout, _) = dhcp6d(&[
        "leases",
        "--control",
        p,
        "--json",
        "--address",
        "2001:db8:1:1::5",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["leases"][0]["duid"], "000100010000000000000001");

    let (code, stdout, _) = dhcp6d(&["leases", "--control", p, "--prefix", "2001:db8:100::/40"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("2001:db8:100:200::/56"), "{stdout}");
    assert!(stdout.ends_with("\n1 bindings\n"), "{stdout}");
}

#[test]
fn watch_prints_rates() {
    let (_h, path) = start("watch", false);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dhcp6d"))
        .args([
            "stats",
            "--control",
            path.to_str().unwrap(),
            "--watch",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen_rate = false;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        // The second sample has a rate column: counters are fixed, so 0.0/s.
        if line.starts_with("  solicit") && line.trim_end().ends_with("0.0/s") {
            seen_rate = true;
            break;
        }
        line.clear();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen_rate);
}

#[test]
fn no_server_is_exit_1_with_the_cause() {
    let (code, _, stderr) = dhcp6d(&["stats", "--control", "/nonexistent/dhcp6d.sock"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("dhcp6d: cannot connect to /nonexistent/dhcp6d.sock: "),
        "{stderr}"
    );
    let (code, _, stderr) = dhcp6d(&["leases", "--duid", "zz"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "dhcp6d: --duid: \"zz\" is not hex (Invalid character 'z' at position 0)\n"
    );
}

/// The metrics endpoint speaks the Prometheus text format: `promtool check
/// metrics` (Debian package `prometheus`) must accept it. Fails if promtool
/// is missing.
#[test]
fn metrics_pass_promtool() {
    let (h, _path) = start("metrics", true);
    let addr = h.metrics_addr.unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.contains("dhcp6d_received_messages_total{type=\"solicit\"} 4\n"));
    assert!(
        body.contains("dhcp6d_xdp_worker_restarts_total 2\n"),
        "{body}"
    );
    assert!(body.contains("dhcp6d_xdp_not_ours_total 5\n"), "{body}");
    for line in [
        "dhcp6d_xdp_passed_without_worker_total{reason=\"no_socket\"} 7\n",
        "dhcp6d_xdp_passed_without_worker_total{reason=\"beyond_queue_limit\"} 8\n",
        "dhcp6d_xdp_fallback_answered_total 9\n",
        "dhcp6d_xdp_queues_without_worker 16\n",
    ] {
        assert!(body.contains(line), "{line}: {body}");
    }
    assert!(
        body.contains("dhcp6d_refused_ias_total{reason=\"bindings_per_client\"} 4\n"),
        "{body}"
    );
    assert!(
        body.contains("dhcp6d_binding_locks_poisoned_total 1\n"),
        "{body}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (apt package `prometheus`)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

/// The control server over a real binding table, paged as `serve` pages it.
struct TableServer(dhcp6d::protocol::bindings::Bindings);

impl TableServer {
    fn with(n: u32) -> TableServer {
        use dhcp6d::protocol::bindings::{Bindings, ClientKey, PoolSpans};
        let b = Bindings::new(PoolSpans::opaque(1), [4; 16]);
        for i in 0..n {
            let duid = [&[0, 4][..], &i.to_be_bytes()].concat();
            let key = ClientKey {
                duid: &duid,
                iaid: 1,
                kind: dhcp6d::protocol::LeaseKind::Na,
            };
            let addr = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
            let t = 4_000_000_000;
            b.commit(&key, addr, 128, 0, t, t, dhcp6d::protocol::Timestamp(0))
                .unwrap();
        }
        TableServer(b)
    }
}

impl ServerView for TableServer {
    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String> {
        dhcp6d::control::leases::page(&self.0, filter, 1_000, 77)
    }
}

/// `dhcp6d leases` on a table of 25,000: a limit of twenty million gets one
/// page of 10,000 that says so; the table says how to get the next page;
/// `--after` gets it; `--all` walks every binding once.
#[test]
fn leases_command_pages_a_big_table() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_control");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("paged.sock");
    let _h = ControlHandle::start(&path, None, Arc::new(TableServer::with(25_000))).unwrap();
    let p = path.to_str().unwrap();

    let (code, stdout, stderr) =
        dhcp6d(&["leases", "--control", p, "--json", "--limit", "20000000"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["leases"].as_array().unwrap().len(), 10_000);
    assert_eq!(
        (v["limit"].as_u64(), v["total"].as_u64()),
        (Some(10_000), Some(25_000))
    );
    assert_eq!(v["truncated"], true);

    let lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("2001:db8:"))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let (code, first, _) = dhcp6d(&["leases", "--control", p, "--limit", "3"]);
    assert_eq!(code, 0);
    let footer = first.lines().last().unwrap();
    let cursor = footer
        .strip_prefix("25000 bindings (3 shown; next page: --after ")
        .and_then(|r| r.strip_suffix(", or --all)"))
        .unwrap_or_else(|| panic!("{footer}"));
    let (code, second, _) = dhcp6d(&["leases", "--control", p, "--limit", "3", "--after", cursor]);
    assert_eq!(code, 0);
    let (first, second) = (lines(&first), lines(&second));
    assert_eq!((first.len(), second.len()), (3, 3));
    assert!(
        first.iter().all(|l| !second.contains(l)),
        "{first:?} {second:?}"
    );

    let (code, all, stderr) = dhcp6d(&["leases", "--control", p, "--all", "--limit", "4000"]);
    assert_eq!(code, 0, "{stderr}");
    let headers = all.lines().filter(|l| l.starts_with("lease ")).count();
    assert_eq!(headers, 1, "one header for every page");
    assert!(
        all.ends_with("\n25000 bindings\n"),
        "{}",
        all.lines().last().unwrap()
    );
    let mut listed = lines(&all);
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 25_000);

    let (code, _, stderr) = dhcp6d(&["leases", "--control", p, "--all", "--limit", "0"]);
    assert_eq!((code, stderr.contains("--all")), (2, true), "{stderr}");
    let (code, _, stderr) = dhcp6d(&["leases", "--control", p, "--after", "nope"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a cursor"), "{stderr}");
}

/// The control socket serves at most `connections` at once: one more is
/// told "busy" at once and closed (before, it waited unanswered for as long
/// as the others stayed open: forever, for an idle one). A connection that
/// sends no complete line (nothing, or half a request) is closed after the
/// request timeout. Each refusal is counted.
#[test]
fn control_connections_are_bounded_and_idle_ones_time_out() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_control");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bounded.sock");
    let limits = ControlLimits {
        connections: 4,
        request_timeout: std::time::Duration::from_millis(500),
        ..ControlLimits::default()
    };
    let _h = ControlHandle::start_with(&path, None, Arc::new(FixedServer::new()), limits).unwrap();
    let mut idle: Vec<BufReader<UnixStream>> = (0..4)
        .map(|_| BufReader::new(UnixStream::connect(&path).unwrap()))
        .collect();
    idle[0].get_mut().write_all(b"{\"command\":").unwrap();
    let line = |c: &mut BufReader<UnixStream>| -> String {
        c.get_ref()
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        c.read_line(&mut answer).unwrap();
        answer
    };
    let mut fifth = BufReader::new(UnixStream::connect(&path).unwrap());
    let busy = line(&mut fifth);
    assert!(
        busy.starts_with("{\"error\":\"busy: 4 control connections are open"),
        "{busy}"
    );
    assert_eq!(line(&mut fifth), "", "closed after the answer");
    for c in &mut idle {
        let answer = line(c);
        assert!(
            answer.contains("no complete request line in 500ms"),
            "{answer}"
        );
        assert_eq!(line(c), "", "closed after the answer");
    }
    let stats = Conn::open(&path).ask(b"{\"command\":\"stats\"}");
    assert_eq!(stats["control"]["socket"]["busy"], 1, "{stats}");
    assert_eq!(stats["control"]["socket"]["timeout"], 4, "{stats}");
}

/// Connections to `port` the server holds open: its end of established (or
/// half-closed) loopback TCP connections, accepted (an inode: a descriptor
/// of this process; one still in the listen backlog has none).
fn held_by_server(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16) == Ok(port)
                && (f[3] == "01" || f[3] == "08")
                && f[9] != "0"
        })
        .count()
}

fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    Ok(response)
}

/// Idle TCP connections to `/metrics` cannot pile up: 200 of them leave the
/// server holding at most 32 (before, it held all 200, 5 s each, so a loop
/// of them ran it out of descriptors); the rest are answered 503 and closed
/// at once and counted; the 32 are cut off after the hold (408, counted),
/// and a scrape then works and shows the counts. The hold is 4 s here
/// (2 s by default) so that the steps before it cannot outlast it.
#[test]
fn metrics_connections_are_bounded_and_refusals_counted() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_control");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics_bounded.sock");
    let limits = ControlLimits {
        metrics_connections: 32,
        metrics_timeout: std::time::Duration::from_secs(4),
        ..ControlLimits::default()
    };
    let metrics = Some("127.0.0.1:0".parse().unwrap());
    let h =
        ControlHandle::start_with(&path, metrics, Arc::new(FixedServer::new()), limits).unwrap();
    let addr = h.metrics_addr.unwrap();
    let stats = || Conn::open(&path).ask(b"{\"command\":\"stats\"}")["control"]["metrics"].clone();
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    // Watch what the server holds until it has taken all 200 from its
    // backlog, and a little longer. One over the 32 is the one being
    // refused at that instant (accepted, not closed yet).
    let mut most = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut settled = 0;
    while settled < 10 {
        most = most.max(held_by_server(addr.port()));
        assert!(most <= 33, "the server held {most} connections at once");
        assert!(std::time::Instant::now() < deadline, "{}", stats());
        if stats()["busy"] == 168 {
            settled += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(held_by_server(addr.port()), 32);
    // A scrape while the 32 are held is refused (503, or a reset when its
    // request met the closed socket), and counted either way.
    if let Ok(r) = scrape(addr) {
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
    }
    assert_eq!(stats()["busy"], 169);
    // The 32 are cut off at the end of their hold; then a scrape is served.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stats()["timeout"] != 32 {
        assert!(std::time::Instant::now() < deadline, "{}", stats());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(held_by_server(addr.port()), 0);
    let body = scrape(addr).unwrap();
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("dhcp6d_control_refused_total{endpoint=\"metrics\",reason=\"busy\"} 169\n"),
        "{body}"
    );
    assert!(
        body.contains("dhcp6d_control_refused_total{endpoint=\"metrics\",reason=\"timeout\"} 32\n"),
        "{body}"
    );
    drop(idle);
}
