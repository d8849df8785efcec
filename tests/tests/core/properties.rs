//! Property tests of the core's allocation invariants (issue #4).
use crate::core_harness::*;

use dhcp6d::protocol::{LeaseOp, Timestamp};
use dhcp6d::wire::{status, MessageType};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv6Addr;

const SMALL: &str = r#"
[server]
interfaces = ["eth0"]
[redundancy]
allocation_key = "0f0e0d0c0b0a09080706050403020100"
[lifetimes]
preferred = 50
valid = 100
t1 = 25
t2 = 40
[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::10-2001:db8:1:1::1f"]
"#;

fn msg(t: MessageType, n: u32, addr: Option<Ipv6Addr>) -> Vec<u8> {
    build(t, n, |e| {
        e.client_id(&client_duid(n))?;
        if matches!(
            t,
            MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline
        ) {
            e.server_id(SERVER_DUID)?;
        }
        ia_na(e, 1, addr.as_slice())
    })
}

proptest! {
    // Failures persist next to this file (`properties.proptest-regressions`):
    // proptest's default, inside a `tests/NAME/main.rs` binary, is a
    // `proptest-regressions/` directory beside the binary's directory.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::with_cases(64)
    })]

    /// No two live bindings share an address, and a full pool answers NoAddrsAvail, never a
    /// duplicate, whatever clients do (Request, Renew, Rebind, Release, Decline, time passing).
    #[test]
    fn no_two_live_bindings_share_an_address(
        ops in proptest::collection::vec((0u8..6, 0u32..40, 0u64..30), 1..250)
    ) {
        let s = server(SMALL);
        let mut now = T0;
        let mut held: HashMap<u32, Ipv6Addr> = HashMap::new();
        for (op, client, dt) in ops {
            now += dt;
            let t = match op {
                0 | 1 => MessageType::Request,
                2 => MessageType::Renew,
                3 => MessageType::Rebind,
                4 => MessageType::Release,
                _ => MessageType::Decline,
            };
            let out = direct(&s, &msg(t, client, held.get(&client).copied()), now);
            if let Ok(m) = out.handled.result.map(|_| out.message()) {
                if t == MessageType::Request {
                    match first_addr(&m) {
                        Some((a, _, v)) => { prop_assert!(v > 0); held.insert(client, a); }
                        None => prop_assert_eq!(ia_status(&m, false), Some(status::NO_ADDRS_AVAIL)),
                    }
                }
            }
            for r in out.changes.iter() {
                if matches!(r.op, LeaseOp::Release | LeaseOp::Decline) { held.remove(&client); }
            }
            let mut live: HashMap<Ipv6Addr, Vec<u8>> = HashMap::new();
            s.for_each_binding(|r| {
                if r.valid_until > now {
                    assert!(live.insert(r.addr, r.duid().to_vec()).is_none(), "{} bound twice", r.addr);
                }
            });
            prop_assert!(live.len() <= 16);
        }
    }

    /// Allocation is a pure function of (key, pools, DUID, IAID): two servers built separately
    /// (a restart) offer the same address and prefix.
    #[test]
    fn allocation_is_pure_across_instances(key in any::<[u8; 16]>(), duid in proptest::collection::vec(any::<u8>(), 8..40), iaid in any::<u32>()) {
        let text = BASE.replace("00112233445566778899aabbccddeeff", &hex(&key));
        let mut d = vec![0u8, 2]; // DUID-EN: enterprise number + identifier
        d.extend_from_slice(&duid);
        let m = build(MessageType::Solicit, 1, |e| {
            e.client_id(&d)?;
            ia_na(e, iaid, &[])?;
            ia_pd(e, iaid, &[])
        });
        let x = direct(&server(&text), &m, T0);
        let y = direct(&server_with_duid(&text, OTHER_SERVER_DUID), &m, T0 + 99);
        let (xm, ym) = (x.message(), y.message());
        prop_assert_eq!(first_addr(&xm).unwrap().0, first_addr(&ym).unwrap().0);
        let px = xm.options.ia_pds().next().unwrap().prefixes().next().unwrap().prefix;
        let py = ym.options.ia_pds().next().unwrap().prefixes().next().unwrap().prefix;
        prop_assert_eq!(px, py);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn full_pool_then_expiry_frees_everything() {
    // 16 addresses: 16 clients fill the pool, the 17th gets NoAddrsAvail; after the valid
    // lifetime and a sweep, the pool is empty again.
    let s = server(SMALL);
    for n in 0..16 {
        let out = direct(&s, &msg(MessageType::Request, n, None), T0);
        assert!(first_addr(&out.message()).is_some(), "client {n}");
    }
    assert_eq!(s.pool_usage()[0].used, 16);
    assert_eq!(s.pool_usage()[0].capacity, 16);
    let out = direct(&s, &msg(MessageType::Request, 99, None), T0);
    assert_eq!(
        ia_status(&out.message(), false),
        Some(status::NO_ADDRS_AVAIL)
    );
    let mut expired = Vec::new();
    s.sweep(Timestamp(T0 + 100), &mut expired);
    assert_eq!(expired.len(), 16);
    assert_eq!(s.pool_usage()[0].used, 0);
}
