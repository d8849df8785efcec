//! `cargo xtask setup`: install what building and testing dhcp6d needs.
//!
//! Idempotent and quick when everything is present (a few `dpkg-query` and
//! `--version` calls). Every other xtask command calls it first.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Debian packages: Debian's rustc with rust-src and LLVM 22 for the eBPF
/// build (see shared/TOOLCHAIN.md), and the real peers the tests talk to.
const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "libpolly-22-dev",
    "iproute2",
    "ethtool",
    "bpftool",
    "kea-dhcp6-server",
    "kea-admin",
    "isc-dhcp-client",
    "isc-dhcp-relay",
    // dhcpcd's binary only: the `dhcpcd` package adds a system service that
    // would run the client on the host's own interfaces.
    "dhcpcd-base",
    "tshark",
    "python3-scapy",
    "valgrind",
    "prometheus",
];

const BPF_LINKER_VERSION: &str = "0.13.0";
const CARGO_FUZZ_VERSION: &str = "0.13.1";

/// Run every step; fails with the step that failed.
pub fn run() -> Result<()> {
    if !is_root() {
        bail!("cargo xtask setup must run as root (it installs packages, and the tests use network namespaces)");
    }
    apt_packages()?;
    rustup_link()?;
    bpf_linker()?;
    cargo_fuzz()?;
    Ok(())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn missing_packages() -> Result<Vec<&'static str>> {
    let mut missing = Vec::new();
    for pkg in PACKAGES {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .output()
            .context("running dpkg-query")?;
        let status = String::from_utf8_lossy(&out.stdout);
        if !status.contains("install ok installed") {
            missing.push(*pkg);
        }
    }
    Ok(missing)
}

fn apt_packages() -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    // apt's progress lines would drown the test log; its errors still show.
    crate::sh(
        Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null()),
    )?;
    crate::sh(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .stdout(Stdio::null()),
    )
}

fn rustup_link() -> Result<()> {
    let out = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("running rustup")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("debian"))
    {
        return Ok(());
    }
    eprintln!("setup: linking Debian's rustc as the rustup toolchain `debian`");
    crate::sh(Command::new("rustup").args(["toolchain", "link", "debian", "/usr"]))
}

fn installed_version(bin: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(bin).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bpf_linker() -> Result<()> {
    if installed_version("bpf-linker", &["--version"])
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
    {
        return Ok(());
    }
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
    let path = format!(
        "/usr/lib/llvm-22/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    crate::sh(
        Command::new("cargo")
            .env("PATH", path)
            .env("LLVM_SYS_221_PREFIX", "/usr/lib/llvm-22")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
                "--locked",
            ]),
    )
}

fn cargo_fuzz() -> Result<()> {
    if installed_version("cargo-fuzz", &["--version"]).is_some() {
        return Ok(());
    }
    eprintln!("setup: installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    crate::sh(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
    ]))
}
