//! `dhcp6d serve --io socket` end to end in network namespaces: the real
//! binary answers a real UDP client, the operator commands read it, a
//! second server on the same state_dir is refused, SIGHUP reloads (and
//! refuses a reload that would orphan a binding), SIGTERM stops cleanly
//! and the lease survives a restart. Needs root and iproute2 (fails loudly
//! without them).

use crate::core_harness;
use std::net::Ipv6Addr;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::dataplane_common::{Lab, SERVER_IF};
use crate::serve_common::*;
use dhcp6d::wire::MessageType;

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
    let text = |preference: u8, pool: &str| {
        config_text(&dir, preference, pool)
            .replace("[server]\n", "[server]\nmetrics_listen = \"[::1]:9547\"\n")
    };
    std::fs::write(&config, text(255, pool)).unwrap();
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

    // Workers count a sent message just after it leaves.
    eventually("tx.reply == 1", || stats(&socket)["tx"]["reply"] == 1);
    let s = stats(&socket);
    assert_eq!(s["rx"]["solicit"], 1);
    assert_eq!(s["rx"]["request"], 1);
    assert_eq!(s["tx"]["advertise"], 1);
    assert_eq!(s["tx"]["reply"], 1);
    assert_eq!(s["leases"]["addresses"], 1);
    assert!(s["journal"]["records"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["pools"][0]["used"], 1);
    assert_eq!(s["pools"][0]["capacity"], "4096");

    // The Prometheus endpoint (loopback of the server's namespace) agrees,
    // and promtool accepts it.
    let metrics = lab.server.run(|| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect("[::1]:9547").expect("metrics endpoint");
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    });
    let body = metrics.split_once("\r\n\r\n").unwrap().1;
    assert!(
        body.contains("\ndhcp6d_received_messages_total{type=\"solicit\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("\ndhcp6d_leases{kind=\"address\"} 1\n"),
        "{body}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is required (apt package `prometheus`)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "{checked:?}");

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
        .args(["netns", "exec", lab.server.name(), BIN, "serve", "-c"])
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
    std::fs::write(&config, text(7, pool)).unwrap();
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
    // The new core holds the binding (the offer alone could come from the
    // allocation function), and the pool counts it.
    let s = stats(&socket);
    assert_eq!(s["leases"]["addresses"], 1, "{s}");
    assert_eq!(s["pools"][0]["used"], 1, "{s}");

    // SIGHUP with a pool that no longer holds the live binding: refused.
    std::fs::write(&config, text(9, "2001:db8:1::2000-2001:db8:1::2fff")).unwrap();
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
    std::fs::write(&config, text(255, pool)).unwrap();
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

/// `server.user`: after the sockets are open the server runs as that user
/// with only the capabilities it still needs (socket mode: none but
/// CAP_NET_BIND_SERVICE on the main thread, permitted, not effective; the
/// bounding set cut to it, no_new_privs), and still commits leases; the
/// next start accepts the state dir that user now owns, and refuses a link
/// the user put in it.
#[test]
fn serve_drops_privileges_to_server_user() {
    let lab = Lab::new();
    let dir = scratch("privileges");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    let text = config_text(&dir, 255, "2001:db8:1::1000-2001:db8:1::1fff")
        .replace("[server]\n", "[server]\nuser = \"nobody\"\n");
    std::fs::write(&config, text).unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve.log"));
    let first = served.wait_ready(&socket);
    eventually("privileges dropped", || {
        served.log().contains("privileges dropped")
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let nobody = "65534".to_string();
    assert_eq!(
        field("Uid:"),
        [nobody.clone(), nobody.clone(), nobody.clone(), nobody]
    );
    assert_eq!(field("CapEff:"), ["0000000000000000"], "nothing effective");
    assert_eq!(
        field("CapPrm:"),
        ["0000000000000400"],
        "CAP_NET_BIND_SERVICE only, permitted"
    );
    assert_eq!(field("CapBnd:"), ["0000000000000400"], "bounding set cut");
    assert_eq!(field("NoNewPrivs:"), ["1"]);

    let server_duid = hex::decode(first["server_duid"].as_str().unwrap()).unwrap();
    let (_, _, _, offered) = exchange(&lab, core_harness::solicit(2));
    let (t, _, _, committed) = exchange(&lab, core_harness::request(2, &server_duid, offered));
    assert_eq!((t, committed), (MessageType::Reply, offered));
    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());

    // The next start, as root, finds the state dir owned by `server.user`:
    // accepted for that user, and the lease is back.
    let state = dir.join("state");
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), 65534);
    let mut again = Served::start(&lab, &config, dir.join("serve2.log"));
    let s = again.wait_ready(&socket);
    assert_eq!(s["leases"]["addresses"], 1, "{}", again.log());
    again.signal(libc::SIGTERM);
    assert_eq!(again.wait_exit(), 0, "{}", again.log());

    // Hardening issue, item 7: the service user replaces `lock` with a link
    // to a root file. The next start refuses (exit 1, naming the file) and
    // leaves the file alone; before, root truncated it and wrote its pid.
    let victim = dir.join("victim");
    std::fs::write(&victim, "root:secret\n").unwrap();
    let lock = state.join("lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let mut refused = Served::start(&lab, &config, dir.join("serve3.log"));
    assert_eq!(refused.wait_exit(), 1, "{}", refused.log());
    let want = format!(
        "{}: is a symbolic link; refusing to follow it",
        lock.display()
    );
    assert!(refused.log().contains(&want), "{}", refused.log());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
}

/// `--io xdp`: the XDP program is attached while serving (the Solicit is
/// redirected to AF_XDP and answered, RFC 9915 §18.3.1) and detached after
/// SIGTERM (CONTRACT.md: "the XDP program is detached"), also after the
/// server dropped to `server.user` with only CAP_NET_ADMIN, CAP_NET_RAW and
/// CAP_BPF left, permitted and raised only for the detach.
#[test]
fn rfc9915_18_3_1_serve_xdp_answers_and_detaches_on_sigterm() {
    let lab = Lab::new();
    let dir = scratch("xdp");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    std::fs::write(
        &config,
        config_text_io(&dir, "xdp", 255, "2001:db8:1::1000-2001:db8:1::1fff")
            .replace("[server]\n", "[server]\nuser = \"nobody\"\n"),
    )
    .unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve.log"));
    served.wait_ready(&socket);
    eventually("privileges dropped", || {
        served.log().contains("privileges dropped")
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    assert!(
        status.contains("\nCapPrm:\t0000008000003000\n")
            && status.contains("\nCapEff:\t0000000000000000\n"),
        "CAP_NET_ADMIN|CAP_NET_RAW|CAP_BPF, permitted, none effective: {status}"
    );
    // The AF_XDP worker thread keeps, permitted but not effective, what
    // reopening its socket after a death needs (caps.rs): CAP_NET_ADMIN,
    // CAP_NET_RAW, CAP_IPC_LOCK, CAP_BPF; not CAP_SETUID/CAP_SETGID, which
    // it held only to take part in the drop.
    let worker_caps = || {
        let tasks = format!("/proc/{}/task", served.child.id());
        std::fs::read_dir(&tasks)
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
            .find(|st| st.starts_with("Name:\tdhcp6d-xsk-"))
            .unwrap_or_default()
    };
    eventually("worker caps narrowed after the drop", || {
        let st = worker_caps();
        st.contains("\nCapPrm:\t0000008000007000\n") && st.contains("\nCapEff:\t0000000000000000\n")
    });
    let link = || lab.server.exec(&["ip", "link", "show", "dev", SERVER_IF]);
    assert!(link().contains("xdp"), "attached: {}", link());
    let (t, pref, _, offered) = exchange(&lab, core_harness::solicit(3));
    assert_eq!((t, pref), (MessageType::Advertise, Some(255)));
    assert!(offered.is_some());
    eventually("tx.advertise == 1", || {
        stats(&socket)["tx"]["advertise"] == 1
    });
    let s = stats(&socket);
    assert_eq!(s["io"], "xdp");
    assert!(s["xdp"]["redirected"].as_u64().unwrap() >= 1, "{s}");
    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());
    assert!(!link().contains("xdp"), "detached: {}", link());
}

/// Issue 13 item 4: an interface with more RX queues (80) than the XskMap
/// has slots (64). The server starts (no refusal), says so in its log and
/// in `xdp.queues_without_worker`, and a client whose frames land on queue
/// 70 gets its Advertise and its Reply (after the journal sync) from the
/// fallback listener, counted in `xdp.beyond_queue_limit` and
/// `xdp.fallback_answered`; a client on queue 3 still goes through AF_XDP.
/// Before, the queue-70 client got no answer at all.
#[test]
fn more_rx_queues_than_the_xskmap_are_served_by_the_fallback() {
    let lab = Lab::with_queues(80);
    let dir = scratch("xdp_80_queues");
    let config = dir.join("dhcp6d.toml");
    let socket = dir.join("control.sock");
    std::fs::write(
        &config,
        config_text_io(&dir, "xdp", 255, "2001:db8:1::1000-2001:db8:1::1fff"),
    )
    .unwrap();
    let mut served = Served::start(&lab, &config, dir.join("serve.log"));
    let first = served.wait_ready(&socket);
    let log = served.log();
    assert!(
        log.contains("srv0 has 80 RX queues but AF_XDP serves at most 64")
            && log.contains("queues 64..79"),
        "{log}"
    );
    assert_eq!(first["xdp"]["queues_without_worker"], 16, "{first}");
    let server_duid = hex::decode(first["server_duid"].as_str().unwrap()).unwrap();

    lab.steer_client_to_queue(70, 80);
    let (t, pref, _, offered) = exchange(&lab, core_harness::solicit(1));
    assert_eq!((t, pref), (MessageType::Advertise, Some(255)));
    let (t, _, _, committed) = exchange(&lab, core_harness::request(1, &server_duid, offered));
    assert_eq!((t, committed), (MessageType::Reply, offered));
    eventually("fallback_answered == 2", || {
        stats(&socket)["xdp"]["fallback_answered"] == 2
    });
    let s = stats(&socket);
    assert_eq!(s["xdp"]["redirected"], 0, "{s}");
    assert_eq!(s["xdp"]["no_socket"], 0, "{s}");
    assert!(s["xdp"]["beyond_queue_limit"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(
        (&s["tx"]["advertise"], &s["tx"]["reply"]),
        (&1.into(), &1.into()),
        "{s}"
    );
    assert_eq!(s["leases"]["addresses"], 1, "{s}");

    // A queue inside the map is still served by its AF_XDP worker.
    lab.steer_client_to_queue(3, 80);
    let (t, _, _, _) = exchange(&lab, core_harness::solicit(2));
    assert_eq!(t, MessageType::Advertise);
    eventually("tx.advertise == 2", || {
        stats(&socket)["tx"]["advertise"] == 2
    });
    let s = stats(&socket);
    assert!(s["xdp"]["redirected"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["xdp"]["fallback_answered"], 2, "{s}");

    served.signal(libc::SIGTERM);
    assert_eq!(served.wait_exit(), 0, "{}", served.log());
}
