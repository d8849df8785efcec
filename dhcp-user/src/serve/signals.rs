//! Signals, handled synchronously: SIGTERM/SIGINT stop, SIGHUP reloads,
//! SIGUSR1 wakes the main thread when a thread died ([`super::deaths`]).
//!
//! The four signals are blocked in the main thread before any other thread
//! exists, so every thread inherits the mask and only `sigwait` in the main
//! thread ever sees them: no async-signal-safety concerns, no handler code.

use std::io;

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: clean shutdown.
    Stop,
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGUSR1: a thread that cannot be restarted may have died
    /// ([`THREAD_DIED`]); from outside, ignored.
    ThreadDied,
}

/// What a thread sends the main thread when it records a death.
pub const THREAD_DIED: libc::c_int = libc::SIGUSR1;

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        libc::sigaddset(&mut s, libc::SIGTERM);
        libc::sigaddset(&mut s, libc::SIGINT);
        libc::sigaddset(&mut s, libc::SIGHUP);
        libc::sigaddset(&mut s, THREAD_DIED);
        s
    }
}

/// Block SIGTERM, SIGINT, SIGHUP and SIGUSR1 in this thread (and the threads it starts later).
pub fn block() -> io::Result<()> {
    let s = set();
    // SAFETY: `s` is initialised; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &s, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Wait for the next of the blocked signals.
pub fn wait() -> io::Result<Signal> {
    let s = set();
    let mut sig: libc::c_int = 0;
    // SAFETY: `s` is initialised and `sig` is a valid out-pointer.
    let rc = unsafe { libc::sigwait(&s, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(match sig {
        libc::SIGHUP => Signal::Reload,
        THREAD_DIED => Signal::ThreadDied,
        _ => Signal::Stop,
    })
}
