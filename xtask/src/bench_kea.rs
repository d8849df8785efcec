//! `cargo xtask bench kea`: dhcp6d against Kea 2.2 in one lab (work in progress).

/// Entry point for the head-to-head benchmark.
pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("bench kea: not written yet")
}
