//! `dhcp6d serve --io socket` end to end in network namespaces: the real
//! binary answers a real UDP client, the operator commands read it, a
//! second server on the same state_dir is refused, SIGHUP reloads (and
//! refuses a reload that would orphan a binding), SIGTERM stops cleanly
//! and the lease survives a restart. Needs root and iproute2 (fails loudly
//! without them).

#[path = "../../tests/tests/core_harness/mod.rs"]
mod core_harness;
#[path = "../../tests/tests/dataplane_common/mod.rs"]
mod dataplane_common;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataplane_common::{client_socket, recv, send_multicast, Lab, CLIENT_IF, SERVER_IF};
use dhcp6d::control::client;
use dhcp6d::wire::{AnyMessage, MessageType};

const BIN: &str = env!("CARGO_BIN_EXE_dhcp6d");

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_serve")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config_text(dir: &Path, preference: u8, pool: &str) -> String {
    format!(
        "[server]\ninterfaces = [\"{SERVER_IF}\"]\nio = \"socket\"\npreference = {preference}\n\
         state_dir = \"{}\"\ncontrol_socket = \"{}\"\n\
         [[subnet]]\nprefix = \"2001:db8:1::/64\"\ninterface = \"{SERVER_IF}\"\npools = [\"{pool}\"]\n",
        dir.join("state").display(),
        dir.join("control.sock").display()
    )
}

/// The server process; killed if the test ends without stopping it.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Served {
    fn start(lab: &Lab, config: &Path, log: PathBuf) -> Served {
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.server.name, BIN, "serve", "-c"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run ip netns exec dhcp6d serve");
        Served { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll the control socket until it answers (readiness, never a fixed sleep).
    fn wait_ready(&mut self, socket: &Path) -> serde_json::Value {
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

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) },
            0
        );
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            assert!(Instant::now() < deadline, "did not stop: {}", self.log());
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

fn stats(socket: &Path) -> serde_json::Value {
    client::stats(socket).expect("stats").1
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One client exchange in the client namespace; returns the decoded reply's
/// (type, preference, server DUID, first address).
fn exchange(lab: &Lab, msg: Vec<u8>) -> (MessageType, Option<u8>, Vec<u8>, Option<Ipv6Addr>) {
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

/// RFC 9915 §18.3.1 (Solicit → Advertise with our Server Identifier and the
/// Preference option) and §18.3.2 (Request → Reply committing the address),
/// through the real binary in socket mode.
#[test]
fn rfc9915_18_3_serve_socket_end_to_end() {
    let lab = Lab::new();
    let dir = scratch("end_to_end");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    let pool = "2001:db8:1::1000-2001:db8:1::1fff";
    std::fs::write(&config, config_text(&dir, 255, pool)).unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve1.log"));
    let first = served.wait_ready(&socket);
    let server_duid = hex::decode(first["server_duid"].as_str().unwrap()).unwrap();
    assert_eq!(first["io"], "socket");

    let (t, pref, sid, offered) = exchange(&lab, core_harness::solicit(1));
    assert_eq!(t, MessageType::Advertise);
    assert_eq!(pref, Some(255));
    assert_eq!(sid, server_duid);
    let offered = offered.expect("an address is offered");
    let pool_first: Ipv6Addr = "2001:db8:1::1000".parse().unwrap();
    let pool_last: Ipv6Addr = "2001:db8:1::1fff".parse().unwrap();
    assert!(offered >= pool_first && offered <= pool_last, "{offered}");

    let (t, _, _, committed) =
        exchange(&lab, core_harness::request(1, &server_duid, Some(offered)));
    assert_eq!((t, committed), (MessageType::Reply, Some(offered)));

    let s = stats(&socket);
    assert_eq!(s["rx"]["solicit"], 1);
    assert_eq!(s["rx"]["request"], 1);
    assert_eq!(s["tx"]["advertise"], 1);
    assert_eq!(s["tx"]["reply"], 1);
    assert_eq!(s["leases"]["addresses"], 1);
    assert!(s["journal"]["records"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["pools"][0]["used"], 1);
    assert_eq!(s["pools"][0]["capacity"], "4096");

    let client_duid = hex::encode(core_harness::client_duid(1));
    let out = Command::new(BIN)
        .args(["leases", "--json", "--duid", &client_duid, "--control"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(out.status.success());
    let leases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(leases["total"], 1);
    assert_eq!(leases["leases"][0]["lease"], offered.to_string());

    // A second server on the same state_dir refuses to start (exit 1).
    let second = Command::new("ip")
        .args(["netns", "exec", &lab.server.name, BIN, "serve", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!(
            "state directory {} is in use by another dhcp6d (pid {}); refusing to start",
            dir.join("state").display(),
            served.child.id()
        )),
        "{err}"
    );

    // SIGHUP: a new preference takes effect without a restart.
    std::fs::write(&config, config_text(&dir, 7, pool)).unwrap();
    served.signal(libc::SIGHUP);
    eventually("preference 7 after SIGHUP", || {
        stats(&socket)["preference"] == 7
    });
    let (_, pref, _, again) = exchange(&lab, core_harness::solicit(1));
    assert_eq!(
        (pref, again),
        (Some(7), Some(offered)),
        "binding kept across reload"
    );

    // SIGHUP with a pool that no longer holds the live binding: refused.
    std::fs::write(
        &config,
        config_text(&dir, 9, "2001:db8:1::2000-2001:db8:1::2fff"),
    )
    .unwrap();
    served.signal(libc::SIGHUP);
    eventually("reload refusal logged", || {
        served
            .log()
            .contains("reload refused: 1 live binding would be outside every pool")
    });
    assert_eq!(stats(&socket)["preference"], 7);

    // SIGTERM: clean stop, exit 0.
    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());
    let log = served.log();
    assert!(log.contains("journal synced and closed"), "{log}");
    assert!(!socket.exists(), "control socket removed at stop");

    // Restart: the lease was on disk.
    std::fs::write(&config, config_text(&dir, 255, pool)).unwrap();
    let mut again = Served::start(&lab, &config, dir.join("serve2.log"));
    let s = again.wait_ready(&socket);
    assert_eq!(s["leases"]["addresses"], 1, "{}", again.log());
    assert_eq!(
        s["server_duid"], first["server_duid"],
        "DUID kept in state_dir"
    );
    again.signal(libc::SIGINT);
    assert_eq!(again.wait_exit(), 0);
}
