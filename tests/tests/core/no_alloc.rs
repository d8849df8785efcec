//! Issue #4: "no allocation per packet on the Solicit and Request paths".
//! Counted by a global allocator on this thread, through `Server::handle`.

use crate::core_harness::*;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dhcp6d::protocol::{DropReason, Handler, LeaseChanges, Timestamp, WorkerLocal};
use dhcp6d::wire::MessageType;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn both_ias(t: MessageType, n: u32) -> Vec<u8> {
    build(t, n, |e| {
        e.client_id(&client_duid(n))?;
        if t != MessageType::Solicit {
            e.server_id(SERVER_DUID)?;
        }
        e.oro(&[23, 24, 82])?;
        ia_na(e, 1, &[])?;
        ia_pd(e, 2, &[])
    })
}

#[test]
fn solicit_and_request_paths_do_not_allocate() {
    let s = server(BASE);
    let ingress = multicast_from_client();
    let mut out = vec![0u8; 1500];
    let mut changes = LeaseChanges::default();
    // A server already holding bindings (20,000 clients × 2 IAs): the store's
    // growth is logarithmic, so a fresh one would be measuring start-up.
    for i in 100_000..120_000 {
        let m = both_ias(MessageType::Request, i);
        assert!(s
            .handle(&ingress, &m, Timestamp(T0), &mut out, &mut changes)
            .result
            .is_ok());
    }
    let n = 2000;
    let solicits: Vec<_> = (0..n).map(|i| both_ias(MessageType::Solicit, i)).collect();
    let requests: Vec<_> = (0..n).map(|i| both_ias(MessageType::Request, i)).collect();
    let mut handle = |m: &[u8]| {
        let h = s.handle(&ingress, m, Timestamp(T0), &mut out, &mut changes);
        assert!(h.result.is_ok());
    };
    // Solicit → Advertise: never allocates (it writes no state).
    assert_eq!(count(|| solicits.iter().for_each(|m| handle(m))), 0);
    // Request → Reply creating bindings: only the store's amortised growth
    // (a 256-slot chunk or an index doubling now and then), far below one per message.
    let growth = count(|| requests.iter().for_each(|m| handle(m)));
    eprintln!(
        "{growth} allocations for {} Requests creating bindings",
        requests.len()
    );
    assert!(
        growth * 20 < requests.len(),
        "{growth} allocations for {} Requests",
        requests.len()
    );
    // Request → Reply for existing bindings (retransmission, Renew-like): none.
    assert_eq!(count(|| requests.iter().for_each(|m| handle(m))), 0);
}

/// `limits.messages_per_second_per_source` through the worker entry point:
/// once a worker's bucket table exists (its first limited message), neither
/// admitting, refusing nor evicting allocates, with more sources than the
/// table holds.
#[test]
fn the_rate_limit_does_not_allocate_per_message() {
    let s = server(&format!(
        "{BASE}\n[limits]\nmessages_per_second_per_source = 2\n"
    ));
    let mut local = WorkerLocal::default();
    let mut out = vec![0u8; 1500];
    let mut changes = LeaseChanges::default();
    let mut ingress = multicast_from_client();
    let solicit = both_ias(MessageType::Solicit, 1);
    // The first limited message allocates the worker's table.
    let first = s.handle_local(
        &mut local,
        &ingress,
        &solicit,
        Timestamp(T0),
        &mut out,
        &mut changes,
    );
    assert!(first.result.is_ok());
    let mut limited = 0;
    let allocs = count(|| {
        // 20,000 sources (five times the table), each sending 6 messages:
        // 4 admitted (the burst), 2 refused.
        for n in 0..20_000u32 {
            ingress.src = std::net::Ipv6Addr::from(0xfe80_u128 << 112 | 1 << 32 | u128::from(n));
            for _ in 0..6 {
                let h = s.handle_local(
                    &mut local,
                    &ingress,
                    &solicit,
                    Timestamp(T0),
                    &mut out,
                    &mut changes,
                );
                if h.result == Err(DropReason::RateLimited) {
                    limited += 1;
                }
            }
        }
    });
    assert_eq!(allocs, 0);
    assert_eq!(limited, 2 * 20_000, "every source held to its burst");
}
