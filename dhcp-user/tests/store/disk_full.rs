//! Disk full: a real ENOSPC from a small tmpfs.
//!
//! Issue 5: "Disk full or EIO: stop acknowledging (no Reply without a durable
//! lease), count it, log it loudly, keep answering Advertise, recover by itself
//! when writes succeed again." Needs root (mount); fails if the mount fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{model_of, rec, Model, TempDir};
use dhcp6d::protocol::{LeaseChanges, LeaseOp};
use dhcp6d::store::{Durability, Journal, JournalOptions};

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs {
    mountpoint: PathBuf,
    _dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = TempDir::new("tmpfs");
        let mountpoint = dir.path().to_path_buf();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "dhcp6d-test",
            ])
            .arg(&mountpoint)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            mountpoint,
            _dir: dir,
        }
    }

    fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
    }
}

/// Fill the file system until ENOSPC.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [0xeeu8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn full_disk_stops_acknowledging_and_recovers_when_space_returns() {
    let fs = Tmpfs::mount("512k");
    let state = fs.path().join("state");
    let opts = JournalOptions {
        retry_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let mut model = Model::default();
    {
        let (j, _) = Journal::open_with(&state, opts.clone()).unwrap();
        let h = j.handle();
        let mut ch = LeaseChanges::default();
        ch.push(rec(LeaseOp::Commit, 0));
        let s = h.append(&ch).unwrap();
        assert!(h.wait_durable(s, Duration::from_secs(10)));
        model.apply(&rec(LeaseOp::Commit, 0));

        let filler = fs.path().join("filler");
        fill(&filler);
        // One batch larger than a page so it needs new blocks.
        let hold = h.hold_writer();
        let mut last = 0;
        for i in 1..=300 {
            ch.clear();
            ch.push(rec(LeaseOp::Commit, i));
            last = h.append(&ch).expect("accepted before the failure is known");
        }
        drop(hold);
        wait_until("journal unhealthy", || !h.is_healthy());
        assert!(
            h.durable_seq() < last,
            "nothing in the failed batch is acknowledged"
        );
        ch.clear();
        ch.push(rec(LeaseOp::Commit, 999));
        assert_eq!(h.append(&ch), None, "append refused while the disk is full");
        assert!(h.stats().write_failures >= 1);
        assert!(h.stats().rejected >= 1);
        assert!(
            h.snapshot(|emit| model.0.values().for_each(emit)).is_err(),
            "a snapshot cannot be written either"
        );

        std::fs::remove_file(&filler).unwrap();
        assert!(
            h.wait_durable(last, Duration::from_secs(10)),
            "retried by itself once space is back"
        );
        assert!(h.is_healthy());
        (1..=300).for_each(|i| model.apply(&rec(LeaseOp::Commit, i)));
        ch.clear();
        ch.push(rec(LeaseOp::Commit, 1000));
        let s = h.append(&ch).expect("accepting again");
        assert!(h.wait_durable(s, Duration::from_secs(10)));
        model.apply(&rec(LeaseOp::Commit, 1000));
    }
    let (_j, recovered) = Journal::open_with(&state, opts).unwrap();
    assert_eq!(
        recovered.report.bytes_dropped, 0,
        "the partial write was cut off"
    );
    assert_eq!(model_of(&recovered), model);
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn start_up_on_a_full_disk_serves_without_acknowledging_then_recovers() {
    let fs = Tmpfs::mount("256k");
    let state = fs.path().join("state");
    let opts = JournalOptions {
        retry_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let mut model = Model::default();
    let mut ch = LeaseChanges::default();
    {
        let (j, _) = Journal::open_with(&state, opts.clone()).unwrap();
        let h = j.handle();
        ch.push(rec(LeaseOp::Commit, 1));
        let s = h.append(&ch).unwrap();
        assert!(h.wait_durable(s, Duration::from_secs(10)));
        model.apply(&rec(LeaseOp::Commit, 1));
    }
    let filler = fs.path().join("filler");
    fill(&filler);
    {
        // A crash-restart on a full disk: recovery works, the server comes up,
        // but nothing is acknowledged until a segment can be written.
        let (j, recovered) =
            Journal::open_with(&state, opts.clone()).expect("starts on a full disk");
        assert_eq!(model_of(&recovered), model);
        let h = j.handle();
        assert!(!h.is_healthy());
        ch.clear();
        ch.push(rec(LeaseOp::Commit, 2));
        assert_eq!(h.append(&ch), None);
        std::fs::remove_file(&filler).unwrap();
        wait_until("journal healthy once space is back", || h.is_healthy());
        let s = h.append(&ch).expect("accepting again");
        assert!(h.wait_durable(s, Duration::from_secs(10)));
        model.apply(&rec(LeaseOp::Commit, 2));
        assert!(h.stats().write_failures >= 1);
    }
    let (_j, recovered) = Journal::open_with(&state, opts).unwrap();
    assert_eq!(model_of(&recovered), model);
}
