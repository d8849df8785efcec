//! The state directory when someone else can write to it.
//!
//! Hardening issue, item 7: "With `server.user` set, the service user owns
//! `state_dir`, and at the next start root opens `lock`, the last segment and
//! `server-duid` there, following symlinks: a link from `lock` to
//! `/etc/shadow` truncates it. Open everything with `O_NOFOLLOW`/`openat` on
//! the directory's descriptor, refuse a state dir or files with the wrong
//! owner or mode, and create files 0600 / the directory 0700."
//!
//! The "victim" below stands for `/etc/shadow`: a root-owned file outside the
//! state directory whose content must come through every start unchanged.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{model_of, rec, Model, TempDir};
use dhcp6d::protocol::{LeaseChanges, LeaseOp};
use dhcp6d::store::{
    duid_uuid, load_or_create_duid, Durability, Journal, JournalOptions, StateDir, StoreError,
};

const SECRET: &[u8] = b"root:$6$saltsalt$hash:19000:0:99999:7:::\n";
const SYMLINK: &str = "is a symbolic link; refusing to follow it";
/// Someone who is neither root nor the test process.
const STRANGER: u32 = 12345;

/// A file outside the state directory, with [`SECRET`] in it.
struct Victim {
    _dir: TempDir,
    path: PathBuf,
}

impl Victim {
    fn new() -> Victim {
        let dir = TempDir::new("victim");
        let path = dir.path().join("shadow");
        fs::write(&path, SECRET).unwrap();
        Victim { _dir: dir, path }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            fs::read(&self.path).unwrap(),
            SECRET,
            "the file behind the link was changed"
        );
    }
}

/// A state directory with 20 committed bindings in it, and their model.
fn state_with_leases(tag: &str) -> (TempDir, Model) {
    let dir = TempDir::new(tag);
    let mut model = Model::default();
    let (j, _) = Journal::open(dir.path()).unwrap();
    let h = j.handle();
    for i in 0..20 {
        let r = rec(LeaseOp::Commit, i);
        let mut ch = LeaseChanges::default();
        assert!(ch.push(r));
        let seq = h.append(&ch).expect("journal healthy");
        assert!(h.wait_durable(seq, Duration::from_secs(10)));
        model.apply(&r);
    }
    drop(j);
    (dir, model)
}

/// The newest journal segment in `dir`.
fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

/// `err` is the refusal of `path` for `reason`, and says so with the path.
fn assert_refused(err: StoreError, path: &Path, reason: &str) {
    let msg = err.to_string();
    match err {
        StoreError::Unsafe { path: p, reason: r } => {
            assert_eq!(p, path, "{msg}");
            assert!(r.contains(reason), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        other => panic!("expected a refusal of {}, got {other:?}", path.display()),
    }
}

#[test]
fn a_lock_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let dir = TempDir::new("sd-lock-link");
    let victim = Victim::new();
    let lock = dir.path().join("lock");
    symlink(&victim.path, &lock).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &lock, SYMLINK);
    victim.assert_untouched();
}

#[test]
fn a_lock_that_is_a_hard_link_is_refused_and_its_target_untouched() {
    let dir = TempDir::new("sd-lock-hard");
    let victim = Victim::new();
    let lock = dir.path().join("lock");
    fs::hard_link(&victim.path, &lock).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &lock, "has 2 hard links");
    victim.assert_untouched();
}

/// The last segment is opened for writing at recovery (a torn tail is cut
/// off): through a link, a file without a segment header was cut to zero.
#[test]
fn a_last_segment_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let (dir, _) = state_with_leases("sd-seg-link");
    let victim = Victim::new();
    let seg = last_segment(dir.path());
    fs::remove_file(&seg).unwrap();
    symlink(&victim.path, &seg).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &seg, SYMLINK);
    victim.assert_untouched();
}

#[test]
fn a_last_segment_that_is_a_hard_link_is_refused_and_its_target_untouched() {
    let (dir, _) = state_with_leases("sd-seg-hard");
    let victim = Victim::new();
    let seg = last_segment(dir.path());
    fs::remove_file(&seg).unwrap();
    fs::hard_link(&victim.path, &seg).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &seg, "has 2 hard links");
    victim.assert_untouched();
}

/// A FIFO does not hang the start (it is opened non-blocking, then refused).
#[test]
fn a_segment_that_is_a_fifo_is_refused() {
    let (dir, _) = state_with_leases("sd-seg-fifo");
    let seg = last_segment(dir.path());
    fs::remove_file(&seg).unwrap();
    let status = Command::new("mkfifo").arg(&seg).status().unwrap();
    assert!(status.success());
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &seg, "is a FIFO, not a regular file");
}

/// Read through a link, another file's hex would become the server's DUID.
#[test]
fn a_server_duid_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let tmp = TempDir::new("sd-duid-link");
    let victim = Victim::new();
    fs::write(&victim.path, "000400112233445566778899aabbccddeeff\n").unwrap();
    let duid = tmp.path().join("server-duid");
    symlink(&victim.path, &duid).unwrap();
    let dir = StateDir::open(tmp.path(), None).unwrap();
    let err = load_or_create_duid(&dir, || duid_uuid([7; 16])).unwrap_err();
    assert_refused(err, &duid, SYMLINK);
    assert_eq!(
        fs::read(&victim.path).unwrap(),
        b"000400112233445566778899aabbccddeeff\n"
    );
}

/// The DUID is written to `server-duid.tmp` first: a link left there was
/// written through (truncated, then filled with the new DUID).
#[test]
fn a_server_duid_temp_file_that_is_a_symlink_is_replaced_not_written_through() {
    let tmp = TempDir::new("sd-duid-tmp");
    let victim = Victim::new();
    symlink(&victim.path, tmp.path().join("server-duid.tmp")).unwrap();
    let dir = StateDir::open(tmp.path(), None).unwrap();
    let duid = load_or_create_duid(&dir, || duid_uuid([7; 16])).unwrap();
    victim.assert_untouched();
    let file = tmp.path().join("server-duid");
    assert!(fs::symlink_metadata(&file).unwrap().is_file());
    assert_eq!(
        fs::read_to_string(&file).unwrap().trim(),
        hex::encode(&duid)
    );
    assert!(!tmp.path().join("server-duid.tmp").exists());
}

#[test]
fn a_world_writable_state_dir_is_refused() {
    let dir = TempDir::new("sd-0777");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, dir.path(), "has mode 0777");
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was created in it"
    );
}

#[test]
fn a_group_writable_file_is_refused() {
    let (dir, _) = state_with_leases("sd-0660");
    let seg = last_segment(dir.path());
    fs::set_permissions(&seg, fs::Permissions::from_mode(0o660)).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(err, &seg, "has mode 0660");
}

/// `state_dir` must name the directory, not a link to it (a choice:
/// docs/operations.md, "State directory").
#[test]
fn a_state_dir_that_is_a_symlink_is_refused() {
    let (dir, _) = state_with_leases("sd-dir-link");
    let parent = TempDir::new("sd-dir-link-parent");
    let link = parent.path().join("state");
    symlink(dir.path(), &link).unwrap();
    let err = Journal::open(&link).unwrap_err();
    assert_refused(err, &link, SYMLINK);
}

#[test]
fn files_and_a_dir_owned_by_someone_else_are_refused() {
    let (dir, _) = state_with_leases("sd-owner");
    for name in ["lock", "segment"] {
        let file = match name {
            "lock" => dir.path().join("lock"),
            _ => last_segment(dir.path()),
        };
        std::os::unix::fs::chown(&file, Some(STRANGER), None).unwrap();
        let err = Journal::open(dir.path()).unwrap_err();
        assert_refused(
            err,
            &file,
            "is owned by uid 12345; it must be owned by root",
        );
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    }
    std::os::unix::fs::chown(dir.path(), Some(STRANGER), None).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(
        err,
        dir.path(),
        "is owned by uid 12345; it must be owned by root",
    );
}

/// After the privilege drop `server.user` owns everything; the next start
/// accepts that (and only for that user) and recovers every binding.
#[test]
fn a_state_dir_given_to_server_user_is_accepted_for_that_user_only() {
    let (dir, model) = state_with_leases("sd-user");
    StateDir::open(dir.path(), Some(STRANGER))
        .unwrap()
        .give_to(STRANGER, STRANGER)
        .unwrap();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (STRANGER, STRANGER));
    }
    let err = Journal::open(dir.path()).unwrap_err();
    assert_refused(
        err,
        dir.path(),
        "is owned by uid 12345; it must be owned by root",
    );
    let err = StateDir::open(dir.path(), Some(STRANGER + 1)).unwrap_err();
    assert_refused(
        err,
        dir.path(),
        "is owned by uid 12345; it must be owned by root or uid 12346 (server.user)",
    );
    let state = StateDir::open(dir.path(), Some(STRANGER)).unwrap();
    let (_j, recovered) = Journal::open_in(state, JournalOptions::default()).unwrap();
    assert_eq!(model_of(&recovered), model);
}

/// Giving the directory away changes files through their own descriptors:
/// a hard link to a root file placed under one of our names hands nothing over.
#[test]
fn giving_the_state_dir_away_does_not_hand_over_a_linked_file() {
    let (dir, _) = state_with_leases("sd-give-hard");
    let victim = Victim::new();
    let duid = dir.path().join("server-duid");
    fs::hard_link(&victim.path, &duid).unwrap();
    let err = StateDir::open(dir.path(), Some(STRANGER))
        .unwrap()
        .give_to(STRANGER, STRANGER)
        .unwrap_err();
    assert_refused(err, &duid, "has 2 hard links");
    assert_eq!(fs::metadata(&victim.path).unwrap().uid(), 0);
    victim.assert_untouched();
}

/// Name of the variable that tells [`umask_0_child`] where to work.
const UMASK_CHILD: &str = "DHCP6D_TEST_UMASK_CHILD_DIR";

/// The umask is per process, and a umask of 0 would leak into the other
/// tests' files: the check runs in a process of its own.
#[test]
fn created_files_are_0600_and_the_dir_0700_with_umask_0() {
    let tmp = TempDir::new("sd-umask");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "state_dir::umask_0_child",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(UMASK_CHILD, tmp.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run: {text}"
    );
}

#[test]
#[ignore = "run by created_files_are_0600_and_the_dir_0700_with_umask_0, in its own process"]
fn umask_0_child() {
    let base = std::env::var_os(UMASK_CHILD).expect("run by the umask test");
    // SAFETY: umask only sets this process's file mode creation mask.
    unsafe { libc::umask(0) };
    let state = Path::new(&base).join("state");
    let (j, _) = Journal::open(&state).unwrap();
    let h = j.handle();
    let mut ch = LeaseChanges::default();
    assert!(ch.push(rec(LeaseOp::Commit, 1)));
    let seq = h.append(&ch).unwrap();
    assert!(h.wait_durable(seq, Duration::from_secs(10)));
    h.snapshot(|emit| emit(&rec(LeaseOp::Commit, 1))).unwrap();
    load_or_create_duid(j.state_dir(), || duid_uuid([7; 16])).unwrap();
    drop(j);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&state), 0o700, "the state dir");
    let mut seen = Vec::new();
    for entry in fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    seen.sort();
    assert!(
        seen.iter().any(|n| n == "lock")
            && seen.iter().any(|n| n == "server-duid")
            && seen.iter().any(|n| n.ends_with(".snap"))
            && seen.iter().filter(|n| n.ends_with(".seg")).count() >= 2,
        "every kind of file was created: {seen:?}"
    );
}
