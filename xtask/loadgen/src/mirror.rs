//! A trivial DHCPv6 "server" on loopback that answers every Solicit with an
//! Advertise and everything else with a Reply, from patched templates. Running
//! the generator against it measures the generator's own ceiling on this machine.

use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use dhcproto::v6::MessageType;

use super::io::{Dest, Io, IoKind};
use super::wire::{parse_reply, Fill, IaKinds, Template};

/// Mirror's pools: addresses `NA_BASE + index`, prefixes `PD_BASE + index << 8` (/56).
pub const NA_BASE: u128 = 0x2001_0db8_0009_0000_8000_0000_0000_0000;
pub const PD_BASE: u128 = 0x2001_0db8_9000_0000_0000_0000_0000_0000;

/// Serve on port 547 of loopback (interface `lo_index`) until `stop` is set,
/// replying to `reply_port` of `::1`, through the same kind of I/O as the generator.
pub fn serve(
    ia: IaKinds,
    io: IoKind,
    lo_index: u32,
    reply_port: u16,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<std::result::Result<(), String>>,
) -> Result<u64> {
    let mut sock = match Io::open(io, 547, if io == IoKind::Udp { 0 } else { lo_index }) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    let sid = [
        0u8, 4, 0xee, 0xee, 0xee, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    let mut adv = Template::build(
        MessageType::Advertise,
        ia,
        Some(&sid),
        true,
        false,
        0,
        Ipv6Addr::UNSPECIFIED,
    );
    let mut rep = Template::build(
        MessageType::Reply,
        ia,
        Some(&sid),
        true,
        false,
        0,
        Ipv6Addr::UNSPECIFIED,
    );
    adv.set_lifetimes(3000, 4000);
    rep.set_lifetimes(3000, 4000);
    let _ = ready.send(Ok(()));
    let dest = Dest {
        addr: Ipv6Addr::LOCALHOST,
        scope: 0,
        port: reply_port,
    };
    let mut answered = 0u64;
    let mut rx = [0u8; 1536];
    while !stop.load(Ordering::Relaxed) {
        let n = sock.recv_batch();
        if n == 0 {
            sock.wait_readable_ns(5_000_000);
            continue;
        }
        for k in 0..n {
            let d = sock.received(k);
            let len = d.len().min(rx.len());
            rx[..len].copy_from_slice(&d[..len]);
            let Some(r) = parse_reply(&rx[..len]) else {
                continue;
            };
            let Some((salt, index)) = r.client else {
                continue;
            };
            let tpl = if r.msg_type == 1 { &adv } else { &rep };
            let fill = Fill {
                xid: r.xid,
                salt,
                index,
                elapsed_cs: 0,
                na: NA_BASE + u128::from(index),
                pd: (PD_BASE + (u128::from(index) << 72), 56),
            };
            sock.queue(&dest, |buf| tpl.write(buf, &fill));
            answered += 1;
        }
        sock.flush();
    }
    Ok(answered)
}
