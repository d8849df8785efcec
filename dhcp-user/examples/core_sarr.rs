//! Drives full Solicit/Advertise/Request/Reply exchanges through the protocol
//! core alone, for instruction counts under callgrind:
//!
//! ```sh
//! cargo build --release --example core_sarr
//! valgrind --tool=callgrind --toggle-collect='*run_sarrs*' target/release/examples/core_sarr 10000
//! ```
//! Instructions per SARR = the collected Ir / N. Messages are built before
//! the measured function, so only the server's work is counted.

use std::hint::black_box;

use dhcp6d::config::Config;
use dhcp6d::protocol::{Handler, Ingress, LeaseChanges, Server, Timestamp, WorkerLocal};
use dhcp6d::wire::{Encoder, MessageType, Xid};

const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
const CONFIG: &str = r#"
[server]
interfaces = ["eth0"]
preference = 255
[redundancy]
model = "identical-prefix"
allocation_key = "00112233445566778899aabbccddeeff"
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/64"]
dns_servers = ["2001:db8::53"]
"#;

/// The server the benchmark and this example use.
pub fn server() -> Server {
    let config = Config::from_toml(CONFIG, std::path::Path::new("core_sarr.toml")).expect("config");
    Server::new(
        &config.settings(),
        SERVER_DUID.to_vec(),
        &[("eth0".into(), 2)],
    )
    .expect("server")
}

fn duid(n: u32) -> [u8; 14] {
    let mut d = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x02, 0x11, 0, 0, 0, 0];
    d[10..].copy_from_slice(&n.to_be_bytes());
    d
}

/// A Solicit and the matching Request (naming the address the core will offer) of client `n`.
pub fn messages(n: u32, oracle: &Server) -> (Vec<u8>, Vec<u8>) {
    let build = |t: MessageType, addr: Option<std::net::Ipv6Addr>| {
        let mut buf = vec![0u8; 512];
        let mut e = Encoder::new(&mut buf);
        e.message_header(t, Xid::new(n)).unwrap();
        e.client_id(&duid(n)).unwrap();
        if t == MessageType::Request {
            e.server_id(SERVER_DUID).unwrap();
        }
        e.elapsed_time(0).unwrap();
        e.oro(&[23, 24]).unwrap();
        let m = e.begin_ia_na(1, 0, 0).unwrap();
        if let Some(a) = addr {
            e.ia_addr(a, 0, 0).unwrap();
        }
        e.end_option(m).unwrap();
        let len = e.finish().unwrap();
        buf.truncate(len);
        buf
    };
    let solicit = build(MessageType::Solicit, None);
    let mut out = [0u8; 1500];
    let mut ch = LeaseChanges::default();
    let h = oracle.handle(&ingress(), &solicit, Timestamp(1), &mut out, &mut ch);
    let len = h.result.expect("advertise").len;
    let adv = dhcp6d::wire::Message::decode(&out[..len]).expect("decodes");
    let addr = adv
        .options
        .ia_nas()
        .next()
        .and_then(|ia| ia.addrs().next())
        .map(|a| a.addr);
    (solicit, build(MessageType::Request, addr))
}

/// Where the messages come from.
pub fn ingress() -> Ingress {
    Ingress {
        ifindex: 2,
        src: "fe80::1".parse().unwrap(),
        src_port: dhcp6d::wire::CLIENT_PORT,
        dst_multicast: true,
    }
}

#[inline(never)]
fn run_sarrs(server: &Server, msgs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    let ingress = ingress();
    let mut out = [0u8; 1500];
    let mut changes = LeaseChanges::default();
    // As a data plane worker calls it: with its policy cache.
    let mut local = WorkerLocal::default();
    let mut bytes = 0;
    for (i, (solicit, request)) in msgs.iter().enumerate() {
        let now = Timestamp(1_700_000_000 + i as u64 / 1000);
        let a = server.handle_local(&mut local, &ingress, solicit, now, &mut out, &mut changes);
        bytes += a.result.map_or(0, |r| r.len);
        let r = server.handle_local(&mut local, &ingress, request, now, &mut out, &mut changes);
        bytes += r.result.map_or(0, |r| r.len);
        assert_eq!(changes.len(), 1, "the Request committed");
    }
    bytes
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let oracle = server();
    let msgs: Vec<_> = (0..n).map(|i| messages(i, &oracle)).collect();
    let s = server();
    let t = std::time::Instant::now();
    let bytes = black_box(run_sarrs(&s, &msgs));
    let el = t.elapsed();
    println!(
        "{n} SARRs, {bytes} reply bytes, {:.0} ns per SARR (wall clock; instructions: run under callgrind)",
        el.as_nanos() as f64 / f64::from(n)
    );
}
