//! The protocol core alone: Solicit→Advertise and Request→Reply, ns/op.
//! (`cargo bench -p dhcp-user --bench core`; instruction counts: see
//! examples/core_sarr.rs.)

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dhcp6d::protocol::{Handler, LeaseChanges, Timestamp};

#[path = "../examples/core_sarr.rs"]
#[allow(dead_code)] // its main() is the callgrind driver, unused here
mod sarr;

fn core(c: &mut Criterion) {
    let oracle = sarr::server();
    // Distinct clients, so Request→Reply always creates a new binding (the costly path).
    let msgs: Vec<_> = (0..20_000).map(|i| sarr::messages(i, &oracle)).collect();
    let ingress = sarr::ingress();
    let mut g = c.benchmark_group("core");
    g.measurement_time(Duration::from_secs(5));

    let server = sarr::server();
    g.bench_function("solicit_advertise", |b| {
        let mut out = [0u8; 1500];
        let mut ch = LeaseChanges::default();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % msgs.len();
            server.handle(&ingress, &msgs[i].0, Timestamp(1), &mut out, &mut ch)
        })
    });

    g.bench_function("request_reply_new_binding", |b| {
        b.iter_custom(|iters| {
            // A fresh server for every pass over the clients (built outside the
            // timed part), so every Request creates a binding.
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(msgs.len());
                let server = sarr::server();
                let mut out = [0u8; 1500];
                let mut ch = LeaseChanges::default();
                let start = Instant::now();
                for (_, request) in &msgs[..n] {
                    std::hint::black_box(server.handle(
                        &ingress,
                        request,
                        Timestamp(1),
                        &mut out,
                        &mut ch,
                    ));
                }
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });

    let server = sarr::server();
    g.bench_function("request_reply_existing_binding", |b| {
        let mut out = [0u8; 1500];
        let mut ch = LeaseChanges::default();
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1000;
            server.handle(&ingress, &msgs[i].1, Timestamp(1), &mut out, &mut ch)
        })
    });
    g.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
