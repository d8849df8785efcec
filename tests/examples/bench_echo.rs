//! `cargo xtask bench echo` (run through `xtask::bench_echo`): on one veth
//! pair between two network namespaces, in one run, the same closed-loop UDP
//! generator measures
//!   1. the raw AF_XDP echo ceiling (our XDP program + a bare ring loop that
//!      swaps addresses and recomputes the UDP checksum),
//!   2. the dhcp6d AF_XDP data path with a trivial echo handler,
//!   3. the dhcp6d socket mode with the same handler,
//!
//! and prints replies/s and ratios. BENCH_ECHO_DEBUG=1 also prints sent,
//! replies and window resets per measurement.
//!
//! Known issue: on the 2-core test machine the bare loop in
//! `raw_echo_in` measures about half the dhcp6d AF_XDP path, with no loss
//! (sent == replies), for a reason not yet found; until it is, the "ceiling"
//! line is a lower bound, not a ceiling.
//! Arguments: `[SECONDS_PER_MODE]` (default 3;
//! two interleaved rounds of the three modes, about 20 s in all).
#[path = "../tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::net::{Ipv6Addr, UdpSocket};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::frame::udp6_checksum;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::xdp::LoadedXdp;
use dhcp6d::dataplane::{start, DataplaneConfig};
use xdpilone::xdp::XdpDesc;
use xdpilone::{IfInfo, Socket, SocketConfig, Umem, UmemConfig};

/// Requests kept in flight by the generator.
const WINDOW: usize = 64;
/// Rounds of the three modes; the best rate of each counts.
const ROUNDS: u32 = 2;
/// A small Solicit-sized payload (type 1 = Solicit, then filler).
const PAYLOAD: [u8; 20] = [
    1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 14, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
];

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dur = Duration::from_secs(secs);
    let lab = Lab::new();
    // Full checksums from the generator's kernel (no offload on the veth).
    lab.client.exec(&["ethtool", "-K", CLIENT_IF, "tx", "off"]);

    // Interleaved rounds, best of each: the machine is shared, and a
    // background burst should not decide the ratio.
    let (mut raw, mut xdp, mut sock) = (0f64, 0f64, 0f64);
    for _ in 0..ROUNDS {
        raw = raw.max(measure_raw(&lab, dur));
        xdp = xdp.max(measure_dhcp6d(&lab, IoMode::Xdp, dur));
        sock = sock.max(measure_dhcp6d(&lab, IoMode::Socket, dur));
    }
    println!("bench echo: best of {ROUNDS} rounds of {secs} s per mode, {WINDOW} requests in flight, {}-byte DHCPv6 payload, one veth pair", PAYLOAD.len());
    println!("  raw AF_XDP echo (ceiling) {raw:>10.0} replies/s");
    println!(
        "  dhcp6d AF_XDP data path   {xdp:>10.0} replies/s  = {:.2} x ceiling",
        xdp / raw
    );
    println!(
        "  dhcp6d socket mode        {sock:>10.0} replies/s  = {:.2} x ceiling",
        sock / raw
    );
    println!("  AF_XDP / socket mode      {:.2}", xdp / sock);
}

fn measure_raw(lab: &Lab, dur: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let server = lab.server.name.clone();
    let echo = std::thread::spawn(move || raw_echo_in(&server, &s2));
    // Let the raw loop attach before traffic starts (the warm-up retries anyway).
    std::thread::sleep(Duration::from_millis(200));
    let rate = generate(lab, dur);
    stop.store(true, Ordering::Relaxed);
    echo.join().expect("raw echo thread");
    rate
}

fn measure_dhcp6d(lab: &Lab, io: IoMode, dur: Duration) -> f64 {
    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], io);
        cfg.pin_workers = false;
        start(
            &cfg,
            Arc::new(EchoHandler),
            Arc::new(ManualDurability::immediate()),
        )
        .expect("start dhcp6d data plane")
    });
    let rate = generate(lab, dur);
    dp.stop();
    rate
}

/// Closed loop from the client namespace, as a relay agent (port 547) so
/// every responder answers to the same socket: keep WINDOW requests in
/// flight, count replies per second over `dur`.
fn generate(lab: &Lab, dur: Duration) -> f64 {
    lab.client.run(|| {
        let sock = UdpSocket::bind(format!("[{CLIENT_GLOBAL}]:547")).expect("bind generator");
        sock.connect(format!("[{SERVER_GLOBAL}]:547")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 2048];
        // Warm-up: neighbour discovery and the first reply.
        let warm = Instant::now();
        loop {
            sock.send(&PAYLOAD).unwrap();
            if sock.recv(&mut buf).is_ok() {
                break;
            }
            assert!(
                warm.elapsed() < Duration::from_secs(5),
                "no reply during warm-up"
            );
        }
        while sock.recv(&mut buf).is_ok() {}
        sock.set_nonblocking(true).unwrap();
        let mut in_flight = 0usize;
        let mut replies = 0u64;
        let mut stalls = 0u32;
        let mut sent = 0u64;
        let mut last_progress = Instant::now();
        let start = Instant::now();
        while start.elapsed() < dur {
            while in_flight < WINDOW {
                if sock.send(&PAYLOAD).is_err() {
                    break;
                }
                sent += 1;
                in_flight += 1;
            }
            let mut got = false;
            while let Ok(n) = sock.recv(&mut buf) {
                if n > 0 && buf[0] == 2 {
                    replies += 1;
                    in_flight = in_flight.saturating_sub(1);
                    got = true;
                }
            }
            if got {
                last_progress = Instant::now();
            } else if last_progress.elapsed() > Duration::from_millis(20) {
                // Lost requests would shrink the window forever: refill it.
                in_flight = 0;
                stalls += 1;
                last_progress = Instant::now();
            } else {
                let mut pfd = libc::pollfd {
                    fd: sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1) };
            }
        }
        if std::env::var_os("BENCH_ECHO_DEBUG").is_some() {
            eprintln!("  ({sent} sent, {replies} replies, {stalls} window resets after 20 ms without a reply)");
        }
        replies as f64 / start.elapsed().as_secs_f64()
    })
}

/// The ceiling: the same XDP program and an AF_XDP socket on queue 0, with
/// the least possible work per frame (swap MACs, IPv6 addresses and UDP
/// ports, recompute the UDP checksum, send back from the same frame).
fn raw_echo_in(netns: &str, stop: &AtomicBool) {
    let path = format!("/run/netns/{netns}");
    let f = std::fs::File::open(&path).expect("open netns");
    // SAFETY: setns for this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
    const FRAME: u32 = 4096;
    const FRAMES: u32 = 2048;
    let len = (FRAME * FRAMES) as usize;
    // SAFETY: anonymous mapping, unmapped at the end after the socket is gone.
    let area = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    assert_ne!(area, libc::MAP_FAILED);
    let base = area.cast::<u8>();
    {
        let region = NonNull::slice_from_raw_parts(NonNull::new(base).unwrap(), len);
        // SAFETY: page-aligned mapping that outlives the UMEM (inner scope).
        let config = UmemConfig {
            fill_size: 1024,
            complete_size: 1024,
            frame_size: FRAME,
            headroom: 0,
            flags: 0,
        };
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
                    rx_size: NonZeroU32::new(1024),
                    tx_size: NonZeroU32::new(1024),
                    bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
                },
            )
            .unwrap();
        let mut rx = user.map_rx().unwrap();
        let mut tx = user.map_tx().unwrap();
        umem.bind(&user).unwrap();
        let mut prog = LoadedXdp::load().expect("load XDP program");
        prog.bind_socket(0, rx.as_raw_fd()).unwrap();
        prog.attach(SERVER_IF).unwrap();
        let mut free: Vec<u64> = (0..u64::from(FRAMES))
            .map(|i| i * u64::from(FRAME))
            .collect();
        let mut batch = Vec::with_capacity(64);
        let mut idle_rounds = 0u32;
        while !stop.load(Ordering::Relaxed) {
            {
                let mut c = fq.complete(1024);
                while let Some(a) = c.read() {
                    free.push(a & !u64::from(FRAME - 1));
                }
                c.release();
            }
            {
                let mut w = fq.fill(free.len() as u32);
                let n = w.insert(free.iter().copied()) as usize;
                w.commit();
                free.drain(..n);
            }
            {
                let mut r = rx.receive(64);
                while let Some(d) = r.read() {
                    batch.push(d);
                }
                r.release();
            }
            if batch.is_empty() && idle_rounds < 32 {
                // Same adaptive wait as the dhcp6d workers: spin a little, then sleep.
                idle_rounds += 1;
                std::hint::spin_loop();
                continue;
            }
            if batch.is_empty() {
                let mut pfd = libc::pollfd {
                    fd: rx.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 10) };
                continue;
            }
            idle_rounds = 0;
            for d in &batch {
                // SAFETY: the frame at d.addr is ours until it goes on TX.
                let f = unsafe {
                    std::slice::from_raw_parts_mut(base.add(d.addr as usize), d.len as usize)
                };
                swap_for_echo(f);
            }
            let mut w = tx.transmit(batch.len() as u32);
            let n = w.insert(batch.iter().map(|d| XdpDesc {
                addr: d.addr,
                len: d.len,
                options: 0,
            })) as usize;
            w.commit();
            drop(w);
            for d in &batch[n..] {
                free.push(d.addr & !u64::from(FRAME - 1));
            }
            batch.clear();
            if tx.needs_wakeup() {
                tx.wake();
            }
        }
    }
    // SAFETY: the socket and UMEM were dropped with the scope above.
    unsafe { libc::munmap(area, len) };
}

/// Untagged Ethernet + IPv6 (no extension headers) + UDP, as the generator sends.
fn swap_for_echo(f: &mut [u8]) {
    if f.len() < 62 {
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
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let udp_len = usize::from(u16::from_be_bytes([f[58], f[59]])).min(f.len() - 54);
    f[60] = 0;
    f[61] = 0;
    let sum = udp6_checksum(src, dst, &f[54..54 + udp_len]);
    f[60..62].copy_from_slice(&sum.to_be_bytes());
}
