//! The XDP program: DHCPv6-to-server frames go to the AF_XDP socket bound on
//! the frame's RX queue; everything else, and everything when no socket is
//! bound there (or the queue is beyond the XskMap), goes to the kernel
//! (`XDP_PASS`), where dhcp6d's fallback listener answers DHCPv6. It never
//! drops a frame.
//!
//! The decision is `dhcp_common::classify`, the same code host tests and
//! fuzzers run; here it reads the frame with `bpf_xdp_load_bytes`, so it also
//! sees multi-buffer (jumbo) frames and needs no packet-pointer tricks.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_load_bytes,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, XskMap},
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use dhcp_common::{
    classify,
    counters::{CounterValue, XdpCounter, XDP_COUNTER_SLOTS},
    is_dhcp_group, is_dhcp_group_mac, DhcpFrame, FrameBytes, LocalMac, MAX_LOCAL_ADDRS, MAX_QUEUES,
};

// The names user space looks these up by are `dhcp_common::{XSKS_MAP,
// COUNTERS_MAP, PROGRAM_NAME}`: the map and program macros take the names
// of the items below, so keep them equal (`LoadedXdp::load` fails otherwise,
// and every XDP test with it).

/// AF_XDP sockets, indexed by RX queue id; user space fills slot = queue id.
#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

/// Per-CPU counters, indexed by `XdpCounter`.
#[map]
static COUNTERS: PerCpuArray<CounterValue> = PerCpuArray::with_max_entries(XDP_COUNTER_SLOTS, 0);

/// The interface's MAC (slot 0), filled by user space at attach.
#[map]
static LOCAL_MAC: Array<LocalMac> = Array::with_max_entries(1, 0);

/// The interface's IPv6 addresses, kept current by user space.
#[map]
static LOCAL_ADDRS: HashMap<[u8; 16], u8> = HashMap::with_max_entries(MAX_LOCAL_ADDRS, 0);

/// Whether a UDP/547 frame is addressed to this server: destination MAC ours
/// or a DHCPv6 group MAC, and destination IPv6 ours or a DHCPv6 group.
#[inline(always)]
fn addressed_to_us(frame: &Frame, dhcp: &DhcpFrame) -> bool {
    let Some(dst_mac) = frame.load::<6>(0) else {
        return false;
    };
    let Some(dst_ip) = frame.load::<16>(usize::from(dhcp.ipv6_off) + 24) else {
        return false;
    };
    if is_dhcp_group_mac(dst_mac) {
        return is_dhcp_group(dst_ip);
    }
    let mac_ours = match LOCAL_MAC.get(0) {
        Some(m) => m.set == 1 && m.mac == dst_mac,
        None => false,
    };
    // SAFETY: the value is a plain u8 we only test for presence.
    mac_ours && (is_dhcp_group(dst_ip) || unsafe { LOCAL_ADDRS.get(&dst_ip) }.is_some())
}

struct Frame<'a>(&'a XdpContext);

impl FrameBytes for Frame<'_> {
    #[inline(always)]
    fn load<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        // SAFETY: the helper bounds-checks `off + N` against the frame
        // (all buffers of it) and writes at most N bytes into `buf`.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                self.0.ctx,
                off as u32,
                buf.as_mut_ptr() as *mut c_void,
                N as u32,
            )
        };
        (rc == 0).then_some(buf)
    }
}

#[inline(always)]
fn count(which: XdpCounter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(which as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe { (*slot).value += 1 };
    }
}

#[xdp(frags)]
pub fn dhcp6_xdp(ctx: XdpContext) -> u32 {
    count(XdpCounter::Seen);
    let frame = Frame(&ctx);
    match classify(&frame) {
        Ok(dhcp) if !addressed_to_us(&frame, &dhcp) => {
            count(XdpCounter::NotOurs);
            count(XdpCounter::Passed);
            xdp_action::XDP_PASS
        }
        Ok(_) => {
            let queue = ctx.rx_queue_index();
            if queue >= MAX_QUEUES {
                // No slot exists for this queue (the helper would pass it
                // too): counted apart, so an operator can tell a queue the
                // map cannot hold from a worker that is restarting.
                debug!(&ctx, "dhcpv6 on queue {} beyond the XskMap", queue);
                count(XdpCounter::BeyondQueueLimit);
                count(XdpCounter::Passed);
                return xdp_action::XDP_PASS;
            }
            // Flags = XDP_PASS: the helper returns it when the slot is empty,
            // so a missing or dead worker falls back to the kernel path.
            match XSKS.redirect(queue, u64::from(xdp_action::XDP_PASS)) {
                Ok(action) if action == xdp_action::XDP_REDIRECT => {
                    count(XdpCounter::Redirected);
                    action
                }
                _ => {
                    debug!(&ctx, "dhcpv6 on queue {} with no socket bound", queue);
                    count(XdpCounter::NoSocket);
                    count(XdpCounter::Passed);
                    xdp_action::XDP_PASS
                }
            }
        }
        Err(reject) => {
            if reject.is_malformed() {
                count(XdpCounter::Malformed);
            }
            count(XdpCounter::Passed);
            xdp_action::XDP_PASS
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
