//! Namespace tests: a real server in the lab, the load generator against it.
//! They need root, iproute2 and the server packages; a missing one fails the test.

use std::path::PathBuf;

use crate::lab::{Lab, LabOptions, ServerKind};

use super::{run_with, Ia, Mode, Options};

fn options(lab: &str, clients: u32, out: PathBuf) -> Options {
    Options {
        mode: Mode::Sarr,
        clients,
        rate: 500.0,
        max_secs: 20.0,
        ia: Ia::Both,
        lab: Some(lab.to_string()),
        out,
        quiet: true,
        ..Options::default()
    }
}

/// RFC 9915 §18.2.1/§18.2.2 end to end: every simulated client solicits, requests the
/// offered bindings and gets a Reply; every address and prefix is inside the server's
/// pools and unique, directly and through two nested relays (§9.1).
#[test]
fn rfc9915_section_18_2_loadgen_sarr_binds_every_client_against_kea() {
    let name = format!("lgk{}", std::process::id() % 100_000);
    let mut lab = Lab::up(LabOptions {
        name: name.clone(),
        ..LabOptions::default()
    })
    .expect("lab up (needs root and iproute2)");
    lab.start_server(1, ServerKind::Kea { threads: 2 })
        .expect("kea-dhcp6 starts (package kea-dhcp6-server)");
    let out = lab.dir.join("out");
    let direct = run_with(&options(&name, 300, out.clone())).expect("direct run");
    let mut relayed = options(&name, 200, out);
    relayed.relay = 2;
    let relayed = run_with(&relayed).expect("relayed run");
    for (what, s, n) in [("direct", &direct, 300), ("relayed", &relayed, 200)] {
        assert_eq!(
            s.stage.total.leases,
            n,
            "{what}: every client bound: {}",
            s.line()
        );
        assert_eq!(s.check.bound, n, "{what}: {}", s.check);
        assert!(s.check.ok(), "{what}: {}", s.check);
        assert_eq!(s.stage.total.drops, 0, "{what}: {}", s.line());
    }
    lab.down().expect("lab down");
    assert!(
        !std::path::Path::new(&format!("/run/netns/{name}-cl")).exists(),
        "down removed the namespaces"
    );
}
