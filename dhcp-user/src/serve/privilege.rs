//! Dropping root once sockets are open and XDP is attached.
//!
//! After `setuid` the process keeps only the capabilities it still needs:
//! - xdp: CAP_NET_ADMIN (detach the XDP program at shutdown), CAP_NET_RAW
//!   (AF_XDP sockets), CAP_BPF (read the program's counter map);
//! - socket: CAP_NET_BIND_SERVICE (port 547), in case a socket must be
//!   reopened.
//!
//! The state directory is handed to the user first, because the journal
//! writer creates new segments and snapshots there after the drop.

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::config::IoMode;

const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_BPF: u32 = 39;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capabilities kept after the drop, as names (for the log and the README).
pub fn kept(io: IoMode) -> &'static [&'static str] {
    match io {
        IoMode::Xdp => &["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"],
        IoMode::Socket => &["CAP_NET_BIND_SERVICE"],
    }
}

fn kept_bits(io: IoMode) -> u64 {
    match io {
        IoMode::Xdp => (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1u64 << CAP_BPF),
        IoMode::Socket => 1 << CAP_NET_BIND_SERVICE,
    }
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// Give `state_dir` and the files directly in it to `uid:gid`.
fn chown_state_dir(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let chown = |p: &Path| -> io::Result<()> {
        let c = CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `c` is a valid path string; lchown does not follow symlinks.
        check(
            unsafe { libc::lchown(c.as_ptr(), uid, gid) },
            &format!("chown {}", p.display()),
        )
    };
    chown(dir)?;
    for entry in std::fs::read_dir(dir)? {
        chown(&entry?.path())?;
    }
    Ok(())
}

/// Switch to `user`, keeping only the capabilities of [`kept`].
pub fn drop_to(user: &str, uid: u32, gid: u32, io: IoMode, state_dir: &Path) -> io::Result<()> {
    chown_state_dir(state_dir, uid, gid)?;
    let name = CString::new(user).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: plain syscalls on this process; arguments are valid values and pointers.
    unsafe {
        // Keep the permitted set across setuid, then narrow it below.
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
            "prctl(PR_SET_KEEPCAPS)",
        )?;
        check(libc::initgroups(name.as_ptr(), gid), "initgroups")?;
        check(libc::setresgid(gid, gid, gid), "setresgid")?;
        check(libc::setresuid(uid, uid, uid), "setresuid")?;
    }
    let bits = kept_bits(io);
    let word = CapData {
        effective: bits as u32,
        permitted: bits as u32,
        inheritable: 0,
    };
    let high = CapData {
        effective: (bits >> 32) as u32,
        permitted: (bits >> 32) as u32,
        inheritable: 0,
    };
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [word, high];
    // SAFETY: capset with a version-3 header and two data words, as the ABI requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    check(rc as libc::c_int, "capset")?;
    // SAFETY: as above.
    unsafe { check(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl")? };
    Ok(())
}
