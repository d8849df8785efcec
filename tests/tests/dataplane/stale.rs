//! A stale XDP program left on the interface (attached through netlink, as
//! `ip link set ... xdp` or an older build would leave it; a killed dhcp6d's
//! own bpf_link goes away with the process) is replaced when the data plane
//! starts, and DHCPv6 is served by our program afterwards.

use std::sync::Arc;

use crate::dataplane_common::*;
use dhcp6d::config::IoMode;
use dhcp6d::dataplane::testing::{EchoHandler, ManualDurability};
use dhcp6d::dataplane::{start, DataplaneConfig};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_PROG_TYPE_XDP: u32 = 6;

/// Load "return XDP_PASS" and return its fd.
fn load_pass_program() -> i32 {
    // mov64 r0, 2 (XDP_PASS); exit
    let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_XDP.to_ne_bytes());
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: bpf(BPF_PROG_LOAD) with a zero-padded attr pointing at live data.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) };
    assert!(
        fd >= 0,
        "BPF_PROG_LOAD: {}",
        std::io::Error::last_os_error()
    );
    fd as i32
}

/// A bpffs mount in a temporary directory, unmounted on drop.
struct BpfFs(std::path::PathBuf);

impl BpfFs {
    fn new() -> BpfFs {
        let dir = std::env::temp_dir().join(format!("d6dp-bpffs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        sh(&["mount", "-t", "bpf", "bpf", dir.to_str().unwrap()]);
        BpfFs(dir)
    }

    fn pin(&self, fd: i32, name: &str) -> String {
        let path = self.0.join(name);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mut attr = [0u8; 16];
        attr[0..8].copy_from_slice(&(c.as_ptr() as u64).to_ne_bytes());
        attr[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
        // SAFETY: bpf(BPF_OBJ_PIN) with a valid path and program fd.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_PIN, attr.as_ptr(), attr.len()) };
        assert_eq!(rc, 0, "BPF_OBJ_PIN: {}", std::io::Error::last_os_error());
        path.to_string_lossy().into_owned()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_stale_netlink_attached_program_is_replaced_on_start() {
    let lab = Lab::new();
    let bpffs = BpfFs::new();
    let fd = load_pass_program();
    let pinned = bpffs.pin(fd, "stale");
    // SAFETY: our fd; the pin keeps the program alive.
    unsafe { libc::close(fd) };
    lab.server.exec(&[
        "ip",
        "link",
        "set",
        "dev",
        SERVER_IF,
        "xdpgeneric",
        "pinned",
        &pinned,
    ]);
    let before = lab.server.exec(&["ip", "-d", "link", "show", SERVER_IF]);
    assert!(
        before.contains("xdpgeneric"),
        "stale program not attached: {before}"
    );

    let dp = lab.server.run(|| {
        let mut cfg = DataplaneConfig::new(vec![SERVER_IF.into()], IoMode::Xdp);
        cfg.pin_workers = false;
        start(
            &cfg,
            Arc::new(EchoHandler),
            Arc::new(ManualDurability::immediate()),
        )
        .expect("start over a stale program")
    });
    let (reply, _) = lab.client.run(|| {
        let s = client_socket();
        send_multicast(&s, CLIENT_IF, &[1, 4, 4, 4]);
        recv(&s).expect("no reply: stale program still in the way?")
    });
    assert_eq!(reply, [2, 4, 4, 4]);
    assert_eq!(dp.xdp_counters().unwrap().redirected, 1);
    dp.stop();
    let after = lab.server.exec(&["ip", "-d", "link", "show", SERVER_IF]);
    assert!(
        !after.contains("xdp"),
        "a program is still attached after stop: {after}"
    );
}
