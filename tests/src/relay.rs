//! ISC dhcrelay in DHCPv6 mode (RFC 9915 §19), one guard per relay agent.

use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{require, Proc};
use crate::{wait, Result};

/// A running `dhcrelay -6 -d`.
#[derive(Debug)]
pub struct Dhcrelay {
    proc: Proc,
}

impl Dhcrelay {
    /// Relays from the client-facing interface `lower` to each of `upstream`
    /// (address, interface) — `-u` once per destination, as RFC 6853 §5.2 asks
    /// of relays ("relay DHCPv6 messages to more than one destination").
    ///
    /// Both sides need addresses: `lower` a global one inside the clients'
    /// subnet (it becomes the link-address servers select the subnet by), the
    /// upstream interface one on the servers' link.
    pub fn start(
        ns: &Netns,
        lower: &str,
        upstream: &[(Ipv6Addr, &str)],
        dir: &Path,
        name: &str,
    ) -> Result<Dhcrelay> {
        require("dhcrelay")?;
        let mut argv: Vec<String> = vec![
            "dhcrelay".into(),
            "-6".into(),
            "-d".into(),
            "-pf".into(),
            dir.join(format!("{name}.pid")).display().to_string(),
            "-l".into(),
            lower.into(),
        ];
        for (addr, ifname) in upstream {
            argv.push("-u".into());
            argv.push(format!("{addr}%{ifname}"));
        }
        let mut proc = Proc::spawn(
            name,
            Some(ns.name()),
            &argv,
            &[],
            &dir.join(format!("{name}.log")),
        )?;
        // dhcrelay prints its sockets once they are bound; before that a
        // client's Solicit would be lost.
        let upstreams = upstream.len();
        wait::until(
            &format!("{name} to bind its sockets"),
            Duration::from_secs(10),
            || {
                proc.check_running()?;
                let log = proc.log();
                let sending = log.matches("Sending on").count();
                Ok((log.contains("Listening on") && sending >= upstreams.min(1)).then_some(()))
            },
        )?;
        Ok(Dhcrelay { proc })
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}
