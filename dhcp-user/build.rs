//! Builds the XDP program (`dhcp-ebpf`, its own workspace) for
//! bpfel-unknown-none and leaves the object at `$OUT_DIR/dhcp-xdp`, which
//! `dataplane::xdp` embeds.
//!
//! Why not `aya_build::build_ebpf`: it runs `cargo build --package dhcp-ebpf`
//! in this workspace, and dhcp-ebpf is deliberately outside it (it needs
//! `-Z build-std=core` and Debian's toolchain, see shared/TOOLCHAIN.md). So we
//! run the same command aya-build would, with `--manifest-path`.
//!
//! Knobs:
//! - `DHCP6D_SKIP_EBPF=1`: embed an empty object (loading then fails at run
//!   time with a clear error); for helpers iterating on other crates.
//! - `DHCP6D_EBPF_TOOLCHAIN` (default `debian`): the rustup toolchain to build
//!   with, e.g. `nightly` on a machine whose nightly has rust-src.
use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    if let Err(e) = run() {
        // A build script error is printed verbatim by cargo: say what to do.
        eprintln!("error building the XDP program: {e}");
        eprintln!("(set DHCP6D_SKIP_EBPF=1 to build without it; see shared/TOOLCHAIN.md)");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=DHCP6D_SKIP_EBPF");
    println!("cargo:rerun-if-env-changed=DHCP6D_EBPF_TOOLCHAIN");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let object = out_dir.join("dhcp-xdp");
    if env::var("DHCP6D_SKIP_EBPF").is_ok_and(|v| v == "1") {
        println!("cargo:warning=DHCP6D_SKIP_EBPF=1: embedding an empty XDP object");
        fs::write(&object, b"").map_err(|e| e.to_string())?;
        return Ok(());
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let ebpf_dir = manifest_dir.join("../dhcp-ebpf");
    let common_dir = manifest_dir.join("../dhcp-common");
    for p in [
        ebpf_dir.join("src"),
        ebpf_dir.join("Cargo.toml"),
        ebpf_dir.join("Cargo.lock"),
        common_dir.join("src"),
        common_dir.join("Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let toolchain = env::var("DHCP6D_EBPF_TOOLCHAIN").unwrap_or_else(|_| "debian".into());
    // One target dir next to the eBPF crate (gitignored), shared by every
    // profile of the host build, so dev/test/release do not each rebuild core.
    let target_dir = ebpf_dir.join("target");
    let mut cmd = if which("rustup") {
        let mut c = Command::new("rustup");
        c.args(["run", &toolchain, "cargo"]);
        c
    } else {
        let mut c = Command::new("/usr/bin/cargo");
        c.env("RUSTC", "/usr/bin/rustc");
        c
    };
    cmd.args(["build", "--release", "--target", "bpfel-unknown-none"])
        .args(["-Z", "build-std=core"])
        .arg("--manifest-path")
        .arg(ebpf_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        // What aya-build passes: the target arch cfg aya-ebpf needs, and BTF.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
        );
    // The outer cargo's settings must not leak into the inner build.
    for key in [
        "RUSTC",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTUP_TOOLCHAIN",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "CARGO_ENCODED_RUSTFLAGS_HOST",
    ] {
        if key != "RUSTC" || which("rustup") {
            cmd.env_remove(key);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !output.status.success() {
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            println!("cargo:warning={line}");
        }
        return Err(format!("{cmd:?} failed: {}", output.status));
    }
    let built = target_dir.join("bpfel-unknown-none/release/dhcp-xdp");
    fs::copy(&built, &object)
        .map_err(|e| format!("copy {} -> {}: {e}", built.display(), object.display()))?;
    Ok(())
}

fn which(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|paths| env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
