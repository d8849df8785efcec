//! Memory per binding at scale: commit N bindings (default 10 million) and
//! report resident-set growth and the store's own heap accounting.
//!
//! Then the pause a reload costs: [`Bindings::adopt`] of new pool spans
//! (every binding re-counted; commits wait meanwhile).
//!
//! `cargo run --release --example bindings_rss -- 10000000`

use std::net::Ipv6Addr;

use dhcp6d::protocol::bindings::{Bindings, ClientKey, PoolSpan, PoolSpans};
use dhcp6d::protocol::{LeaseKind, Timestamp};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm");
    pages * 4096
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let before = rss_bytes();
    let b = Bindings::new(PoolSpans::opaque(1), [9; 16]);
    let t = std::time::Instant::now();
    for i in 0..n {
        // DUID-LLT, 14 bytes: the common case.
        let mut duid = [0, 1, 0, 1, 0x2a, 0x2b, 0x2c, 0x2d, 0x02, 0x11, 0, 0, 0, 0];
        duid[10..].copy_from_slice(&i.to_be_bytes());
        let key = ClientKey {
            duid: &duid,
            iaid: 1,
            kind: LeaseKind::Na,
        };
        let addr =
            Ipv6Addr::from(0x2001_0db8_0001_0001_0000_0000_0000_0000u128 + u128::from(i) * 7919);
        b.commit(
            &key,
            addr,
            128,
            0,
            2_000_000_000,
            2_000_000_000,
            Timestamp(1),
        )
        .expect("free");
    }
    let el = t.elapsed();
    let after = rss_bytes();
    println!(
        "{n} bindings: RSS growth {:.1} MiB = {:.1} bytes/binding; store heap {:.1} bytes/binding; {:.0} ns/commit",
        (after - before) as f64 / 1048576.0,
        (after - before) as f64 / f64::from(n),
        b.heap_bytes() as f64 / f64::from(n),
        el.as_nanos() as f64 / f64::from(n),
    );
    let spans = PoolSpans::new(vec![PoolSpan {
        kind: LeaseKind::Na,
        first: 0x2001_0db8_0001_0001_0000_0000_0000_0000,
        last: 0x2001_0db8_0001_0001_ffff_ffff_ffff_ffff,
        len: 128,
    }]);
    let t = std::time::Instant::now();
    b.adopt(spans);
    println!(
        "reload re-count (Bindings::adopt) of {n} bindings: {:.1} ms; pool 0 now counts {}",
        t.elapsed().as_secs_f64() * 1e3,
        b.pool_used(0)
    );
}
