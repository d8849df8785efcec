//! Shared by the tests that run the real `dhcp6d serve` in network
//! namespaces (`serve`, `stats_load`). The binary's main.rs declares
//! `core_harness` and `dataplane_common` (from tests/tests/).

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::core_harness;
use crate::dataplane_common::{client_socket, recv, send_multicast, Lab, CLIENT_IF, SERVER_IF};
use dhcp6d::control::client;
use dhcp6d::wire::{AnyMessage, MessageType};

pub const BIN: &str = env!("CARGO_BIN_EXE_dhcp6d");

pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_serve")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn config_text(dir: &Path, preference: u8, pool: &str) -> String {
    config_text_io(dir, "socket", preference, pool)
}

pub fn config_text_io(dir: &Path, io: &str, preference: u8, pool: &str) -> String {
    format!(
        "[server]\ninterfaces = [\"{SERVER_IF}\"]\nio = \"{io}\"\npreference = {preference}\n\
         state_dir = \"{}\"\ncontrol_socket = \"{}\"\n\
         [[subnet]]\nprefix = \"2001:db8:1::/64\"\ninterface = \"{SERVER_IF}\"\npools = [\"{pool}\"]\n",
        dir.join("state").display(),
        dir.join("control.sock").display()
    )
}

/// The server process; killed if the test ends without stopping it.
pub struct Served {
    pub child: Child,
    pub log: PathBuf,
}

impl Served {
    pub fn start(lab: &Lab, config: &Path, log: PathBuf) -> Served {
        Self::start_with(lab, Path::new(BIN), &[], config, log)
    }

    /// `dhcp6d-faults serve` with `DHCP6D_TEST_PANIC=point`: the first
    /// thread to reach that fault point panics (`dhcp6d::fault`).
    pub fn start_faulty(lab: &Lab, point: &str, config: &Path, log: PathBuf) -> Served {
        let bin = dhcp6d_tests::dhcp6d::fault_binary().expect("build dhcp6d-faults");
        Self::start_with(lab, &bin, &[(dhcp6d::fault::ENV, point)], config, log)
    }

    fn start_with(
        lab: &Lab,
        bin: &Path,
        env: &[(&str, &str)],
        config: &Path,
        log: PathBuf,
    ) -> Served {
        let child = Command::new("ip")
            .args(["netns", "exec", lab.server.name()])
            .arg(bin)
            .args(["serve", "-c"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run ip netns exec dhcp6d serve");
        Served { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll the control socket until it answers (readiness, never a fixed sleep).
    pub fn wait_ready(&mut self, socket: &Path) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok((_, raw)) = client::stats(socket) {
                return raw;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dhcp6d serve exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "not ready: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    pub fn wait_exit(&mut self) -> i32 {
        self.wait_exit_within(Duration::from_secs(15))
    }

    /// The exit status, once it has exited within `limit`.
    pub fn wait_exit_within(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within {limit:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stats(socket: &Path) -> serde_json::Value {
    client::stats(socket).expect("stats").1
}

pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One client message; the raw answer, or None if none came within 3 s.
pub fn try_exchange(lab: &Lab, msg: Vec<u8>) -> Option<Vec<u8>> {
    lab.client.run(move || {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &msg);
        recv(&s).map(|(m, _)| m)
    })
}

/// One client exchange in the client namespace; returns the decoded reply's
/// (type, preference, server DUID, first address).
pub fn exchange(lab: &Lab, msg: Vec<u8>) -> (MessageType, Option<u8>, Vec<u8>, Option<Ipv6Addr>) {
    let bytes = lab.client.run(move || {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &msg);
        recv(&s).expect("no reply from dhcp6d serve").0
    });
    let AnyMessage::Message(m) = AnyMessage::decode(&bytes).expect("reply decodes") else {
        panic!("relay reply to a direct client")
    };
    (
        m.msg_type,
        m.options.preference(),
        m.options
            .server_id()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default(),
        core_harness::first_addr(&m).map(|(a, _, _)| a),
    )
}
