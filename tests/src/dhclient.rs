//! ISC dhclient in DHCPv6 mode as a real client.
//!
//! Each client gets its own directory: lease file (`-lf`), pid file (`-pf`),
//! an empty config (`-cf`, so the system's dhclient.conf does not leak in) and
//! a stand-in script (`-sf`) that only records what dhclient reports, one
//! block per call, so nothing on the host or in the namespace is changed and
//! the test reads the lease from what the client itself believed.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::io;
use crate::hook_events;
use crate::netns::Netns;
use crate::process::{require, Proc};
use crate::wire::duid_hex;
use crate::{Error, Result};

/// What the client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// An address (IA_NA), dhclient's default.
    Address,
    /// A delegated prefix only (`-P`).
    Prefix,
    /// Both (`-N -P`).
    AddressAndPrefix,
}

/// A running `dhclient -6`.
#[derive(Debug)]
pub struct Dhclient {
    proc: Option<Proc>,
    dir: PathBuf,
    ns: String,
    ifname: String,
    ask: Ask,
    starts: u32,
}

/// One call of the client script: dhclient telling what it now holds.
#[derive(Clone, Debug)]
pub struct LeaseEvent {
    /// When the script ran (seconds since the epoch).
    pub time: f64,
    /// Everything dhclient passed (`reason`, `new_*`, `old_*`, ...).
    pub vars: BTreeMap<String, String>,
}

impl LeaseEvent {
    /// `reason`: PREINIT6, BOUND6, RENEW6, REBIND6, REBOOT6, DEPREF6, EXPIRE6, ...
    pub fn reason(&self) -> &str {
        self.vars.get("reason").map_or("", String::as_str)
    }

    /// Whether this event means the client now holds a lease a server just confirmed.
    pub fn is_bound(&self) -> bool {
        matches!(self.reason(), "BOUND6" | "RENEW6" | "REBIND6" | "REBOOT6")
    }

    /// `new_ip6_address`.
    pub fn address(&self) -> Option<Ipv6Addr> {
        self.vars.get("new_ip6_address")?.parse().ok()
    }

    /// `old_ip6_address`.
    pub fn old_address(&self) -> Option<Ipv6Addr> {
        self.vars.get("old_ip6_address")?.parse().ok()
    }

    /// `new_ip6_prefix` as (prefix, length).
    pub fn prefix(&self) -> Option<(Ipv6Addr, u8)> {
        let (a, l) = self.vars.get("new_ip6_prefix")?.split_once('/')?;
        Some((a.parse().ok()?, l.parse().ok()?))
    }

    /// The server that granted it (`new_dhcp6_server_id`), as plain hex.
    pub fn server_id(&self) -> Option<String> {
        self.vars.get("new_dhcp6_server_id").map(|s| duid_hex(s))
    }

    /// The valid lifetime (`new_max_life`).
    pub fn valid_lifetime(&self) -> Option<u32> {
        self.vars.get("new_max_life")?.parse().ok()
    }
}

impl Dhclient {
    /// Starts `dhclient -6 -d -1 -v` on `ifname` in `ns`, state in `dir`.
    pub fn start(ns: &Netns, ifname: &str, dir: &Path, ask: Ask) -> Result<Dhclient> {
        require("dhclient")?;
        std::fs::create_dir_all(dir).map_err(io(format!("mkdir {}", dir.display())))?;
        let script = dir.join("script.sh");
        let events = dir.join("events");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# Stand-in for dhclient-script: record, change nothing.\n\
                 {{ echo \"event $(date +%s.%N)\"; \
                 env | grep -E '^(reason|interface|(new|old|cur|requested)_[a-z0-9_]*)='; \
                 echo end; }} >> '{}'\nexit 0\n",
                events.display()
            ),
        )
        .map_err(io(format!("write {}", script.display())))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", script.display())))?;
        std::fs::write(dir.join("dhclient.conf"), "")
            .map_err(io(format!("write {}/dhclient.conf", dir.display())))?;
        let mut client = Dhclient {
            proc: None,
            dir: dir.to_owned(),
            ns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
            ask,
            starts: 0,
        };
        client.spawn()?;
        Ok(client)
    }

    fn spawn(&mut self) -> Result<()> {
        let d = |f: &str| self.dir.join(f).display().to_string();
        let mut argv: Vec<String> = ["dhclient", "-6", "-d", "-1", "-v", "-D", "LL"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match self.ask {
            Ask::Address => {}
            Ask::Prefix => argv.push("-P".into()),
            Ask::AddressAndPrefix => argv.extend(["-N".into(), "-P".into()]),
        }
        argv.extend([
            "-lf".into(),
            d("lease"),
            "-pf".into(),
            d("pid"),
            "-cf".into(),
            d("dhclient.conf"),
            "-sf".into(),
            d("script.sh"),
            self.ifname.clone(),
        ]);
        self.starts += 1;
        let log = self.dir.join(format!("dhclient-{}.log", self.starts));
        self.proc = Some(Proc::spawn("dhclient", Some(&self.ns), &argv, &[], &log)?);
        Ok(())
    }

    /// Stops the client (SIGTERM: it exits without releasing, like a host going down).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.stop()?;
        }
        Ok(())
    }

    /// Starts it again with the same lease file (RFC 9915 §18.2.3: a client that
    /// may have moved sends Confirm for the addresses it holds).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Every script call so far, in order.
    pub fn events(&self) -> Result<Vec<LeaseEvent>> {
        load_events(&self.dir)
    }

    /// Waits for the first event after the first `skip` events that satisfies `pred`.
    pub fn wait_event(
        &mut self,
        what: &str,
        skip: usize,
        timeout: Duration,
        pred: impl Fn(&LeaseEvent) -> bool,
    ) -> Result<LeaseEvent> {
        let desc = format!("dhclient in {} to report {what}", self.ns);
        let dir = self.dir.clone();
        hook_events::wait_for(
            &desc,
            timeout,
            &mut self.proc,
            || load_events(&dir),
            skip,
            pred,
        )
    }

    /// Waits until the client holds a lease (BOUND6 and friends) with what it asked for.
    pub fn wait_bound(&mut self, timeout: Duration) -> Result<LeaseEvent> {
        let ask = self.ask;
        self.wait_event("a lease", 0, timeout, |e| {
            e.is_bound()
                && match ask {
                    Ask::Address => e.address().is_some(),
                    Ask::Prefix => e.prefix().is_some(),
                    Ask::AddressAndPrefix => e.address().is_some() || e.prefix().is_some(),
                }
        })
    }

    /// The client's DUID (from its lease file), as plain hex.
    pub fn duid(&self) -> Result<String> {
        let path = self.dir.join("lease");
        let text =
            std::fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("option dhcp6.client-id "))
            .map(|v| duid_hex(v.trim_end_matches(';')))
            .ok_or_else(|| Error::Parse {
                what: path.display().to_string(),
                detail: "no dhcp6.client-id".into(),
            })
    }

    /// The tail of the current run's log.
    pub fn log_tail(&self) -> String {
        hook_events::log_tail(&self.proc)
    }
}

/// The script's blocks in `dir`; the header is the time of the call.
fn load_events(dir: &Path) -> Result<Vec<LeaseEvent>> {
    Ok(hook_events::read(&dir.join("events"))?
        .into_iter()
        .map(|b| LeaseEvent {
            time: b.header.parse().unwrap_or(0.0),
            vars: b.vars,
        })
        .collect())
}
