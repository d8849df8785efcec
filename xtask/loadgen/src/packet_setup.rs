//! Setting up the packet-socket path: socket options, the classic BPF
//! filters, the interface's addresses and the UDP sink.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};

use super::frame::ETH_P_IPV6;

pub(super) fn setopt<T>(fd: i32, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: passes a pointer to a live value of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attach a classic BPF program to `fd`.
pub(super) fn attach_filter(fd: i32, prog: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    setopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

pub(super) fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Accept IPv6/UDP frames to `port` (no extension headers: ours never carry any).
pub(super) fn port_filter(port: u16) -> [libc::sock_filter; 8] {
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    [
        bpf(LDH_ABS, 0, 0, 12),
        bpf(JEQ_K, 0, 5, u32::from(ETH_P_IPV6)),
        bpf(LDB_ABS, 0, 0, 14 + 6),
        bpf(JEQ_K, 0, 3, libc::IPPROTO_UDP as u32),
        bpf(LDH_ABS, 0, 0, 14 + 40 + 2),
        bpf(JEQ_K, 0, 1, u32::from(port)),
        bpf(RET_K, 0, 0, 0xffff),
        bpf(RET_K, 0, 0, 0),
    ]
}

/// Link-layer and IPv6 source of an interface.
pub(super) fn interface_source(ifindex: u32) -> Result<([u8; 6], Ipv6Addr, bool)> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: name has IF_NAMESIZE bytes, as if_indextoname requires.
    if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
        bail!("no interface with index {ifindex}");
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name.
    let ifname = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
    // SAFETY: a throwaway datagram socket for the ioctl; owned at once.
    let s = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        bail!("socket: {}", io::Error::last_os_error());
    }
    // SAFETY: s is a fresh fd.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain data; the name is copied in below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in req.ifr_name.iter_mut().zip(ifname.as_bytes()) {
        *d = *c as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR fills req.ifr_ifru with a sockaddr.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        bail!("SIOCGIFHWADDR: {}", io::Error::last_os_error());
    }
    // SAFETY: the ioctl above set the hwaddr member.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let loopback = hw.sa_family == libc::ARPHRD_LOOPBACK;
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *m = *b as u8;
    }
    // The address a DHCPv6 client sends from: its link-local one (RFC 9915 §13.1);
    // on loopback (the ceiling run) ::1.
    let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below.
    if unsafe { libc::getifaddrs(&mut ifa) } < 0 {
        bail!("getifaddrs: {}", io::Error::last_os_error());
    }
    let mut best: Option<Ipv6Addr> = None;
    let mut p = ifa;
    while !p.is_null() {
        // SAFETY: walking the list getifaddrs returned; entries are valid until freeifaddrs.
        let e = unsafe { &*p };
        p = e.ifa_next;
        if e.ifa_addr.is_null()
            // SAFETY: ifa_addr is non-null and points at a sockaddr.
            || i32::from(unsafe { (*e.ifa_addr).sa_family }) != libc::AF_INET6
            // SAFETY: ifa_name is a NUL-terminated string.
            || unsafe { std::ffi::CStr::from_ptr(e.ifa_name) } != ifname.as_c_str()
        {
            continue;
        }
        // SAFETY: family is AF_INET6, so this is a sockaddr_in6.
        let a =
            Ipv6Addr::from(unsafe { (*e.ifa_addr.cast::<libc::sockaddr_in6>()).sin6_addr.s6_addr });
        if best.is_none() || (a.segments()[0] & 0xffc0) == 0xfe80 {
            best = Some(a);
        }
    }
    // SAFETY: the list came from getifaddrs.
    unsafe { libc::freeifaddrs(ifa) };
    let Some(src) = best else {
        bail!("interface {ifname:?} has no IPv6 address");
    };
    Ok((mac, src, loopback))
}

/// A UDP socket on `port` that drops everything it is given.
pub(super) fn sink(port: u16) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); owned at once.
    let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        bail!("socket: {}", io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    attach_filter(raw, &[bpf(0x06, 0, 0, 0)])?;
    setopt(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
    // SAFETY: sockaddr_in6 is plain data.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = port.to_be();
    // SAFETY: sa is a valid sockaddr_in6 of the size given.
    let r = unsafe {
        libc::bind(
            raw,
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of_val(&sa) as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("binding the UDP sink on port {port}"));
    }
    Ok(fd)
}
