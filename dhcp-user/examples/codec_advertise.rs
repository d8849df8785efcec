//! Decode a Solicit and encode the Advertise for it with dhcp6d's codec, for
//! instruction counts under callgrind (`cargo xtask bench codec` runs it):
//!
//! ```sh
//! cargo build --release -p dhcp-user --example codec_advertise
//! valgrind --tool=callgrind --toggle-collect='*run_codec*' target/release/examples/codec_advertise 10000
//! ```
//! Instructions per message pair = the collected Ir / N. The criterion bench
//! (benches/codec.rs) uses the same functions against dhcproto.

use std::hint::black_box;
use std::net::Ipv6Addr;

use dhcp6d::wire::{code, status, AnyMessage, Encoder, MessageType, Xid};

pub const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa];
pub const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x77);
pub const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0x4200, 0, 0, 0, 0);
pub const DNS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53);

/// A Solicit as a typical client sends it: Client ID (DUID-LLT), IA_NA,
/// IA_PD, ORO, Elapsed Time, Rapid Commit.
pub fn solicit() -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut enc = Encoder::new(&mut buf);
    enc.message_header(MessageType::Solicit, Xid::new(0x00abcdef))
        .unwrap();
    enc.client_id(&[0, 1, 0, 1, 0x2a, 0xbb, 0xcc, 0xdd, 2, 0, 0, 0, 0, 1])
        .unwrap();
    let ia = enc.begin_ia_na(1, 0, 0).unwrap();
    enc.end_option(ia).unwrap();
    let pd = enc.begin_ia_pd(2, 0, 0).unwrap();
    enc.end_option(pd).unwrap();
    enc.oro(&[code::DNS_SERVERS, code::DOMAIN_LIST, code::SOL_MAX_RT])
        .unwrap();
    enc.elapsed_time(0).unwrap();
    enc.rapid_commit().unwrap();
    let n = enc.finish().unwrap();
    buf.truncate(n);
    buf
}

/// Ours: decode (validating everything), then write the Advertise.
pub fn ours(solicit: &[u8], out: &mut [u8]) -> usize {
    let AnyMessage::Message(msg) = AnyMessage::decode(solicit).unwrap() else {
        unreachable!()
    };
    let mut enc = Encoder::new(out);
    enc.message_header(MessageType::Advertise, msg.xid).unwrap();
    enc.client_id(msg.options.client_id().unwrap().as_bytes())
        .unwrap();
    enc.server_id(&SERVER_DUID).unwrap();
    for ia in msg.options.ia_nas() {
        let m = enc.begin_ia_na(ia.iaid, 1000, 2000).unwrap();
        let a = enc.begin_ia_addr(ADDR, 3000, 4000).unwrap();
        enc.status_code(status::SUCCESS, "ok").unwrap();
        enc.end_option(a).unwrap();
        enc.end_option(m).unwrap();
    }
    for pd in msg.options.ia_pds() {
        let m = enc.begin_ia_pd(pd.iaid, 1000, 2000).unwrap();
        enc.ia_prefix(3000, 4000, 56, PREFIX).unwrap();
        enc.end_option(m).unwrap();
    }
    let oro = msg.options.oro().unwrap();
    if oro.contains(code::DNS_SERVERS) {
        enc.dns_servers(&[DNS]).unwrap();
    }
    if oro.contains(code::DOMAIN_LIST) {
        enc.domain_list(&["example.net"]).unwrap();
    }
    enc.preference(255).unwrap();
    enc.finish().unwrap()
}

/// The measured loop: only the codec's work is inside it.
#[inline(never)]
fn run_codec(solicit: &[u8], out: &mut [u8], n: u64) -> usize {
    let mut bytes = 0;
    for _ in 0..n {
        bytes += ours(black_box(solicit), black_box(out));
    }
    bytes
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let sol = solicit();
    let mut out = [0u8; 1500];
    let bytes = run_codec(&sol, &mut out, n);
    println!("{n} Solicit decodes + Advertise encodes, {bytes} Advertise bytes");
}
