//! Waking workers when records become durable.
//!
//! A worker holding replies for the journal used to sleep in poll() with a
//! 1 ms timeout and look at `durable_seq` on every wake: a group commit takes
//! the 2 ms gather window plus the sync, so most of those wakes found nothing
//! new, and a reply could wait up to 1 ms more than its sync. Instead each
//! worker gets an eventfd that the writer signals after publishing a new
//! `durable_seq`; the worker polls it beside its socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

/// An eventfd that becomes readable when `durable_seq` has advanced.
#[derive(Debug)]
pub struct DurableSignal {
    fd: OwnedFd,
}

impl DurableSignal {
    /// A fresh, non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd(2) with valid flags; the fd is owned right away.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        Ok(DurableSignal {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// The fd to poll for POLLIN.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Make the fd readable (the writer, after a sync).
    pub fn signal(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes from a live buffer to our eventfd. It can
        // only fail when the counter would overflow, i.e. it is readable
        // already, which is all a signal has to achieve.
        unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Make the fd unreadable again (the worker, once poll() said readable).
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a live buffer from our non-blocking
        // eventfd; EAGAIN (nothing signalled) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }
}

/// The writer's list of subscribed workers. Held weakly: a worker that ends
/// drops its signal and the next [`Signals::notify`] forgets it.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    list: Mutex<Vec<Weak<DurableSignal>>>,
}

impl Signals {
    /// A new signal, signalled by every later [`Signals::notify`].
    pub(crate) fn subscribe(&self) -> Option<Arc<DurableSignal>> {
        let signal = match DurableSignal::new() {
            Ok(s) => Arc::new(s),
            Err(e) => {
                // The worker falls back to a short poll timeout.
                tracing::warn!("no eventfd for journal wake-ups: {e}");
                return None;
            }
        };
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.push(Arc::downgrade(&signal));
        Some(signal)
    }

    /// Signal every live subscriber; forget the dropped ones. One write per
    /// worker per group commit (a few hundred a second at most).
    pub(crate) fn notify(&self) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|w| match w.upgrade() {
            Some(s) => {
                s.signal();
                true
            }
            None => false,
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.list.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    }

    #[test]
    fn a_notify_makes_every_subscriber_readable_until_cleared() {
        let signals = Signals::default();
        let a = signals.subscribe().unwrap();
        let b = signals.subscribe().unwrap();
        assert!(
            !readable(a.fd()) && !readable(b.fd()),
            "nothing signalled yet"
        );
        signals.notify();
        assert!(readable(a.fd()) && readable(b.fd()));
        a.clear();
        assert!(!readable(a.fd()), "cleared");
        assert!(readable(b.fd()), "clearing one leaves the other signalled");
        signals.notify();
        signals.notify();
        a.clear();
        assert!(!readable(a.fd()), "one clear takes any number of signals");
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let signals = Signals::default();
        let a = signals.subscribe().unwrap();
        let b = signals.subscribe().unwrap();
        drop(b);
        signals.notify();
        assert_eq!(signals.len(), 1);
        assert!(readable(a.fd()));
    }
}
