//! Capability sets of the calling thread (capget/capset, version 3), the
//! bounding set and no_new_privs.
//!
//! Linux keeps capabilities per thread. When `serve` drops root
//! (`serve/privilege.rs`), `setresuid` runs on every thread; a thread keeps
//! its permitted set across it only if it set `PR_SET_KEEPCAPS` itself, and
//! loses its effective set either way. The main thread narrows its own sets
//! after the drop. An AF_XDP worker is restarted in its own thread after it
//! dies, and opening an AF_XDP socket needs CAP_NET_RAW, putting it into the
//! XskMap CAP_BPF: so each worker thread narrows itself to what a restart
//! needs before the drop ([`narrow_for_xdp_worker`]).
//!
//! After the drop no thread keeps anything effective: what a thread still
//! needs stays in its permitted set, and [`raise`] makes it effective only
//! around the operation that needs it (a worker's socket reopen, the XDP
//! detach at shutdown), lowering it again when the guard goes.
//!
//! glibc runs `setresuid`/`setresgid`/`setgroups` on every thread and aborts
//! the process if one thread refuses, so until the drop a narrowed worker
//! also keeps CAP_SETUID and CAP_SETGID; once the drop is done
//! ([`note_dropped`]) each worker sheds them ([`after_drop`]).
//!
//! The bounding set and no_new_privs are per thread too, and inherited by
//! the threads a thread starts: `serve` sets both on the main thread before
//! it starts any other ([`limit_bounding_set`], [`set_no_new_privs`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Change the process's groups (glibc applies it on every thread).
pub const CAP_SETGID: u32 = 6;
/// Change the process's uid (glibc applies it on every thread).
pub const CAP_SETUID: u32 = 7;
/// Change the bounding set.
pub const CAP_SETPCAP: u32 = 8;
/// Bind ports below 1024.
pub const CAP_NET_BIND_SERVICE: u32 = 10;
/// Attach and detach XDP programs.
pub const CAP_NET_ADMIN: u32 = 12;
/// Open AF_XDP (and raw) sockets.
pub const CAP_NET_RAW: u32 = 13;
/// Lock memory beyond RLIMIT_MEMLOCK (an AF_XDP UMEM is 32 MB; the usual
/// limit is 8 MB).
pub const CAP_IPC_LOCK: u32 = 14;
/// Use the bpf() syscall (maps, programs).
pub const CAP_BPF: u32 = 39;

/// What an AF_XDP worker needs to reopen its socket (CAP_NET_RAW), register
/// its UMEM (CAP_IPC_LOCK) and bind it in the XskMap (CAP_BPF), plus
/// CAP_NET_ADMIN as the main thread keeps it.
pub const XDP_WORKER: u64 =
    (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW) | (1 << CAP_IPC_LOCK) | (1u64 << CAP_BPF);

/// What a worker thread must keep until the privilege drop is done.
const TAKE_PART_IN_DROP: u64 = (1 << CAP_SETUID) | (1 << CAP_SETGID);

/// Set once `serve` has dropped root (and every thread's uid changed).
static DROPPED: AtomicBool = AtomicBool::new(false);

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

/// The effective and permitted sets, one bit per capability number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sets {
    /// What the thread may use now.
    pub effective: u64,
    /// What it may make effective.
    pub permitted: u64,
}

fn header() -> CapHeader {
    // pid 0: the calling thread.
    CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    }
}

fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The calling thread's sets.
pub fn get() -> io::Result<Sets> {
    let mut h = header();
    let mut d = [CapData::default(); 2];
    // SAFETY: capget with a version-3 header and room for two data words.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    if rc != 0 {
        return Err(os_err("capget"));
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok(Sets {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
    })
}

/// Set the calling thread's sets (inheritable cleared). Only dropping
/// permitted capabilities is allowed, as the kernel enforces.
pub fn set(s: Sets) -> io::Result<()> {
    let mut h = header();
    let word = |shift: u32| CapData {
        effective: (s.effective >> shift) as u32,
        permitted: (s.permitted >> shift) as u32,
        inheritable: 0,
    };
    let d = [word(0), word(32)];
    // SAFETY: capset with a version-3 header and two data words, as the ABI requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) };
    if rc != 0 {
        return Err(os_err("capset"));
    }
    Ok(())
}

/// Whether the calling thread keeps its permitted set when its uid leaves 0.
pub fn keep_across_setuid(on: bool) -> io::Result<()> {
    // SAFETY: prctl with an integer flag; affects only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    if rc != 0 {
        return Err(os_err("prctl(PR_SET_KEEPCAPS)"));
    }
    Ok(())
}

/// At the start of an AF_XDP worker thread, before any privilege drop:
/// keep only [`XDP_WORKER`] (what the thread has of it), and keep it
/// permitted across the drop.
pub fn narrow_for_xdp_worker() -> io::Result<()> {
    let keep = if DROPPED.load(Ordering::Acquire) {
        XDP_WORKER
    } else {
        XDP_WORKER | TAKE_PART_IN_DROP
    };
    let want = get()?.permitted & keep;
    keep_across_setuid(true)?;
    set(Sets {
        effective: want,
        permitted: want,
    })
}

/// Called by `serve` once root is dropped: workers may shed what they kept
/// to take part in the drop.
pub fn note_dropped() {
    DROPPED.store(true, Ordering::Release);
}

/// Whether [`note_dropped`] was called.
pub fn dropped() -> bool {
    DROPPED.load(Ordering::Acquire)
}

/// In a worker thread, once [`dropped`]: shed CAP_SETUID and CAP_SETGID
/// from the permitted set, and leave nothing effective (a reopen raises
/// what it needs with [`raise`]).
pub fn after_drop() -> io::Result<()> {
    let cur = get()?;
    let want = Sets {
        effective: 0,
        permitted: cur.permitted & !TAKE_PART_IN_DROP,
    };
    if cur == want {
        return Ok(());
    }
    set(want)
}

/// The permitted set made effective, until dropped: then the effective set
/// is empty again. Before the drop (or in a server that keeps root) it
/// changes nothing.
#[must_use = "the capabilities are lowered again when the guard is dropped"]
pub struct Raised {
    lower: bool,
}

/// Make the calling thread's permitted set effective for the life of the
/// guard (e.g. while a worker reopens its socket); sheds what only the drop
/// needed first.
pub fn raise() -> io::Result<Raised> {
    if !dropped() {
        return Ok(Raised { lower: false });
    }
    after_drop()?;
    let cur = get()?;
    set(Sets {
        effective: cur.permitted,
        permitted: cur.permitted,
    })?;
    Ok(Raised { lower: true })
}

impl Drop for Raised {
    fn drop(&mut self) {
        if !self.lower {
            return;
        }
        let lowered = get().and_then(|cur| {
            set(Sets {
                effective: 0,
                permitted: cur.permitted,
            })
        });
        if let Err(e) = lowered {
            tracing::warn!("lowering the effective capabilities: {e}");
        }
    }
}

/// Set no_new_privs on the calling thread (and the threads it starts
/// later): no execve can grant more than the thread has.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments; affects only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(os_err("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    Ok(())
}

/// Drop every capability not in `keep` from the calling thread's bounding
/// set (inherited by the threads it starts later). Needs CAP_SETPCAP
/// effective, so it runs before the uid changes; CAP_SETPCAP itself goes
/// last, though the kernel checks the effective set, not the bounding one.
pub fn limit_bounding_set(keep: u64) -> io::Result<()> {
    let mut drop_last = None;
    for cap in 0..64u32 {
        // SAFETY: prctl with integer arguments, read-only.
        let present =
            unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
        if present < 0 {
            // EINVAL: past the kernel's last capability.
            break;
        }
        if present == 0 || keep & (1u64 << cap) != 0 {
            continue;
        }
        if cap == CAP_SETPCAP {
            drop_last = Some(cap);
            continue;
        }
        drop_bounding(cap)?;
    }
    if let Some(cap) = drop_last {
        drop_bounding(cap)?;
    }
    Ok(())
}

fn drop_bounding(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments; affects only the calling thread.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    if rc != 0 {
        return Err(os_err(&format!("prctl(PR_CAPBSET_DROP, {cap})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    const CHILD: &str = "DHCP6D_CAPS_TEST_CHILD";
    const NOBODY: libc::uid_t = 65534;

    fn open_xsk() -> io::Result<()> {
        // SAFETY: socket(2); the fd is closed right away.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: closing the fd we just opened.
        unsafe { libc::close(fd) };
        Ok(())
    }

    /// Runs in a child process: the uid change is process-wide.
    fn child() {
        let narrowed = Arc::new(Barrier::new(3));
        let dropped = Arc::new(Barrier::new(3));
        let worker = {
            let (n, d) = (narrowed.clone(), dropped.clone());
            std::thread::spawn(move || {
                narrow_for_xdp_worker().unwrap();
                let s = get().unwrap();
                assert_eq!(
                    s.permitted,
                    XDP_WORKER | TAKE_PART_IN_DROP,
                    "narrowed to what a restart and the drop need"
                );
                n.wait();
                d.wait();
                let s = get().unwrap();
                assert_eq!(s.effective, 0, "the drop cleared the effective set");
                assert_eq!(s.permitted, XDP_WORKER | TAKE_PART_IN_DROP);
                after_drop().unwrap();
                assert_eq!(get().unwrap().permitted, XDP_WORKER, "setuid/setgid shed");
                {
                    let _raised = raise().unwrap();
                    assert_eq!(get().unwrap().effective, XDP_WORKER);
                    open_xsk().expect("a narrowed worker reopens its AF_XDP socket after the drop");
                    // The whole reopen: a 32 MB UMEM (beyond RLIMIT_MEMLOCK), the
                    // socket and its bind, on the loopback's queue 0.
                    let lo = crate::dataplane::netif::NetIf::lookup("lo").unwrap();
                    crate::dataplane::afxdp::XskIo::open(lo, 0)
                        .expect("a narrowed worker reopens its whole AF_XDP socket after the drop");
                }
                let s = get().unwrap();
                assert_eq!(s.effective, 0, "lowered again after the reopen");
                assert_eq!(s.permitted, XDP_WORKER, "still there for the next reopen");
                open_xsk().expect_err("nothing effective between reopens");
            })
        };
        let plain = {
            let (n, d) = (narrowed.clone(), dropped.clone());
            std::thread::spawn(move || {
                n.wait();
                d.wait();
                let e = open_xsk().expect_err("a thread that did not narrow lost everything");
                assert_eq!(e.raw_os_error(), Some(libc::EPERM));
            })
        };
        narrowed.wait();
        // SAFETY: setresgid/setresuid on this process (glibc applies them to
        // every thread, and aborts if one thread refuses).
        unsafe {
            assert_eq!(libc::setresgid(NOBODY, NOBODY, NOBODY), 0);
            assert_eq!(libc::setresuid(NOBODY, NOBODY, NOBODY), 0);
        }
        note_dropped();
        dropped.wait();
        worker.join().unwrap();
        plain.join().unwrap();
        println!("caps child: ok");
    }

    #[test]
    fn an_xdp_worker_thread_can_reopen_its_socket_after_root_is_dropped() {
        if std::env::var_os(CHILD).is_some() {
            child();
            return;
        }
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root (CI is root)"
        );
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "caps::tests::an_xdp_worker_thread_can_reopen_its_socket_after_root_is_dropped",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("caps child: ok"),
            "child: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn before_the_drop_raising_changes_nothing() {
        let before = get().unwrap();
        {
            let _raised = raise().unwrap();
            assert_eq!(get().unwrap(), before);
        }
        assert_eq!(get().unwrap(), before);
    }
}
