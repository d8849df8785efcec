//! `cargo xtask loadgen [OPTIONS]`: the load generator (crate
//! `dhcp6d-loadgen`) from the command line; fails when a binding check fails.

use anyhow::{bail, Result};
use dhcp6d_loadgen::{run_with, Options};

pub fn run(o: &Options) -> Result<()> {
    let s = run_with(o)?;
    println!("{}", s.line());
    println!("check: {}", s.check);
    println!(
        "files: {}/loadgen-{:?}.csv and .svg",
        o.out.display(),
        s.mode
    );
    if !s.check.ok() {
        bail!("binding check failed");
    }
    Ok(())
}
