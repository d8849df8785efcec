//! Threads that die: what a caught panic says, and, in builds with the
//! `testing` feature only, the points where a test makes a thread panic.
//!
//! A test arms one point for a whole process with
//! `DHCP6D_TEST_PANIC=worker|journal-writer|housekeeping` (read once); the
//! first thread to reach that point panics, once. Without the feature
//! [`hit`] is an empty inline function and the variable is never read: the
//! release binary carries no trap. The `dhcp6d-faults` binary (feature
//! `testing`, never installed) is what the supervision tests start.

use std::any::Any;

/// The environment variable that arms a [`Point`] (feature `testing`).
pub const ENV: &str = "DHCP6D_TEST_PANIC";

/// What a panic payload says (`panic!` with a literal or a format string).
pub fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic")
}

/// A place where a test can make the thread it runs on panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// A data-plane worker, as it starts handling a message (the message
    /// goes with the panic, as with a handler bug).
    Worker,
    /// The journal writer, before it writes a batch (nothing of it reaches
    /// the disk).
    JournalWriter,
    /// The housekeeping thread, as it starts a sweep (the first is 10 s
    /// after start).
    Housekeeping,
}

impl Point {
    /// The name `DHCP6D_TEST_PANIC` takes.
    pub const fn name(self) -> &'static str {
        match self {
            Point::Worker => "worker",
            Point::JournalWriter => "journal-writer",
            Point::Housekeeping => "housekeeping",
        }
    }

    /// The point called `name`.
    pub fn from_name(name: &str) -> Option<Point> {
        [Point::Worker, Point::JournalWriter, Point::Housekeeping]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// The point `DHCP6D_TEST_PANIC` arms, if any; always `None` without the
/// `testing` feature.
#[cfg(feature = "testing")]
pub fn armed() -> Option<Point> {
    static ARMED: std::sync::OnceLock<Option<Point>> = std::sync::OnceLock::new();
    *ARMED.get_or_init(|| {
        std::env::var(ENV)
            .ok()
            .and_then(|name| Point::from_name(&name))
    })
}

/// The point `DHCP6D_TEST_PANIC` arms, if any; always `None` without the
/// `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn armed() -> Option<Point> {
    None
}

/// Panic here if a test armed `point` and no thread has hit it yet.
#[cfg(feature = "testing")]
pub fn hit(point: Point) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    if armed() == Some(point) && !FIRED.swap(true, Ordering::Relaxed) {
        panic!(
            "test fault {}: {ENV} asked this thread to panic",
            point.name()
        );
    }
}

/// Panic here if a test armed `point`: never, without the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hit(_point: Point) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_through_their_names() {
        for p in [Point::Worker, Point::JournalWriter, Point::Housekeeping] {
            assert_eq!(Point::from_name(p.name()), Some(p));
        }
        assert_eq!(Point::from_name("journal"), None);
    }

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let s = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*s), "plain");
        let n = 3;
        let f = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(&*f), "formatted 3");
    }
}
