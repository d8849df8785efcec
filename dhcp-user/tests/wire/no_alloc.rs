//! The codec's hot path allocates nothing: decoding a Solicit or Request and
//! encoding the Advertise or Reply (direct and relayed) runs with zero heap
//! allocations, counted by a global allocator on this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv6Addr;

use dhcp6d::wire::{status, AnyMessage, Encoder, Message, MessageType, Xid};

struct Counting;

thread_local! {
    // `const` initialisation: reading it never allocates.
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

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

const CLIENT_DUID: [u8; 14] = [0, 1, 0, 1, 0x2a, 0xbb, 0xcc, 0xdd, 2, 0, 0, 0, 0, 1];
const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa];

/// A client message of `t` with Client ID, IA_NA, IA_PD, ORO, Elapsed Time
/// (and Server ID for a Request), optionally inside one Relay-forw.
fn client_message(t: MessageType, relayed: bool, out: &mut [u8]) -> usize {
    let mut enc = Encoder::new(out);
    let relay = if relayed {
        enc.relay_header(
            MessageType::RelayForw,
            0,
            "2001:db8:1::1".parse().unwrap(),
            "fe80::1".parse().unwrap(),
        )
        .unwrap();
        enc.interface_id(b"ge-0/0/1").unwrap();
        Some(enc.begin_relay_msg().unwrap())
    } else {
        None
    };
    enc.message_header(t, Xid::new(0x010203)).unwrap();
    enc.client_id(&CLIENT_DUID).unwrap();
    if t == MessageType::Request {
        enc.server_id(&SERVER_DUID).unwrap();
    }
    let ia = enc.begin_ia_na(1, 0, 0).unwrap();
    enc.end_option(ia).unwrap();
    let pd = enc.begin_ia_pd(2, 0, 0).unwrap();
    enc.end_option(pd).unwrap();
    enc.oro(&[23, 24, 82]).unwrap();
    enc.elapsed_time(0).unwrap();
    if let Some(m) = relay {
        enc.end_option(m).unwrap();
    }
    enc.finish().unwrap()
}

/// What a server does per packet: decode, read every field it needs, and
/// write the answer (inside a Relay-repl when the request was relayed).
fn serve(request: &[u8], out: &mut [u8], answer: MessageType) -> usize {
    let decoded = AnyMessage::decode(request).unwrap();
    let (msg, relay): (Message<'_>, _) = match decoded {
        AnyMessage::Message(m) => (m, None),
        AnyMessage::Relay(r) => (r.innermost().unwrap(), Some(r)),
    };
    let client_id = msg.options.client_id().unwrap();
    let dns: [Ipv6Addr; 2] = [
        "2001:db8::53".parse().unwrap(),
        "2001:db8::54".parse().unwrap(),
    ];
    let mut enc = Encoder::new(out);
    let relay_mark = match relay {
        Some(r) => {
            enc.relay_header(
                MessageType::RelayRepl,
                r.hop_count,
                r.link_address,
                r.peer_address,
            )
            .unwrap();
            if let Some(id) = r.interface_id() {
                enc.interface_id(id).unwrap();
            }
            Some(enc.begin_relay_msg().unwrap())
        }
        None => None,
    };
    enc.message_header(answer, msg.xid).unwrap();
    enc.client_id(client_id.as_bytes()).unwrap();
    enc.server_id(&SERVER_DUID).unwrap();
    for ia in msg.options.ia_nas() {
        let m = enc.begin_ia_na(ia.iaid, 1000, 2000).unwrap();
        let a = enc
            .begin_ia_addr("2001:db8:1::77".parse().unwrap(), 3000, 4000)
            .unwrap();
        enc.status_code(status::SUCCESS, "assigned").unwrap();
        enc.end_option(a).unwrap();
        enc.end_option(m).unwrap();
    }
    for pd in msg.options.ia_pds() {
        let m = enc.begin_ia_pd(pd.iaid, 1000, 2000).unwrap();
        enc.ia_prefix(3000, 4000, 56, "2001:db8:100::".parse().unwrap())
            .unwrap();
        enc.end_option(m).unwrap();
    }
    if let Some(oro) = msg.options.oro() {
        if oro.contains(23) {
            enc.dns_servers(&dns).unwrap();
        }
        if oro.contains(24) {
            enc.domain_list(&["example.net"]).unwrap();
        }
    }
    if answer == MessageType::Advertise {
        enc.preference(255).unwrap();
    }
    if let Some(m) = relay_mark {
        enc.end_option(m).unwrap();
    }
    enc.finish().unwrap()
}

/// Solicit→Advertise and Request→Reply, direct and relayed: zero allocations.
#[test]
fn decode_and_encode_allocate_nothing() {
    let mut req = [0u8; 1500];
    let mut out = [0u8; 1500];
    for (t, answer) in [
        (MessageType::Solicit, MessageType::Advertise),
        (MessageType::Request, MessageType::Reply),
    ] {
        for relayed in [false, true] {
            let n = client_message(t, relayed, &mut req);
            let mut len = 0;
            let allocs = allocations_during(|| len = serve(&req[..n], &mut out, answer));
            assert_eq!(
                allocs, 0,
                "{t:?} relayed={relayed}: heap allocations on the hot path"
            );
            // The answer is a real, decodable message of the right type.
            let reply = AnyMessage::decode(&out[..len]).unwrap();
            let inner = match reply {
                AnyMessage::Message(m) => m,
                AnyMessage::Relay(r) => r.innermost().unwrap(),
            };
            assert_eq!(inner.msg_type, answer);
            assert_eq!(inner.options.ia_nas().count(), 1);
            assert_eq!(inner.options.dns_servers().unwrap().iter().count(), 2);
        }
    }
    // The counter itself works: a Vec allocation is seen.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}
