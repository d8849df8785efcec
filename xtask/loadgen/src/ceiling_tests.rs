//! The generator against its built-in null responder in a private namespace
//! (needs root and iproute2; fails loudly without them): both I/O paths bind
//! every client, and the avalanche waits out the first-Solicit delay.

use std::path::PathBuf;

use super::io::IoKind;
use super::{run_with, Ia, Mode, Options};

fn ceiling(mode: Mode, io: IoKind, clients: u32) -> Options {
    Options {
        mode,
        clients,
        rate: 2000.0,
        max_secs: 20.0,
        ia: Ia::Both,
        ceiling: true,
        io: Some(io),
        out: PathBuf::from(format!("target/loadgen-test-{}", std::process::id())),
        quiet: true,
        ..Options::default()
    }
}

/// RFC 9915 §18.2.1 and §18.2.2 through both I/O paths: the frames the packet
/// path builds (Ethernet, IPv6, UDP with its checksum) reach a kernel UDP
/// socket, which drops datagrams with a bad checksum, and every client binds.
#[test]
fn rfc9915_section_18_2_both_io_paths_bind_every_client() {
    for io in [IoKind::Packet, IoKind::Udp] {
        let s = run_with(&ceiling(Mode::Sarr, io, 1000)).expect("ceiling run");
        assert_eq!(s.io, io);
        assert_eq!(s.stage.total.leases, 1000, "{io:?}: {}", s.line());
        assert_eq!(s.check.bound, 1000, "{io:?}: {}", s.check);
        assert!(s.check.ok(), "{io:?}: {}", s.check);
        assert_eq!(s.stage.total.unexpected, 0, "{io:?}: {}", s.line());
    }
}

/// RFC 9915 §18.2.1: "The first Solicit message from the client on the
/// interface SHOULD be delayed by a random amount of time between 0 and
/// SOL_MAX_DELAY" (1 s, §7.6). With 3,000 clients the latest draw is above
/// 0.9 s unless the delay is missing (probability 0.9^3000 otherwise), so the
/// avalanche cannot be all bound before then.
#[test]
fn rfc9915_section_18_2_1_avalanche_delays_first_solicits_up_to_sol_max_delay() {
    let s = run_with(&ceiling(Mode::Avalanche, IoKind::Packet, 3000)).expect("avalanche");
    assert_eq!(s.stage.total.leases, 3000, "{}", s.line());
    assert!(s.check.ok(), "{}", s.check);
    let done = s.stage.all_done_s.expect("all bound");
    assert!(
        done >= 0.9,
        "all bound after {done:.3} s: the first Solicits were not spread over SOL_MAX_DELAY"
    );
}
