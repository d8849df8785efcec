//! Signals, handled synchronously: SIGTERM/SIGINT stop, SIGHUP reloads.
//!
//! The three signals are blocked in the main thread before any other thread
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
}

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        libc::sigaddset(&mut s, libc::SIGTERM);
        libc::sigaddset(&mut s, libc::SIGINT);
        libc::sigaddset(&mut s, libc::SIGHUP);
        s
    }
}

/// Block SIGTERM, SIGINT and SIGHUP in this thread (and the threads it starts later).
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
    Ok(if sig == libc::SIGHUP {
        Signal::Reload
    } else {
        Signal::Stop
    })
}
