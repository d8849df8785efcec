//! What the data plane needs to know about an interface: index, MAC, our
//! addresses on it (reply sources) and how many RX queues it has.
//! Read once at start; never touched on the packet path.

use std::ffi::{CStr, CString};
use std::io;
use std::net::Ipv6Addr;

/// One configured interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetIf {
    /// Interface name as configured in `server.interfaces`.
    pub name: String,
    /// Kernel interface index (`if_nametoindex`).
    pub index: u32,
    /// Ethernet address: the source MAC of the replies we send on this interface.
    pub mac: [u8; 6],
    /// Our fe80::/10 address: the source of replies to direct clients.
    pub link_local: Option<Ipv6Addr>,
    /// A global (or ULA) address: the source of replies to relay agents.
    pub global: Option<Ipv6Addr>,
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// An address of an interface, as getifaddrs lists it.
enum Address {
    /// Its Ethernet address (AF_PACKET, 6 bytes).
    Mac([u8; 6]),
    /// One of its IPv6 addresses.
    V6(Ipv6Addr),
}

/// Call `f` with each Ethernet and IPv6 address of interface `name`.
fn each_address(name: &CStr, mut f: impl FnMut(Address)) -> io::Result<()> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: `cur` walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: ifa_name is a valid C string for listed entries.
        if ifa.ifa_addr.is_null() || unsafe { CStr::from_ptr(ifa.ifa_name) } != name {
            continue;
        }
        // SAFETY: ifa_addr is non-null; the family tells its real type.
        match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
            libc::AF_PACKET => {
                // SAFETY: AF_PACKET entries point at a sockaddr_ll.
                let ll = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
                if ll.sll_halen == 6 {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&ll.sll_addr[..6]);
                    f(Address::Mac(mac));
                }
            }
            libc::AF_INET6 => {
                // SAFETY: AF_INET6 entries point at a sockaddr_in6.
                let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                f(Address::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
            }
            _ => {}
        }
    }
    // SAFETY: `ifap` came from getifaddrs.
    unsafe { libc::freeifaddrs(ifap) };
    Ok(())
}

impl NetIf {
    /// Look the interface up by name (in the calling thread's network namespace).
    pub fn lookup(name: &str) -> io::Result<NetIf> {
        let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut netif = NetIf {
            name: name.to_string(),
            index,
            mac: [0; 6],
            link_local: None,
            global: None,
        };
        each_address(&c, |addr| match addr {
            Address::Mac(mac) => netif.mac = mac,
            Address::V6(a) if is_link_local(&a) => {
                netif.link_local.get_or_insert(a);
            }
            Address::V6(a) if !a.is_loopback() && !a.is_multicast() => {
                netif.global.get_or_insert(a);
            }
            Address::V6(_) => {}
        })?;
        Ok(netif)
    }

    /// Every IPv6 address on the interface now (link-local, global, ULA),
    /// for the XDP program's "addressed to us" map.
    pub fn ipv6_addresses(&self) -> io::Result<Vec<Ipv6Addr>> {
        let c = CString::new(self.name.as_str())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut out = Vec::new();
        each_address(&c, |addr| {
            if let Address::V6(a) = addr {
                out.push(a);
            }
        })?;
        Ok(out)
    }

    /// Source address for a reply to `to`, given where the request was sent.
    /// A request sent to one of our unicast addresses is answered from it;
    /// a multicast one from our link-local (direct client) or global (relay).
    pub fn reply_source(&self, request_dst: Ipv6Addr, to: Ipv6Addr) -> Option<Ipv6Addr> {
        if !request_dst.is_multicast() {
            return Some(request_dst);
        }
        if is_link_local(&to) {
            self.link_local
        } else {
            self.global.or(self.link_local)
        }
    }

    /// Number of active RX queues (ETHTOOL_GCHANNELS; sysfs as a fallback).
    pub fn rx_queues(&self) -> u32 {
        ethtool_rx_channels(&self.name)
            .or_else(|| sysfs_rx_queues(&self.name))
            .unwrap_or(1)
            .max(1)
    }
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

fn ethtool_rx_channels(name: &str) -> Option<u32> {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    // SAFETY: a plain datagram socket used only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data; we fill the name and point ifr_data at `ch`.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: SIOCETHTOOL with a valid ifreq and ethtool_channels buffer.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &mut ifr) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    (rc == 0)
        .then(|| ch.rx_count + ch.combined_count)
        .filter(|n| *n > 0)
}

fn sysfs_rx_queues(name: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{name}/queues")).ok()?;
    let n = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok()
}
