//! Dropping root once sockets are open and XDP is attached.
//!
//! After `setuid` the process keeps, permitted but not effective, only the
//! capabilities it still needs (raised around their one use, `caps::raise`):
//! - xdp: CAP_NET_ADMIN (detach the XDP program at shutdown), CAP_NET_RAW
//!   and CAP_BPF (a worker's AF_XDP reopen, with CAP_IPC_LOCK for its UMEM);
//! - socket: CAP_NET_BIND_SERVICE (port 547), in case a socket must be
//!   reopened.
//!
//! Before any thread starts ([`prepare`]), no_new_privs is set and the
//! bounding set cut to those capabilities, so every thread inherits both
//! and no exec can give anything back.
//!
//! The state directory is handed to the user first, because the journal
//! writer creates new segments and snapshots there after the drop. That goes
//! through the directory's descriptor and each file's own
//! ([`StateDir::give_to`]): a link the user put there hands nothing over.

use std::ffi::CString;
use std::io;

use crate::config::IoMode;
use crate::store::StateDir;

use crate::caps::{self, CAP_BPF, CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW, XDP_WORKER};

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

/// Everything any thread keeps permitted after the drop: the bounding set.
pub fn bounding(io: IoMode) -> u64 {
    match io {
        IoMode::Xdp => kept_bits(io) | XDP_WORKER,
        IoMode::Socket => kept_bits(io),
    }
}

/// On the main thread before any other thread starts (they inherit both):
/// no_new_privs, and the bounding set cut to [`bounding`]. Needs
/// CAP_SETPCAP, so it runs as root, before [`drop_to`].
pub fn prepare(io: IoMode) -> io::Result<()> {
    caps::set_no_new_privs()?;
    caps::limit_bounding_set(bounding(io))
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// Switch to `user`, keeping only the capabilities of [`kept`], permitted
/// and none effective.
pub fn drop_to(user: &str, uid: u32, gid: u32, io: IoMode, state_dir: &StateDir) -> io::Result<()> {
    state_dir.give_to(uid, gid).map_err(io::Error::other)?;
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
    caps::set(caps::Sets {
        effective: 0,
        permitted: bits,
    })?;
    caps::keep_across_setuid(false)?;
    caps::note_dropped();
    Ok(())
}
