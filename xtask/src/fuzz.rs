//! `cargo xtask fuzz [SECS]`: every cargo-fuzz target (fuzz/Cargo.toml's
//! `[[bin]]`s: the wire decoders, relay nesting, the config reader, journal
//! recovery, the whole packet path (`server`) and the control protocol) for
//! SECS seconds each; `cargo xtask test` runs each for a short smoke.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{sh, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds per target.
    #[arg(default_value_t = 300)]
    pub secs: u64,
}

/// Runs every cargo-fuzz target for `secs` seconds; returns how many ran.
pub fn run(secs: u64) -> Result<usize> {
    let dir = workspace_root().join("fuzz");
    let out = Command::new("cargo")
        .current_dir(&dir)
        .args(["+nightly", "fuzz", "list"])
        .output()
        .context("cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for target in &targets {
        println!("fuzz {target} for {secs}s");
        let corpus = format!("corpus/{target}");
        std::fs::create_dir_all(dir.join(&corpus))?;
        // The fuzzed code (wire/, config/) has no `unsafe` beyond config's
        // if_nametoindex call on a NUL-free name, so no sanitizer is needed,
        // and the targets do not need the XDP object: both keep the build short.
        // Targets come from `cargo fuzz list` (fuzz/Cargo.toml's [[bin]]s).
        sh(Command::new("cargo")
            .current_dir(&dir)
            .env("DHCP6D_SKIP_EBPF", "1")
            .args([
                "+nightly",
                "fuzz",
                "run",
                "-s",
                "none",
                target,
                &corpus,
                "seeds",
                "--",
                &format!("-max_total_time={secs}"),
            ]))?;
    }
    Ok(targets.len())
}
