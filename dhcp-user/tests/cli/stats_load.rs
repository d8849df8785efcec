//! Reading stats never slows the workers (issue: "10,000 stats requests
//! during load do not reduce the served rate", measured as a ratio in one
//! run): a client in a namespace keeps a window of Solicits in flight to
//! `dhcp6d serve --io socket` for two equal phases, the second with 10,000
//! `stats` requests on the control socket at the same time. Prints both rates
//! and the ratio.
//!
//! The ratio is a benchmark figure (`cargo xtask bench stats` prints it), not
//! an assertion: timings on a shared 2-core machine are no test verdict. The
//! test asserts what must hold whatever the load: every stats request is
//! answered while the workers keep answering Solicits, and the server stops
//! cleanly afterwards.

use crate::core_harness;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dataplane_common::{client_socket, ifindex, Lab, CLIENT_IF};
use crate::serve_common::*;
use dhcp6d::control::{client, Request};

/// Solicits kept in flight.
const WINDOW: u32 = 256;
/// Length of each quiet phase.
const PHASE: Duration = Duration::from_secs(2);
/// The loaded phase lasts as long as the stats requests, at most this.
const MAX_LOADED: Duration = Duration::from_secs(15);
/// Stats requests during the loaded phase …
const STATS_REQUESTS: u32 = 10_000;
/// … paced at this rate (a very busy monitoring set-up; unpaced, the debug
/// build's client and JSON encoding would measure CPU sharing, not blocking).
const STATS_PER_SEC: f64 = 2_000.0;

/// Advertises received per second, window of `WINDOW`, until `stop` says so
/// (it gets the time elapsed).
fn solicit_rate(lab: &Lab, first_client: u32, stop: impl Fn(Duration) -> bool + Send) -> f64 {
    lab.client.run(move || {
        let s = client_socket();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let to = std::net::SocketAddrV6::new(
            dhcp6d::wire::ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
            dhcp6d::wire::SERVER_PORT,
            0,
            ifindex(CLIENT_IF),
        );
        let mut next = first_client;
        let mut send = |s: &std::net::UdpSocket| {
            s.send_to(&core_harness::solicit(next), to).unwrap();
            next += 1;
        };
        for _ in 0..WINDOW {
            send(&s);
        }
        let mut answered = 0u64;
        let mut buf = [0u8; 1500];
        let start = Instant::now();
        while !stop(start.elapsed()) {
            match s.recv_from(&mut buf) {
                Ok(_) => {
                    answered += 1;
                    send(&s);
                }
                // A lost message: refill the window.
                Err(_) => {
                    for _ in 0..WINDOW {
                        send(&s);
                    }
                }
            }
        }
        answered as f64 / start.elapsed().as_secs_f64()
    })
}

#[test]
fn ten_thousand_stats_requests_do_not_reduce_the_served_rate() {
    let lab = Lab::new();
    let dir = scratch("stats_load");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    std::fs::write(&config, config_text(&dir, 255, "2001:db8:1::/64")).unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve.log"));
    served.wait_ready(&socket);

    let before = solicit_rate(&lab, 1, |t| t >= PHASE);

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let socket = socket.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut answered = 0u32;
            // Back to back, one connection each, as `dhcp6d stats` does.
            while answered < STATS_REQUESTS && started.elapsed() < MAX_LOADED {
                let due = Duration::from_secs_f64(f64::from(answered) / STATS_PER_SEC);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                client::request(&socket, &Request::Stats).expect("stats answered under load");
                answered += 1;
            }
            done.store(true, Ordering::Relaxed);
            (answered, started.elapsed())
        })
    };
    let loaded = {
        let done = done.clone();
        solicit_rate(&lab, 1_000_000, move |_| done.load(Ordering::Relaxed))
    };
    let (answered, took) = reader.join().unwrap();
    let after = solicit_rate(&lab, 2_000_000, |t| t >= PHASE);
    // Quiet phases on both sides, so that drift in the machine's load
    // (other jobs) does not read as an effect of the stats requests.
    let quiet = (before + after) / 2.0;
    let ratio = loaded / quiet;
    println!(
        "served rate: {before:.0}/s and {after:.0}/s quiet, {loaded:.0}/s during {answered} stats \
         requests ({:.0} requests/s); ratio {ratio:.2}",
        answered as f64 / took.as_secs_f64()
    );
    assert!(quiet > 0.0, "the quiet phases served nothing");
    assert!(
        loaded > 0.0,
        "no Solicit was answered during the stats requests"
    );
    assert_eq!(
        answered, STATS_REQUESTS,
        "stats requests answered in {MAX_LOADED:?}"
    );
    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());
}
