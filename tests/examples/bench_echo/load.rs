//! The closed-loop generator and what each measurement records: replies/s
//! and the CPU the generator, the responder and the whole machine used.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::dataplane_common::{Lab, CLIENT_GLOBAL, SERVER_GLOBAL};
use dhcp6d::wire::SERVER_PORT;

/// Requests kept in flight by the generator.
pub const WINDOW: usize = 64;
/// A small Solicit-sized payload (type 1 = Solicit, then filler).
pub const PAYLOAD: [u8; 20] = [
    1, 0xaa, 0xbb, 0xcc, 0, 1, 0, 14, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
];

/// One measurement. CPU shares are of one CPU (1.0 = a whole CPU), the
/// machine's of all CPUs.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub rate: f64,
    pub generator_cpu: f64,
    pub responder_cpu: f64,
    pub machine_busy: f64,
}

impl Measured {
    pub const NONE: Measured = Measured {
        rate: 0.0,
        generator_cpu: 0.0,
        responder_cpu: 0.0,
        machine_busy: 0.0,
    };

    /// The measurement with the higher rate.
    pub fn best(self, other: Measured) -> Measured {
        if other.rate > self.rate {
            other
        } else {
            self
        }
    }
}

/// Nanoseconds on CPU of this process's threads named `prefix*`.
fn threads_cpu_ns(prefix: &str) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            total += first_field(&p.join("schedstat"));
        }
    }
    total
}

fn first_field(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (busy, total) jiffies of all CPUs from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    (total - cpu[3] - cpu[4], total)
}

/// The generator's socket, in the client namespace (run inside it), pinned to
/// `cpu` if given, as a relay agent (port 547) so every responder answers to
/// it; warmed up (neighbour discovery and a first reply: the responder may
/// still be attaching), drained and non-blocking. Also a receive buffer.
fn warmed_socket(cpu: Option<usize>) -> (UdpSocket, [u8; 2048]) {
    if let Some(cpu) = cpu {
        crate::pin(cpu);
    }
    let sock = UdpSocket::bind(format!("[{CLIENT_GLOBAL}]:{SERVER_PORT}")).expect("bind generator");
    sock.connect(format!("[{SERVER_GLOBAL}]:{SERVER_PORT}"))
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 2048];
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
    (sock, buf)
}

/// Closed loop from the client namespace, as a relay agent (port 547) so
/// every responder answers to the same socket: keep WINDOW requests in
/// flight, count replies over `dur`. `responder` names the responder's
/// threads (for their CPU time).
pub fn generate(lab: &Lab, dur: Duration, responder: &str, cpu: Option<usize>) -> Measured {
    lab.client.run(|| {
        let (sock, mut buf) = warmed_socket(cpu);
        let mut in_flight = 0usize;
        let mut replies = 0u64;
        let mut stalls = 0u32;
        let mut sent = 0u64;
        let mut last_progress = Instant::now();
        let (mut loops, mut polls, mut empty) = (0u64, 0u64, 0u64);
        let gen0 = first_field(std::path::Path::new("/proc/thread-self/schedstat"));
        let resp0 = threads_cpu_ns(responder);
        let m0 = machine_jiffies();
        let start = Instant::now();
        while start.elapsed() < dur {
            loops += 1;
            // Refill in bursts (half the window at a time): topping up one
            // request per reply lets a fast responder fall into answering
            // one frame per wake-up, a lockstep that measures wake-up
            // latency, not the data path.
            if in_flight <= WINDOW / 2 {
                while in_flight < WINDOW {
                    if sock.send(&PAYLOAD).is_err() {
                        break;
                    }
                    sent += 1;
                    in_flight += 1;
                }
            }
            let mut got = false;
            while let Ok(n) = sock.recv(&mut buf) {
                if n > 0 && buf[0] == 2 {
                    replies += 1;
                    in_flight = in_flight.saturating_sub(1);
                    got = true;
                }
            }
            if !got {
                empty += 1;
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
                polls += 1;
            }
        }
        if std::env::var_os("BENCH_ECHO_DEBUG").is_some() {
            eprintln!(
                "    generator: {loops} loops, {empty} without a reply, {polls} sleeps in poll()"
            );
        }
        let wall = start.elapsed();
        let gen1 = first_field(std::path::Path::new("/proc/thread-self/schedstat"));
        let resp1 = threads_cpu_ns(responder);
        let m1 = machine_jiffies();
        let ns = wall.as_nanos() as f64;
        let m = Measured {
            rate: replies as f64 / wall.as_secs_f64(),
            generator_cpu: (gen1 - gen0) as f64 / ns,
            responder_cpu: resp1.saturating_sub(resp0) as f64 / ns,
            machine_busy: (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64,
        };
        if std::env::var_os("BENCH_ECHO_DEBUG").is_some() {
            eprintln!(
                "  {responder:<10} {:>9.0}/s gen {:>3.0}% resp {:>3.0}% machine {:>3.0}% \
                 ({sent} sent, {replies} replies, {stalls} window resets)",
                m.rate,
                m.generator_cpu * 100.0,
                m.responder_cpu * 100.0,
                m.machine_busy * 100.0
            );
        }
        m
    })
}

/// Open loop at a fixed, moderate `rate` (requests/s, evenly spaced) for
/// `dur`: what the responder's CPU costs per request when it is not busy,
/// which is where spinning instead of sleeping shows.
pub fn paced(lab: &Lab, rate: u32, dur: Duration, responder: &str, cpu: Option<usize>) -> Measured {
    lab.client.run(|| {
        let (sock, mut buf) = warmed_socket(cpu);
        let gap = Duration::from_secs(1) / rate;
        let mut replies = 0u64;
        let resp0 = threads_cpu_ns(responder);
        let start = Instant::now();
        let mut next = start;
        while start.elapsed() < dur {
            let now = Instant::now();
            if now >= next {
                let _ = sock.send(&PAYLOAD);
                next += gap;
            } else {
                std::thread::sleep(next - now);
            }
            while let Ok(n) = sock.recv(&mut buf) {
                if n > 0 && buf[0] == 2 {
                    replies += 1;
                }
            }
        }
        let wall = start.elapsed();
        let resp1 = threads_cpu_ns(responder);
        Measured {
            rate: replies as f64 / wall.as_secs_f64(),
            generator_cpu: 0.0,
            responder_cpu: resp1.saturating_sub(resp0) as f64 / wall.as_nanos() as f64,
            machine_busy: 0.0,
        }
    })
}
