//! The state directory, opened once and then reached only through its
//! descriptor.
//!
//! With `server.user` set the service user owns `state_dir`, and root opens
//! files there at the next start. So nothing in it is reached by path: every
//! open, create, rename, remove and listing is `openat`, `renameat`,
//! `unlinkat` or `getdents` on the directory's descriptor; every file is
//! opened with `O_NOFOLLOW` (a symbolic link in place of one of our files is
//! refused, never followed) and `O_NONBLOCK` (a FIFO in its place cannot hang
//! the start), and what was opened is checked with `fstat`: a regular file
//! with one link (a hard link to `/etc/shadow` is refused too), owned by root,
//! by this process's user or by `server.user`, not writable by group or
//! others. The directory passes the same owner and mode checks. What the
//! store creates is 0600 (files) and 0700 (the directory), whatever the umask.
//!
//! The configured path is opened with `O_NOFOLLOW` as well: `state_dir` must
//! name the directory itself, not a symbolic link to it. Links in the
//! components above it are followed as usual: those are the administrator's,
//! and the parents are created (with the default mode) when missing.
//!
//! Every operation after the open (and every operation on a file opened
//! here, [`StoreFile`]) passes the directory's tap ([`super::file`]): the
//! hook of the power-loss and fault-injection tests, nothing in a release.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Stat, Uid, CWD};
use rustix::io::Errno;

use super::file::{FileOp, StoreFile, Tap};
use super::layout;
use super::StoreError;

/// Mode of every file the store creates.
const FILE_MODE: u32 = 0o600;
/// Mode of the state directory when the store creates it.
const DIR_MODE: u32 = 0o700;
/// Bits no file or directory of ours may have: writable by group or others.
const FOREIGN_WRITE: u32 = 0o022;

const SYMLINK: &str = "is a symbolic link; refusing to follow it";

/// Flags of every file open: no link followed, no FIFO waited on (no effect
/// on a regular file), not inherited by children.
fn file_flags() -> OFlags {
    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// Who may own the directory and the files in it.
#[derive(Clone, Copy, Debug)]
struct Owners {
    /// This process's effective uid (the one that creates files).
    process: u32,
    /// `server.user`'s uid, which owns the directory after a privilege drop.
    user: Option<u32>,
}

impl Owners {
    fn allow(&self, uid: u32) -> bool {
        uid == 0 || uid == self.process || Some(uid) == self.user
    }

    fn describe(&self) -> String {
        let mut who = vec!["root".to_string()];
        if self.process != 0 {
            who.push(format!("uid {} (this process)", self.process));
        }
        if let Some(u) = self.user.filter(|&u| u != 0 && u != self.process) {
            who.push(format!("uid {u} (server.user)"));
        }
        who.join(" or ")
    }
}

/// An open state directory: the descriptor every file operation goes
/// through, and who may own what is in it.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    path: PathBuf,
    owners: Owners,
    tap: Tap,
}

fn refuse(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Unsafe {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path, e: Errno) -> StoreError {
    StoreError::io(path, e.into())
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

impl StateDir {
    /// Open `path` (created 0700 when missing) and check it: a directory, not
    /// a symbolic link, owned by root, by this process's user or by `user`
    /// (`server.user`'s uid), not writable by group or others.
    pub fn open(path: &Path, user: Option<u32>) -> Result<StateDir, StoreError> {
        let owners = Owners {
            process: rustix::process::geteuid().as_raw(),
            user,
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(CWD, path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
                }
                let created = match rfs::mkdirat(CWD, path, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) => true,
                    Err(Errno::EXIST) => false,
                    Err(e) => return Err(io(path, e)),
                };
                let fd = rfs::openat(CWD, path, flags, Mode::empty())
                    .map_err(|e| dir_open_error(path, e))?;
                if created {
                    // mkdir's mode went through the umask.
                    rfs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE)).map_err(|e| io(path, e))?;
                }
                fd
            }
            Err(e) => return Err(dir_open_error(path, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| io(path, e))?;
        check(path, &st, FileType::Directory, owners)?;
        Ok(StateDir {
            fd,
            path: path.to_path_buf(),
            owners,
            tap: Tap::default(),
        })
    }

    /// Put `hook` under every file operation in the directory from now on
    /// (feature `testing`: the power-loss and fault-injection tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn with_hook(mut self, hook: std::sync::Arc<dyn super::FileOpHook>) -> StateDir {
        self.tap = Tap::new(hook);
        self
    }

    /// The directory's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in the directory, for messages.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The names in the directory (those that are UTF-8; ours all are).
    pub(crate) fn names(&self) -> Result<Vec<String>, StoreError> {
        self.tap
            .before(|| FileOp::List)
            .map_err(|e| StoreError::io(&self.path, e))?;
        let mut dir = rfs::Dir::read_from(&self.fd).map_err(|e| io(&self.path, e))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io(&self.path, e))?;
            if let Ok(name) = entry.file_name().to_str() {
                if name != "." && name != ".." {
                    names.push(name.to_string());
                }
            }
        }
        self.tap.done(|| FileOp::List);
        Ok(names)
    }

    /// Open an existing file of ours and check what was opened.
    fn open_checked(&self, name: &str, access: OFlags) -> Result<StoreFile, StoreError> {
        let path = self.path_of(name);
        let (file, write) = (self.tap.next_id(), access != OFlags::RDONLY);
        let op = || FileOp::Open { name, file, write };
        self.tap.before(op).map_err(|e| StoreError::io(&path, e))?;
        let fd = rfs::openat(&self.fd, name, access | file_flags(), Mode::empty())
            .map_err(|e| open_error(&path, e))?;
        let st = rfs::fstat(&fd).map_err(|e| io(&path, e))?;
        check(&path, &st, FileType::RegularFile, self.owners)?;
        self.tap.done(op);
        Ok(StoreFile::new(File::from(fd), self.tap.clone(), file))
    }

    /// Open an existing file for reading.
    pub(crate) fn open_read(&self, name: &str) -> Result<StoreFile, StoreError> {
        self.open_checked(name, OFlags::RDONLY)
    }

    /// Open an existing file for writing (truncating a torn journal tail).
    pub(crate) fn open_write(&self, name: &str) -> Result<StoreFile, StoreError> {
        self.open_checked(name, OFlags::WRONLY)
    }

    /// The whole content of an existing file.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.open_read(name)?
            .read_all()
            .map_err(|e| StoreError::io(&self.path_of(name), e))
    }

    /// [`StateDir::read`], or `None` when there is no such file.
    pub(crate) fn read_if_present(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.read(name) {
            Ok(buf) => Ok(Some(buf)),
            Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Create `name`, 0600, for writing; it must not exist yet (`O_EXCL`,
    /// which never follows a link either).
    pub(crate) fn create_new(&self, name: &str) -> Result<StoreFile, StoreError> {
        self.create(name, OFlags::WRONLY)
    }

    fn create(&self, name: &str, access: OFlags) -> Result<StoreFile, StoreError> {
        let path = self.path_of(name);
        let file = self.tap.next_id();
        let op = || FileOp::Create { name, file };
        self.tap.before(op).map_err(|e| StoreError::io(&path, e))?;
        let flags = access | OFlags::CREATE | OFlags::EXCL | file_flags();
        let fd = rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE)).map_err(
            |e| match e {
                Errno::EXIST if self.is_symlink(name) => refuse(&path, SYMLINK),
                e => io(&path, e),
            },
        )?;
        // The file is there, whatever follows.
        self.tap.done(op);
        // The create mode went through the umask.
        rfs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE)).map_err(|e| io(&path, e))?;
        Ok(StoreFile::new(File::from(fd), self.tap.clone(), file))
    }

    /// Open `name` for reading and writing, creating it 0600 when missing
    /// (the lock file).
    pub(crate) fn open_or_create(&self, name: &str) -> Result<StoreFile, StoreError> {
        // Open, else create: a file that appears or vanishes in between
        // (another server starting) sends us round again.
        for _ in 0..8 {
            match self.open_checked(name, OFlags::RDWR) {
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                other => return other,
            }
            match self.create(name, OFlags::RDWR) {
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                other => return other,
            }
        }
        Err(refuse(
            &self.path_of(name),
            "keeps appearing and disappearing; is something else using the state directory?",
        ))
    }

    fn is_symlink(&self, name: &str) -> bool {
        rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    }

    /// Rename `from` to `to` (a link at `to` is replaced, not followed).
    pub(crate) fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let op = || FileOp::Rename { from, to };
        let failed = |e| StoreError::io(&self.path_of(from), e);
        self.tap.before(op).map_err(failed)?;
        rfs::renameat(&self.fd, from, &self.fd, to).map_err(|e| failed(e.into()))?;
        self.tap.done(op);
        Ok(())
    }

    /// Remove `name` (a link is removed, not followed).
    pub(crate) fn remove(&self, name: &str) -> Result<(), StoreError> {
        self.unlink(name, false)
    }

    /// [`StateDir::remove`]; no such file is fine.
    pub(crate) fn remove_if_present(&self, name: &str) -> Result<(), StoreError> {
        self.unlink(name, true)
    }

    fn unlink(&self, name: &str, missing_ok: bool) -> Result<(), StoreError> {
        let op = || FileOp::Remove { name };
        let failed = |e| StoreError::io(&self.path_of(name), e);
        self.tap.before(op).map_err(failed)?;
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => {
                self.tap.done(op);
                Ok(())
            }
            Err(Errno::NOENT) if missing_ok => Ok(()),
            Err(e) => Err(failed(e.into())),
        }
    }

    /// Make renames and new files in the directory durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let failed = |e| StoreError::io(&self.path, e);
        self.tap.before(|| FileOp::SyncDir).map_err(failed)?;
        rfs::fsync(&self.fd).map_err(|e| failed(e.into()))?;
        self.tap.done(|| FileOp::SyncDir);
        Ok(())
    }

    /// Give the directory and the store's files in it to `uid:gid` (the
    /// privilege drop to `server.user`). Each file is opened and checked as
    /// at start-up and changed through its descriptor, so neither a symbolic
    /// nor a hard link placed there hands someone else's file over. Files
    /// that are not the store's are left alone.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<(), StoreError> {
        let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        rfs::fchown(&self.fd, u, g).map_err(|e| io(&self.path, e))?;
        for name in self.names()? {
            if !layout::is_ours(&name) {
                continue;
            }
            let file = self.open_read(&name)?;
            rfs::fchown(&file, u, g).map_err(|e| io(&self.path_of(&name), e))?;
        }
        Ok(())
    }
}

fn open_error(path: &Path, e: Errno) -> StoreError {
    // With O_NOFOLLOW, ELOOP means the last component is a link.
    if e == Errno::LOOP {
        refuse(path, SYMLINK)
    } else {
        io(path, e)
    }
}

fn dir_open_error(path: &Path, e: Errno) -> StoreError {
    // O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR.
    if e == Errno::NOTDIR {
        match rfs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                return refuse(
                    path,
                    format!("{SYMLINK} (set state_dir to the directory it points to)"),
                );
            }
            Ok(st) => {
                return refuse(
                    path,
                    format!(
                        "is {}, not a directory",
                        type_name(FileType::from_raw_mode(st.st_mode))
                    ),
                )
            }
            Err(_) => {}
        }
    }
    io(path, e)
}

/// Type, owner, mode and (files) link count of what was opened.
fn check(path: &Path, st: &Stat, want: FileType, owners: Owners) -> Result<(), StoreError> {
    let found = FileType::from_raw_mode(st.st_mode);
    if found != want {
        return Err(refuse(
            path,
            format!("is {}, not {}", type_name(found), type_name(want)),
        ));
    }
    if !owners.allow(st.st_uid) {
        return Err(refuse(
            path,
            format!(
                "is owned by uid {}; it must be owned by {}",
                st.st_uid,
                owners.describe()
            ),
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & FOREIGN_WRITE != 0 {
        let fix = if want == FileType::Directory {
            DIR_MODE
        } else {
            FILE_MODE
        };
        return Err(refuse(
            path,
            format!(
                "has mode {mode:04o}; it must not be writable by group or others (e.g. mode {fix:04o})"
            ),
        ));
    }
    if want == FileType::RegularFile && st.st_nlink != 1 {
        return Err(refuse(
            path,
            format!(
                "has {} hard links; refusing a file that may be another file's link",
                st.st_nlink
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_name_who_may_own_the_state_dir() {
        let root = Owners {
            process: 0,
            user: None,
        };
        assert_eq!(root.describe(), "root");
        assert!(root.allow(0) && !root.allow(12345));
        let dropped = Owners {
            process: 0,
            user: Some(65534),
        };
        assert_eq!(dropped.describe(), "root or uid 65534 (server.user)");
        assert!(dropped.allow(65534) && !dropped.allow(12345));
        let unprivileged = Owners {
            process: 1000,
            user: Some(1000),
        };
        assert_eq!(unprivileged.describe(), "root or uid 1000 (this process)");
        assert!(unprivileged.allow(1000) && !unprivileged.allow(1001));
    }
}
