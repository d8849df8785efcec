//! Threads of `serve` that are not restarted in place: the journal writer
//! (its encoder dictionary and segment position die with it) and
//! housekeeping (see housekeeping.rs for why). Their death stops the whole
//! process with exit status 1, so the service manager starts a fresh one,
//! rather than leaving a server that looks alive: with the writer gone,
//! Advertise would still go out with the configured Preference and attract
//! clients that never get a Reply.
//!
//! The dying thread records what died here and sends [`THREAD_DIED`] to the
//! main thread, which is waiting in `sigwait`; the main thread then shuts
//! down in the usual order and `serve` returns [`super::ServeError::ThreadDied`].

use std::sync::OnceLock;

use super::signals::THREAD_DIED;

/// The first death; later ones are logged only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadDeath {
    /// Which thread (`"journal writer"`, `"housekeeping"`).
    pub thread: &'static str,
    /// How it died (`"panicked: ..."`).
    pub cause: String,
}

/// Where deaths are recorded; made by the main thread.
pub struct Deaths {
    main: libc::pthread_t,
    first: OnceLock<ThreadDeath>,
}

impl Deaths {
    /// Deaths to be reported to the calling thread (the one in `sigwait`).
    pub fn for_this_thread() -> Deaths {
        Deaths {
            // SAFETY: pthread_self has no preconditions.
            main: unsafe { libc::pthread_self() },
            first: OnceLock::new(),
        }
    }

    /// `thread` died of `cause`: log it, and wake the main thread to stop.
    pub fn report(&self, thread: &'static str, cause: &str) {
        tracing::error!(
            thread,
            "{thread} thread died ({cause}); dhcp6d stops with exit status 1 so that the service manager restarts it"
        );
        let death = ThreadDeath {
            thread,
            cause: cause.to_string(),
        };
        if self.first.set(death).is_ok() {
            // SAFETY: the main thread lives until `serve` returns, and it
            // outlives every thread that can report (all are joined first).
            let rc = unsafe { libc::pthread_kill(self.main, THREAD_DIED) };
            if rc != 0 {
                tracing::error!(
                    "cannot wake the main thread: {}",
                    std::io::Error::from_raw_os_error(rc)
                );
            }
        }
    }

    /// The first death recorded, if any.
    pub fn first(&self) -> Option<&ThreadDeath> {
        self.first.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::signals;

    /// A report from another thread wakes `sigwait` with `ThreadDied`, and
    /// the first death is the one kept.
    #[test]
    fn a_death_on_another_thread_wakes_the_waiting_thread() {
        // On a fresh thread: the mask must be set before the reporters start,
        // and the test harness's own threads keep theirs.
        std::thread::spawn(|| {
            signals::block().unwrap();
            let deaths = std::sync::Arc::new(Deaths::for_this_thread());
            let d = deaths.clone();
            let reporter = std::thread::spawn(move || {
                d.report("journal writer", "panicked: first");
                d.report("housekeeping", "panicked: second");
            });
            assert_eq!(signals::wait().unwrap(), signals::Signal::ThreadDied);
            reporter.join().unwrap();
            assert_eq!(
                deaths.first(),
                Some(&ThreadDeath {
                    thread: "journal writer",
                    cause: "panicked: first".into()
                })
            );
        })
        .join()
        .unwrap();
    }
}
