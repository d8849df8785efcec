//! The ceiling: the dhcp6d worker's I/O pattern with the least possible work
//! per frame. Same XDP program, same UMEM and ring sizes, same batch, same
//! order of ring operations per round (completions, fill, RX, TX + wake-up),
//! the same LIFO free list, replies the TX ring cannot take kept for the next
//! round, the same time-based spin-then-poll policy
//! (`dhcp6d::dataplane::idle`) and the same CPU; only the per-frame work is
//! smaller: swap MACs, IPv6 addresses and UDP ports, set the message type,
//! recompute the UDP checksum, send back from the same frame.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use dhcp6d::dataplane::frame::udp6_checksum;
use dhcp6d::dataplane::idle::IdleSpin;
use xdpilone::xdp::XdpDesc;
use xdpilone::{IfInfo, Socket, SocketConfig, Umem, UmemConfig};

use crate::dataplane_common::{ifindex, SERVER_IF};

// The dhcp6d worker's sizes, taken from it so the two cannot drift apart.
use dhcp6d::dataplane::afxdp::{
    Area, BATCH, FRAME_SIZE as FRAME, NUM_FRAMES as FRAMES, RING_SIZE as RING,
};
/// The dhcp6d worker's poll() timeout when idle.
const IDLE_POLL_MS: i32 = 100;

/// Run the echo on queue 0 of `SERVER_IF` until `stop`; call it on a thread
/// that is already in the server namespace and on the worker's CPU. The
/// socket's fd goes to `bound`, whose receiver puts it into the XskMap and
/// attaches the program from another, unpinned thread, as `dhcp6d` does.
pub fn echo(stop: &AtomicBool, spin_budget: Duration, bound: SyncSender<i32>) {
    let len = (FRAME * FRAMES) as usize;
    let area = Area::new(len).expect("UMEM mapping");
    let base = area.region().as_ptr().cast::<u8>();
    {
        let region = area.region();
        let config = UmemConfig {
            fill_size: RING,
            complete_size: RING,
            frame_size: FRAME,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: page-aligned mapping that outlives the UMEM (inner scope).
        let umem = unsafe { Umem::new(config, region) }.expect("umem");
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex(SERVER_IF)).unwrap();
        info.set_queue(0);
        let sock = Socket::with_shared(&info, &umem).unwrap();
        let mut fq = umem.fq_cq(&sock).unwrap();
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: NonZeroU32::new(RING),
                    tx_size: NonZeroU32::new(RING),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .unwrap();
        let mut rx = user.map_rx().unwrap();
        let mut tx = user.map_tx().unwrap();
        bind_retrying(&umem, &user);
        bound.send(rx.as_raw_fd()).expect("report the socket");
        let mut free: Vec<u64> = (0..u64::from(FRAMES))
            .rev()
            .map(|i| i * u64::from(FRAME))
            .collect();
        let mut batch: Vec<XdpDesc> = Vec::with_capacity(BATCH);
        let mut txq: Vec<XdpDesc> = Vec::with_capacity(FRAMES as usize);
        let mut idle = IdleSpin::with_budget(spin_budget, Instant::now());
        // Diagnostics (BENCH_ECHO_DEBUG): how the loop spent its rounds.
        let (mut rounds, mut busy, mut frames) = (0u64, 0u64, 0u64);
        let (mut sleeps, mut wakes, mut left, mut sleep_ns) = (0u64, 0u64, 0u64, 0u128);
        while !stop.load(Ordering::Relaxed) {
            {
                let mut c = fq.complete(RING);
                while let Some(a) = c.read() {
                    free.push(a & !u64::from(FRAME - 1));
                }
                c.release();
            }
            if !free.is_empty() {
                let mut w = fq.fill(free.len() as u32);
                let take = (w.capacity() as usize).min(free.len());
                let start = free.len() - take;
                let n = w.insert(free[start..].iter().copied()) as usize;
                w.commit();
                free.truncate(free.len() - n);
            }
            {
                let mut r = rx.receive(BATCH as u32);
                while let Some(d) = r.read() {
                    batch.push(d);
                }
                r.release();
            }
            let got = !batch.is_empty();
            rounds += 1;
            if got {
                busy += 1;
                frames += batch.len() as u64;
            }
            if got {
                for d in &mut batch {
                    // SAFETY: the frame at d.addr is ours until it goes on TX.
                    let f = unsafe {
                        std::slice::from_raw_parts_mut(base.add(d.addr as usize), d.len as usize)
                    };
                    swap_for_echo(f);
                    d.options = 0;
                }
                txq.append(&mut batch);
            }
            if !txq.is_empty() {
                // What the TX ring has no room for stays queued for the next
                // round, as in the dhcp6d worker: an echo must not lose replies
                // (a lost one stalls the generator's window).
                let mut w = tx.transmit(txq.len() as u32);
                let n = w.insert(txq.iter().copied()) as usize;
                w.commit();
                drop(w);
                txq.drain(..n);
                if tx.needs_wakeup() {
                    tx.wake();
                    wakes += 1;
                    if tx.pending() > 0 {
                        left += 1;
                    }
                }
            }
            let sleep = idle.should_sleep(Instant::now(), got);
            if !sleep && !got {
                std::hint::spin_loop();
            }
            if sleep && txq.is_empty() {
                let mut pfd = libc::pollfd {
                    fd: rx.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let t = Instant::now();
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, IDLE_POLL_MS) };
                sleeps += 1;
                sleep_ns += t.elapsed().as_nanos();
            }
        }
        if std::env::var_os("BENCH_ECHO_DEBUG").is_some() {
            eprintln!(
                "    raw: {frames} frames in {busy} busy rounds of {rounds}, {sleeps} sleeps in poll() \
                 (avg {} us), {wakes} TX kicks ({left} left frames on the ring)",
                sleep_ns / u128::from(sleeps.max(1)) / 1000
            );
        }
    }
    // The socket and UMEM were dropped with the scope above; `area` unmaps.
    drop(area);
}

/// Binding a queue fails with EBUSY while the previous measurement's socket
/// is still being released by the kernel (deferred after close): retry.
fn bind_retrying(umem: &Umem, user: &xdpilone::User) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match umem.bind(user) {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("bind AF_XDP socket to {SERVER_IF} queue 0: {e:?}"),
        }
    }
}

/// Untagged Ethernet + IPv6 (no extension headers) + UDP, as the generator sends.
fn swap_for_echo(f: &mut [u8]) {
    if f.len() < 63 {
        return;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    for i in 0..16 {
        f.swap(22 + i, 38 + i);
    }
    f.swap(54, 56);
    f.swap(55, 57);
    f[62] = 2;
    let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let udp_len = usize::from(u16::from_be_bytes([f[58], f[59]])).min(f.len() - 54);
    f[60] = 0;
    f[61] = 0;
    let sum = udp6_checksum(src, dst, &f[54..54 + udp_len]);
    f[60..62].copy_from_slice(&sum.to_be_bytes());
}
