//! `cargo xtask crash [KILLS]`: the kill -9 test of the store, longer.
//!
//! Runs `tests/tests/load/store_crash.rs` with `DHCP6D_CRASH_KILLS`: that many
//! rounds of `kill -9 dhcp6d serve` under load; no acknowledged lease may be lost.

use std::process::Command;

use anyhow::Result;

use crate::{sh, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// How many times to kill the server.
    #[arg(default_value_t = 20)]
    pub kills: u32,
}

pub fn run(a: &Args) -> Result<()> {
    sh(Command::new("cargo")
        .current_dir(workspace_root())
        .env("DHCP6D_CRASH_KILLS", a.kills.to_string())
        .args([
            "test",
            "-p",
            "dhcp6d-tests",
            "--test",
            "load",
            "--",
            "store_crash::",
            "--nocapture",
        ]))
}
