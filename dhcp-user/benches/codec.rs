//! Codec benchmark: decode a Solicit and encode the Advertise, with our codec
//! and with `dhcproto`, in one run, and print the ratio (goal: ours ≥ 5× faster).
//!
//! `cargo bench -p dhcp-user --bench codec`

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use dhcp6d::wire::AnyMessage;
use dhcproto::v6;
use dhcproto::{Decodable, Decoder, Encodable, Name};

#[path = "../examples/codec_advertise.rs"]
#[allow(dead_code)] // its main() is the callgrind driver, unused here
mod adv;
use adv::{ours, solicit, ADDR, DNS, PREFIX, SERVER_DUID};

/// dhcproto: the same work with its owned types.
fn theirs(solicit: &[u8], search: &Name) -> Vec<u8> {
    let msg = v6::Message::decode(&mut Decoder::new(solicit)).unwrap();
    let mut adv = v6::Message::new_with_id(v6::MessageType::Advertise, msg.xid());
    let opts = adv.opts_mut();
    if let Some(v6::DhcpOption::ClientId(id)) = msg.opts().get(v6::OptionCode::ClientId) {
        opts.insert(v6::DhcpOption::ClientId(id.clone()));
    }
    opts.insert(v6::DhcpOption::ServerId(SERVER_DUID.to_vec()));
    for o in msg.opts().iter() {
        match o {
            v6::DhcpOption::IANA(ia) => {
                let mut addr_opts = v6::DhcpOptions::new();
                addr_opts.insert(v6::DhcpOption::StatusCode(v6::StatusCode {
                    status: v6::Status::Success,
                    msg: "ok".into(),
                }));
                let mut ia_opts = v6::DhcpOptions::new();
                ia_opts.insert(v6::DhcpOption::IAAddr(v6::IAAddr {
                    addr: ADDR,
                    preferred_life: 3000,
                    valid_life: 4000,
                    opts: addr_opts,
                }));
                opts.insert(v6::DhcpOption::IANA(v6::IANA {
                    id: ia.id,
                    t1: 1000,
                    t2: 2000,
                    opts: ia_opts,
                }));
            }
            v6::DhcpOption::IAPD(pd) => {
                let mut pd_opts = v6::DhcpOptions::new();
                pd_opts.insert(v6::DhcpOption::IAPrefix(v6::IAPrefix {
                    preferred_lifetime: 3000,
                    valid_lifetime: 4000,
                    prefix_len: 56,
                    prefix_ip: PREFIX,
                    opts: v6::DhcpOptions::new(),
                }));
                opts.insert(v6::DhcpOption::IAPD(v6::IAPD {
                    id: pd.id,
                    t1: 1000,
                    t2: 2000,
                    opts: pd_opts,
                }));
            }
            _ => {}
        }
    }
    if let Some(v6::DhcpOption::ORO(oro)) = msg.opts().get(v6::OptionCode::ORO) {
        if oro.opts.contains(&v6::OptionCode::DomainNameServers) {
            opts.insert(v6::DhcpOption::DomainNameServers(vec![DNS]));
        }
        if oro.opts.contains(&v6::OptionCode::DomainSearchList) {
            opts.insert(v6::DhcpOption::DomainSearchList(vec![search.clone()]));
        }
    }
    opts.insert(v6::DhcpOption::Preference(255));
    adv.to_vec().unwrap()
}

/// Nanoseconds per call, best of a few rounds (less noise from the shared machine).
fn ns_per_call(mut f: impl FnMut()) -> f64 {
    const N: u32 = 50_000;
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..N {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(N)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let sol = solicit();
    let search = Name::from_ascii("example.net.").unwrap();
    let mut out = [0u8; 1500];

    // Both produce an Advertise that our decoder accepts with the same IA_NA.
    let n = ours(&sol, &mut out);
    let theirs_bytes = theirs(&sol, &search);
    for bytes in [&out[..n], &theirs_bytes[..]] {
        let adv = AnyMessage::decode(bytes).expect("valid Advertise");
        assert_eq!(
            adv.options()
                .ia_nas()
                .next()
                .unwrap()
                .addrs()
                .next()
                .unwrap()
                .addr,
            ADDR
        );
    }

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("solicit_to_advertise");
    g.bench_function("dhcp6d_wire", |b| {
        b.iter(|| ours(black_box(&sol), black_box(&mut out)))
    });
    g.bench_function("dhcproto", |b| {
        b.iter(|| theirs(black_box(&sol), black_box(&search)))
    });
    g.finish();
    c.final_summary();

    let ours_ns = ns_per_call(|| {
        black_box(ours(black_box(&sol), black_box(&mut out)));
    });
    let theirs_ns = ns_per_call(|| {
        black_box(theirs(black_box(&sol), black_box(&search)));
    });
    println!(
        "codec: decode Solicit + encode Advertise: dhcp6d {ours_ns:.0} ns, dhcproto {theirs_ns:.0} ns, \
         ratio {:.1}x (goal >= 5x)",
        theirs_ns / ours_ns
    );
}
