//! `limits.messages_per_second_per_source` in the real binary (`dhcp6d serve
//! --io socket` in network namespaces): a burst of Solicits from one client
//! is held to the rate and shows as `dropped.rate_limited` in `stats`; a
//! SIGHUP that removes the key lifts the limit, one that puts it back holds
//! the client again.

use std::time::Instant;

use crate::core_harness;
use crate::dataplane_common::{client_socket, send_multicast, Lab, CLIENT_IF};
use crate::serve_common::*;

const RATE: u64 = 2;
const BURST: u64 = 30;

/// `BURST` Solicits with new DUIDs from the client's link-local, as fast as
/// it sends; returns (Solicits, Advertises, rate_limited) counted by the
/// server once it has taken them all, and the seconds boundaries the burst
/// may have crossed.
fn burst(lab: &Lab, socket: &std::path::Path, first: u32) -> (u64, u64, u64, u64) {
    let before = stats(socket)["rx"]["solicit"].as_u64().unwrap();
    let started = Instant::now();
    lab.client.run(|| {
        let s = client_socket();
        for n in first..first + BURST as u32 {
            send_multicast(&s, CLIENT_IF, &core_harness::solicit(n));
        }
    });
    let counts = || {
        let s = stats(socket);
        let n = |v: &serde_json::Value| v.as_u64().unwrap();
        (
            n(&s["rx"]["solicit"]),
            n(&s["tx"]["advertise"]),
            n(&s["dropped"]["rate_limited"]),
        )
    };
    // Every Solicit is either advertised or limited (workers count a sent
    // message just after it leaves).
    eventually("the burst answered or limited", || {
        let (rx, answered, limited) = counts();
        rx == before + BURST && answered + limited == rx
    });
    let secs = started.elapsed().as_secs() + 1;
    let (rx, answered, limited) = counts();
    (rx, answered, limited, secs)
}

#[test]
fn serve_holds_a_source_to_its_rate_and_sighup_changes_it() {
    let lab = Lab::new();
    let dir = scratch("rate_limit");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    let pool = "2001:db8:1::1000-2001:db8:1::1fff";
    let limited_text = |preference: u8| {
        format!(
            "{}[limits]\nmessages_per_second_per_source = {RATE}\n",
            config_text(&dir, preference, pool)
        )
    };
    std::fs::write(&config, limited_text(255)).unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve.log"));
    served.wait_ready(&socket);

    let (rx, answered, limited, secs) = burst(&lab, &socket, 1);
    assert!(
        (2 * RATE..=2 * RATE + RATE * secs).contains(&answered),
        "{answered} of {rx} answered over {secs} s boundaries"
    );

    // SIGHUP without the key: the same client is no longer held.
    std::fs::write(&config, config_text(&dir, 7, pool)).unwrap();
    served.signal(libc::SIGHUP);
    eventually("preference 7 after SIGHUP", || {
        stats(&socket)["preference"] == 7
    });
    let (_, answered_after, limited_after, _) = burst(&lab, &socket, 100);
    assert_eq!(limited_after, limited, "nothing limited without the key");
    assert_eq!(answered_after, answered + BURST);

    // SIGHUP with the key again: held again.
    std::fs::write(&config, limited_text(9)).unwrap();
    served.signal(libc::SIGHUP);
    eventually("preference 9 after SIGHUP", || {
        stats(&socket)["preference"] == 9
    });
    let (_, _, limited_again, secs) = burst(&lab, &socket, 200);
    assert!(
        limited_again - limited >= BURST - 2 * RATE - RATE * secs,
        "{} of {BURST} limited after the key came back",
        limited_again - limited
    );

    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());
}
