//! The load generator against the real dhcp6d in the namespace lab, checking
//! every binding against dhcp6d's own allocation function.
//!
//! Needs root, iproute2 and the dhcp6d binary (built on demand); fails loudly otherwise.

use std::path::Path;

use dhcp6d::config::Config;
use dhcp6d::protocol::alloc::{AllocKey, NaPool, PdPool};
use dhcp6d_loadgen::lab::{Lab, LabOptions, ServerKind};
use dhcp6d_loadgen::{run_with_predictor, Ia, Mode, Options, Summary};

/// One server's allocation inputs, read from the config the lab generated.
struct ServerAlloc {
    duid: Vec<u8>,
    key: AllocKey,
    na: NaPool,
    pd: PdPool,
}

fn server_alloc(path: &Path, relayed: bool) -> ServerAlloc {
    let c = Config::load(path).expect("lab config is valid");
    let duid = c.server.duid.clone().expect("lab configs set a DUID").0;
    let key = match c.redundancy.allocation_key {
        Some(k) => AllocKey(k.0),
        None => AllocKey::from_server_duid(&duid),
    };
    let s = c
        .subnets
        .iter()
        .find(|s| s.interface.is_some() != relayed)
        .expect("subnet for the link");
    let p = s.pools[0];
    let na = NaPool {
        first: p.first.into(),
        last: p.last.into(),
        subnet_prefix: s.prefix.network().into(),
        subnet_len: s.prefix.prefix_len(),
    };
    let d = s.pd_pools[0];
    let pd = PdPool {
        prefix: d.prefix.network().into(),
        prefix_len: d.prefix.prefix_len(),
        delegated_len: d.delegated_length,
    };
    ServerAlloc { duid, key, na, pd }
}

fn run(lab: &Lab, relay: u8, clients: u32) -> Summary {
    let servers: Vec<ServerAlloc> = (1..=lab.opts.servers)
        .map(|i| server_alloc(&lab.dhcp6d_config(i), relay > 0))
        .collect();
    // The allocator's candidates per attempt (RFC 6853 §6.3 relies on every
    // server computing the same ones); reserved addresses are skipped by it.
    let predict =
        |server: &[u8], duid: &[u8], attempt: u32| -> (Option<u128>, Option<(u128, u8)>) {
            let Some(s) = servers.iter().find(|s| s.duid == server) else {
                return (None, None);
            };
            let na =
                Some(s.na.candidate(&s.key, duid, 1, attempt)).filter(|&a| !s.na.is_reserved(a));
            let pd = Some((s.pd.candidate(&s.key, duid, 2, attempt), s.pd.delegated_len));
            (na, pd)
        };
    let o = Options {
        mode: Mode::Sarr,
        clients,
        rate: 500.0,
        max_secs: 20.0,
        ia: Ia::Both,
        relay,
        lab: Some(lab.opts.name.clone()),
        out: lab.dir.join("out"),
        quiet: true,
        ..Options::default()
    };
    run_with_predictor(&o, Some(&predict)).expect("load generator runs")
}

/// RFC 6853 §6.1 (split prefixes, two servers on one link) and RFC 9915 §18.2:
/// every client gets a unique address and prefix from the pool of the server
/// that answered, and each equals what dhcp6d's allocation function predicts for
/// that server's key and pool, directly and through two nested relays (§9.1).
#[test]
fn rfc6853_section_6_1_loadgen_bindings_match_allocation_function() {
    bindings_match_allocation("split-prefix", "lgd");
}

/// RFC 6853 §6.2 (multiple unique prefixes): the lab's configs come from
/// `dhcp6d plan --model unique-prefix` (one /64 per server, the others' as
/// `link_prefixes`); the same checks as for split prefixes hold.
#[test]
fn rfc6853_section_6_2_loadgen_bindings_match_allocation_function() {
    bindings_match_allocation("unique-prefix", "lgu");
}

fn bindings_match_allocation(model: &str, tag: &str) {
    let bin = dhcp6d_tests::dhcp6d::binary().expect("dhcp6d binary builds");
    let name = format!("{tag}{}", std::process::id() % 100_000);
    let opts = LabOptions {
        name,
        servers: 2,
        model: model.into(),
        dhcp6d: Some(bin),
        ..LabOptions::default()
    };
    let mut lab = Lab::up(opts).expect("lab up (needs root and iproute2)");
    for i in 1..=2 {
        lab.start_server(i, ServerKind::Dhcp6d { io: "socket" })
            .expect("dhcp6d serve starts");
    }
    for (relay, clients) in [(0u8, 300u32), (2, 200)] {
        let s = run(&lab, relay, clients);
        assert_eq!(
            s.stage.total.leases,
            u64::from(clients),
            "{model}, relay {relay}: {}",
            s.line()
        );
        assert_eq!(
            s.check.bound,
            u64::from(clients),
            "relay {relay}: {}",
            s.check
        );
        assert_eq!(
            s.check.predicted,
            2 * u64::from(clients),
            "relay {relay}: NA and PD predicted: {}",
            s.check
        );
        assert!(s.check.ok(), "relay {relay}: {}", s.check);
    }
    lab.down().expect("lab down");
}
