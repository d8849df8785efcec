//! A SIGHUP reload while workers commit, renew and release on a small pool
//! (issue #12 item 1): when it is over, no address is bound to two clients
//! and every acknowledged change is in the live table.
//!
//! "Acknowledged" is what a client was told: the lease changes of a message
//! that got a Reply (the data plane sends that Reply once they are on disk).

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::core_harness::*;
use dhcp6d::protocol::server::Policy;
use dhcp6d::protocol::{
    Handler, LeaseChanges, LeaseOp, LeaseRecord, Server, Timestamp, WorkerLocal,
};
use dhcp6d::wire::MessageType;

/// 64 addresses for 96 clients: every address is fought over.
fn small_pool(preference: u8) -> String {
    format!(
        r#"
[server]
interfaces = ["eth0"]
preference = {preference}
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/122"]
"#
    )
}

const WORKERS: u32 = 4;
const CLIENTS_PER_WORKER: u32 = 24;
/// Messages each worker sends.
const OPS_PER_WORKER: u64 = 150_000;
/// Messages per simulated second, over all workers: the run spans
/// 4 × 150,000 / 256 ≈ 2,300 s, inside the 4,000 s valid lifetime, so
/// nothing expires and every binding is what some Reply said.
const OPS_PER_SECOND: u64 = 256;

fn with_addr(t: MessageType, n: u32, xid: u32, addr: Ipv6Addr) -> Vec<u8> {
    build(t, xid, |e| {
        e.client_id(&client_duid(n))?;
        e.server_id(SERVER_DUID)?;
        ia_na(e, 1, &[addr])
    })
}

/// What client `n` was last told: the address it holds and until when.
type Believed = HashMap<u32, Option<(Ipv6Addr, u64)>>;

fn worker(live: &Server, first: u32, clock: &AtomicU64) -> Believed {
    let mut believed: Believed = (first..first + CLIENTS_PER_WORKER)
        .map(|n| (n, None))
        .collect();
    let mut out = vec![0u8; 4096];
    let mut changes = LeaseChanges::default();
    // As a data plane worker does: with its own policy cache.
    let mut local = WorkerLocal::default();
    let mut rng = 0x9e37_79b9_u32.wrapping_mul(first + 1);
    for step in 0..OPS_PER_WORKER {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let n = first + rng % CLIENTS_PER_WORKER;
        // One clock for all workers: a binding one worker sees as live is
        // live for the others too.
        let now = T0 + clock.fetch_add(1, Ordering::Relaxed) / OPS_PER_SECOND;
        let xid = (step as u32) & 0xff_ffff;
        let msg = match believed[&n] {
            None => request(n, SERVER_DUID, None),
            Some((a, _)) if rng.is_multiple_of(3) => with_addr(MessageType::Release, n, xid, a),
            Some((a, _)) => with_addr(MessageType::Renew, n, xid, a),
        };
        let handled = live.handle_local(
            &mut local,
            &multicast_from_client(),
            &msg,
            Timestamp(now),
            &mut out,
            &mut changes,
        );
        if handled.result.is_err() {
            continue;
        }
        for r in changes.iter() {
            let slot = believed.get_mut(&n).expect("own client");
            match r.op {
                LeaseOp::Commit => *slot = Some((r.addr, r.valid_until)),
                LeaseOp::Release if slot.is_some_and(|(a, _)| a == r.addr) => *slot = None,
                _ => {}
            }
        }
    }
    believed
}

#[test]
fn a_reload_under_load_loses_no_change_and_binds_no_address_twice() {
    let settings = |p| config(&small_pool(p)).settings();
    let ifaces = [("eth0".to_string(), ETH0)];
    let policy = |p| Policy::new(&settings(p), SERVER_DUID.to_vec(), &ifaces).unwrap();
    let live = Arc::new(Server::with_policy(policy(100)));
    let clock = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicUsize::new(WORKERS as usize));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (live, clock, running) = (live.clone(), clock.clone(), running.clone());
            std::thread::spawn(move || {
                let b = worker(&live, w * CLIENTS_PER_WORKER, &clock);
                running.fetch_sub(1, Ordering::Relaxed);
                b
            })
        })
        .collect();
    let mut reloads = 0u32;
    while running.load(Ordering::Relaxed) > 0 {
        // As SIGHUP does (serve/mod.rs): a new policy, installed.
        live.install(policy(100 + (reloads % 2) as u8)).unwrap();
        reloads += 1;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut believed = Believed::new();
    for w in workers {
        believed.extend(w.join().expect("worker"));
    }

    let mut table: HashMap<Vec<u8>, LeaseRecord> = HashMap::new();
    live.for_each_binding(|r| {
        if r.op == LeaseOp::Commit {
            table.insert(r.duid().to_vec(), *r);
        }
    });
    let mut holders: HashMap<Ipv6Addr, Vec<u32>> = HashMap::new();
    let mut lost = Vec::new();
    for (&n, b) in &believed {
        let live_now = table.get(&client_duid(n)).map(|r| (r.addr, r.valid_until));
        if let Some((a, _)) = b {
            holders.entry(*a).or_default().push(n);
        }
        if live_now != *b {
            lost.push((n, *b, live_now));
        }
    }
    let twice: Vec<_> = holders.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty() && lost.is_empty(),
        "{} addresses acknowledged to two clients ({twice:?}); {} acknowledged changes not in the \
         live table (client, told, live): {lost:?}",
        twice.len(),
        lost.len()
    );
    assert!(reloads >= 2, "only {reloads} reloads ran during the load");
    assert_eq!(live.policy().preference(), 100 + ((reloads - 1) % 2) as u8);
    // The pool counter, rebuilt at every reload and kept by commits made
    // under either policy, still counts every binding once.
    assert_eq!(
        live.pool_usage()[0].used,
        table.len() as u64,
        "after {reloads} reloads"
    );
    assert!(
        believed.values().filter(|b| b.is_some()).count() > 0,
        "the load bound nothing: the test proves nothing"
    );
}
