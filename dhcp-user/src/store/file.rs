//! The one way the store touches a file's bytes: [`StoreFile`], and the
//! directory operations of [`StateDir`] call the same tap.
//!
//! In the release library a `StoreFile` is a `File` and the tap is an empty
//! inline function, so the group commit's `pwrite` + `fdatasync` compile to
//! what they were. In builds with the `testing` feature a [`FileOpHook`]
//! can be put under a [`StateDir`] ([`StateDir::with_hook`]): it sees every
//! file operation before it runs (and may fail it, or let a write through
//! only in part) and after it succeeded. The power-loss simulation and the
//! fault injection of `dhcp-user/tests/store` are built on it.
//!
//! [`StateDir`]: super::StateDir
//! [`StateDir::with_hook`]: super::StateDir::with_hook

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

/// Which open file an operation is on: a number given at each open or
/// create of one state directory's hooked files (0 without a hook).
pub type FileId = u64;

/// A file operation of the store, as its hook sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
#[cfg_attr(
    not(any(test, feature = "testing")),
    expect(dead_code, reason = "only a hook reads an operation")
)]
pub enum FileOp<'a> {
    /// List the state directory.
    List,
    /// Open the existing file `name`; `write`: for writing.
    Open {
        /// The name in the state directory.
        name: &'a str,
        /// The id the opened file gets.
        file: FileId,
        /// Opened for writing (or reading and writing).
        write: bool,
    },
    /// Create the new file `name` (it must not exist).
    Create {
        /// The name in the state directory.
        name: &'a str,
        /// The id the created file gets.
        file: FileId,
    },
    /// Read a whole file.
    Read {
        /// The file.
        file: FileId,
    },
    /// Write `data` at `offset`.
    Write {
        /// The file.
        file: FileId,
        /// Where.
        offset: u64,
        /// The bytes (after a torn write, only those written).
        data: &'a [u8],
    },
    /// Cut (or extend) the file to `len` bytes.
    SetLen {
        /// The file.
        file: FileId,
        /// The new length.
        len: u64,
    },
    /// Make the file's data durable (`fdatasync`; `fsync` when `!data_only`).
    Sync {
        /// The file.
        file: FileId,
        /// fdatasync rather than fsync.
        data_only: bool,
    },
    /// Rename `from` to `to` in the state directory.
    Rename {
        /// The old name.
        from: &'a str,
        /// The new name (replaced if it exists).
        to: &'a str,
    },
    /// Remove `name` from the state directory.
    Remove {
        /// The name.
        name: &'a str,
    },
    /// Make the directory's entries durable (fsync of the directory).
    SyncDir,
}

/// What a hook says about an operation before it runs.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug)]
pub enum Verdict {
    /// Run it.
    Proceed,
    /// Do not run it; the store gets this error instead.
    Fail(io::Error),
    /// A write only: write the first `keep` bytes, then fail with `error`
    /// (a disk that fills up in the middle of a write).
    Torn {
        /// Bytes that reach the file.
        keep: usize,
        /// What the store gets.
        error: io::Error,
    },
}

/// Watches (and may fail) the file operations of one state directory
/// (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub trait FileOpHook: Send + Sync {
    /// `op` is about to run.
    fn before(&self, op: &FileOp<'_>) -> Verdict;
    /// `op` ran and succeeded (a torn write: with the bytes written).
    fn done(&self, op: &FileOp<'_>);
}

/// The hook of a state directory and of the files opened through it.
/// Nothing (a zero-sized type) without the `testing` feature.
#[derive(Clone, Default)]
pub(crate) struct Tap {
    #[cfg(any(test, feature = "testing"))]
    hook: Option<std::sync::Arc<dyn FileOpHook>>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(any(test, feature = "testing"))]
        let hooked = self.hook.is_some();
        #[cfg(not(any(test, feature = "testing")))]
        let hooked = false;
        f.debug_struct("Tap").field("hooked", &hooked).finish()
    }
}

/// How much of an operation may run: all of it, or (a torn write) `n` bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    All,
    #[cfg_attr(
        not(any(test, feature = "testing")),
        expect(dead_code, reason = "only a hook tears a write")
    )]
    Part(usize),
}

#[cfg(any(test, feature = "testing"))]
impl Tap {
    pub(crate) fn new(hook: std::sync::Arc<dyn FileOpHook>) -> Tap {
        Tap { hook: Some(hook) }
    }

    /// A fresh id for a file about to be opened (0 without a hook).
    pub(crate) fn next_id(&self) -> FileId {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        match self.hook {
            Some(_) => NEXT.fetch_add(1, Ordering::Relaxed),
            None => 0,
        }
    }

    /// Ask the hook whether `op` may run.
    pub(crate) fn before<'a>(&self, op: impl FnOnce() -> FileOp<'a>) -> io::Result<Allow> {
        let Some(hook) = &self.hook else {
            return Ok(Allow::All);
        };
        let op = op();
        match hook.before(&op) {
            Verdict::Proceed => Ok(Allow::All),
            Verdict::Fail(e) => Err(e),
            Verdict::Torn { keep, error } => match op {
                FileOp::Write { data, .. } if keep < data.len() => Ok(Allow::Part(keep)),
                FileOp::Write { .. } => Ok(Allow::All),
                _ => Err(error),
            },
        }
    }

    /// Tell the hook that `op` succeeded.
    pub(crate) fn done<'a>(&self, op: impl FnOnce() -> FileOp<'a>) {
        if let Some(hook) = &self.hook {
            hook.done(&op());
        }
    }

    /// The error a torn write ends with.
    fn torn_error() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
}

#[cfg(not(any(test, feature = "testing")))]
impl Tap {
    #[inline(always)]
    pub(crate) fn next_id(&self) -> FileId {
        0
    }

    #[inline(always)]
    pub(crate) fn before<'a>(&self, _op: impl FnOnce() -> FileOp<'a>) -> io::Result<Allow> {
        Ok(Allow::All)
    }

    #[inline(always)]
    pub(crate) fn done<'a>(&self, _op: impl FnOnce() -> FileOp<'a>) {}

    #[inline(always)]
    fn torn_error() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOSPC)
    }
}

/// A file in the state directory, opened through [`StateDir`]. Its
/// operations are `File`'s, past the directory's hook.
///
/// [`StateDir`]: super::StateDir
#[derive(Debug)]
pub(crate) struct StoreFile {
    file: File,
    tap: Tap,
    id: FileId,
    /// Where the next [`Write::write`] goes (writes at an offset leave it).
    pos: u64,
}

impl StoreFile {
    pub(crate) fn new(file: File, tap: Tap, id: FileId) -> StoreFile {
        StoreFile {
            file,
            tap,
            id,
            pos: 0,
        }
    }

    /// `pwrite` all of `data` at `offset`.
    pub(crate) fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let file = self.id;
        match self.tap.before(|| FileOp::Write { file, offset, data })? {
            Allow::All => {
                self.file.write_all_at(data, offset)?;
                self.tap.done(|| FileOp::Write { file, offset, data });
                Ok(())
            }
            Allow::Part(keep) => {
                let data = &data[..keep];
                self.file.write_all_at(data, offset)?;
                self.tap.done(|| FileOp::Write { file, offset, data });
                Err(Tap::torn_error())
            }
        }
    }

    /// Cut (or extend) the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        let file = self.id;
        self.tap.before(|| FileOp::SetLen { file, len })?;
        self.file.set_len(len)?;
        self.tap.done(|| FileOp::SetLen { file, len });
        Ok(())
    }

    /// `fsync`.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        self.sync_with(false, &|f: &File| f.sync_all())
    }

    /// Make the data durable with `sync` (the journal's [`SyncFn`]:
    /// `fdatasync` unless a test swaps it).
    ///
    /// [`SyncFn`]: super::SyncFn
    pub(crate) fn sync_data_with(&self, sync: &dyn Fn(&File) -> io::Result<()>) -> io::Result<()> {
        self.sync_with(true, sync)
    }

    fn sync_with(&self, data_only: bool, sync: &dyn Fn(&File) -> io::Result<()>) -> io::Result<()> {
        let file = self.id;
        self.tap.before(|| FileOp::Sync { file, data_only })?;
        sync(&self.file)?;
        self.tap.done(|| FileOp::Sync { file, data_only });
        Ok(())
    }

    /// The whole file, from its start.
    pub(crate) fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let file = self.id;
        self.tap.before(|| FileOp::Read { file })?;
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf)?;
        self.tap.done(|| FileOp::Read { file });
        Ok(buf)
    }
}

impl Write for StoreFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let (file, offset) = (self.id, self.pos);
        let n = match self.tap.before(|| FileOp::Write { file, offset, data })? {
            Allow::All => self.file.write(data)?,
            // A short write; the hook fails the next one (the disk is full).
            Allow::Part(0) => return Err(Tap::torn_error()),
            Allow::Part(keep) => self.file.write(&data[..keep])?,
        };
        let data = &data[..n];
        self.tap.done(|| FileOp::Write { file, offset, data });
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for StoreFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Fails the first write, tears the second after 3 bytes, logs what ran.
    #[derive(Default)]
    struct Script {
        writes: Mutex<u32>,
        done: Mutex<Vec<String>>,
    }

    impl FileOpHook for Script {
        fn before(&self, op: &FileOp<'_>) -> Verdict {
            let FileOp::Write { .. } = op else {
                return Verdict::Proceed;
            };
            let mut n = self.writes.lock().unwrap();
            *n += 1;
            match *n {
                1 => Verdict::Fail(io::Error::from_raw_os_error(libc::EIO)),
                2 => Verdict::Torn {
                    keep: 3,
                    error: io::Error::from_raw_os_error(libc::ENOSPC),
                },
                _ => Verdict::Proceed,
            }
        }

        fn done(&self, op: &FileOp<'_>) {
            self.done.lock().unwrap().push(format!("{op:?}"));
        }
    }

    fn scratch_file(tag: &str) -> (std::path::PathBuf, File) {
        let p = std::env::temp_dir().join(format!("dhcp6d-file-{tag}-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        (p, f)
    }

    #[test]
    fn a_failed_write_writes_nothing_and_a_torn_one_only_what_it_keeps() {
        let (path, f) = scratch_file("tap");
        let hook = Arc::new(Script::default());
        let file = StoreFile::new(f, Tap::new(hook.clone()), 7);
        let e = file.write_all_at(b"abcdef", 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let e = file.write_all_at(b"ABCDEF", 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(std::fs::read(&path).unwrap(), b"ABC");
        file.write_all_at(b"xyz", 3).unwrap();
        file.set_len(5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ABCxy");
        // The hook heard of what ran, with the bytes that were written.
        let done = hook.done.lock().unwrap().clone();
        assert_eq!(done.len(), 3, "{done:?}");
        assert!(
            done[0].contains("file: 7, offset: 0, data: [65, 66, 67]"),
            "{done:?}"
        );
        assert!(done[2].contains("SetLen { file: 7, len: 5 }"), "{done:?}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_torn_sequential_write_is_short_and_the_position_follows_it() {
        let (path, f) = scratch_file("seq");
        let hook = Arc::new(Script::default());
        let mut file = StoreFile::new(f, Tap::new(hook.clone()), 1);
        assert!(file.write(b"abcdef").is_err());
        assert_eq!(file.write(b"ABCDEF").unwrap(), 3);
        file.write_all(b"DEF").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ABCDEF");
        let done = hook.done.lock().unwrap().clone();
        assert!(done[1].contains("offset: 3"), "{done:?}");
        let _ = std::fs::remove_file(&path);
    }
}
