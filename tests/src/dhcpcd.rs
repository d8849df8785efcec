//! dhcpcd (Roy Marples' client, Debian package `dhcpcd-base`) in DHCPv6 mode,
//! asking for a delegated prefix: a second real client next to ISC dhclient.
//!
//! dhcpcd keeps its state at fixed paths: pid files and control sockets in
//! `/run/dhcpcd` (named after the interface, so two clients on `eth0` in two
//! namespaces would clash), DUID and leases in `/var/lib/dhcpcd`. Each client
//! therefore runs in its own mount namespace (`unshare -m`, private
//! propagation) with its own directories bind-mounted over `/run` and
//! `/var/lib/dhcpcd`: nothing on the host is read or written, and tests run
//! in parallel. Its config file is written per client (`-f`), and its hook
//! script (`-c`) only records what dhcpcd reports, one block per call.

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
use crate::Result;

/// One call of the hook script: dhcpcd telling what it now holds.
#[derive(Clone, Debug)]
pub struct DhcpcdEvent {
    /// `reason`, `interface`, `protocol` and every `new_dhcp6_*` / `old_dhcp6_*`.
    pub vars: BTreeMap<String, String>,
}

impl DhcpcdEvent {
    /// `reason`: PREINIT, CARRIER, BOUND6, RENEW6, REBIND6, REBOOT6, EXPIRE6, STOPPED, ...
    pub fn reason(&self) -> &str {
        self.vars.get("reason").map_or("", String::as_str)
    }

    /// Whether dhcpcd now holds a lease a server just granted or confirmed.
    pub fn is_bound(&self) -> bool {
        matches!(self.reason(), "BOUND6" | "RENEW6" | "REBIND6" | "REBOOT6")
    }

    /// Every prefix of the first IA_PD: (prefix, length, valid lifetime), from
    /// `new_dhcp6_ia_pd1_prefix{N}`, `..._length`, `..._vltime`.
    pub fn prefixes(&self) -> Vec<(Ipv6Addr, u8, u32)> {
        (1..)
            .map_while(|n| {
                let key = format!("new_dhcp6_ia_pd1_prefix{n}");
                let p = self.vars.get(&key)?.parse().ok()?;
                let len = self.vars.get(&format!("{key}_length"))?.parse().ok()?;
                let valid = self.vars.get(&format!("{key}_vltime"))?.parse().ok()?;
                Some((p, len, valid))
            })
            .collect()
    }

    /// The delegated prefix dhcpcd now uses: the first with a valid lifetime
    /// above 0 (a Reply may also return an old prefix with lifetimes 0,
    /// RFC 9915 §18.3.5, which the client must drop).
    pub fn delegated_prefix(&self) -> Option<(Ipv6Addr, u8)> {
        self.prefixes()
            .into_iter()
            .find(|&(_, _, valid)| valid > 0)
            .map(|(p, len, _)| (p, len))
    }

    /// The valid lifetime of [`Self::delegated_prefix`].
    pub fn valid_lifetime(&self) -> Option<u32> {
        self.prefixes()
            .into_iter()
            .find(|&(_, _, valid)| valid > 0)
            .map(|(_, _, valid)| valid)
    }

    /// The server that granted it (`new_dhcp6_server_id`), as plain hex.
    pub fn server_id(&self) -> Option<String> {
        self.vars.get("new_dhcp6_server_id").map(|s| duid_hex(s))
    }

    /// dhcpcd's own DUID (`new_dhcp6_client_id`), as plain hex.
    pub fn client_id(&self) -> Option<String> {
        self.vars.get("new_dhcp6_client_id").map(|s| duid_hex(s))
    }
}

/// A running `dhcpcd -6` asking for one delegated prefix (IA_PD, IAID 1).
#[derive(Debug)]
pub struct Dhcpcd {
    proc: Option<Proc>,
    dir: PathBuf,
    ns: String,
    ifname: String,
    starts: u32,
}

impl Dhcpcd {
    /// Starts `dhcpcd -6 -B -d` on `ifname` in `ns`, all its state under `dir`.
    pub fn start_pd(ns: &Netns, ifname: &str, dir: &Path) -> Result<Dhcpcd> {
        require("dhcpcd")?;
        require("unshare")?;
        let run = dir.join("run");
        let db = dir.join("db");
        for d in [&run, &db] {
            std::fs::create_dir_all(d).map_err(io(format!("mkdir {}", d.display())))?;
        }
        // `noipv6rs`: there is no router on the test link, so DHCPv6 starts at
        // once instead of waiting for an RA (dhcpcd.conf(5) also asks for it
        // when requesting a delegation). `ia_pd 1 -`: request IAID 1 and assign
        // the prefix to no downstream interface.
        let conf = dir.join("dhcpcd.conf");
        std::fs::write(
            &conf,
            format!(
                "# written by the dhcp6d test harness\nipv6only\nnoipv6rs\nduid\n\
                 interface {ifname}\n  ia_pd 1 -\n"
            ),
        )
        .map_err(io(format!("write {}", conf.display())))?;
        let hook = dir.join("hook.sh");
        let events = dir.join("events");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n# Stand-in for dhcpcd-run-hooks: record, change nothing.\n\
                 {{ echo event; \
                 env | grep -E '^(reason|interface|protocol|(new|old)_dhcp6_[a-z0-9_]*)='; \
                 echo end; }} >> '{}'\nexit 0\n",
                events.display()
            ),
        )
        .map_err(io(format!("write {}", hook.display())))?;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", hook.display())))?;
        let mut client = Dhcpcd {
            proc: None,
            dir: dir.to_owned(),
            ns: ns.name().to_owned(),
            ifname: ifname.to_owned(),
            starts: 0,
        };
        client.spawn()?;
        Ok(client)
    }

    fn spawn(&mut self) -> Result<()> {
        let d = |f: &str| self.dir.join(f).display().to_string();
        // `exec` keeps one pid from `ip netns exec` to dhcpcd, so the guard
        // signals dhcpcd itself.
        let script = format!(
            "mount --bind '{run}' /run && mount --bind '{db}' /var/lib/dhcpcd && \
             exec dhcpcd -6 -B -d -f '{conf}' -c '{hook}' {ifname}",
            run = d("run"),
            db = d("db"),
            conf = d("dhcpcd.conf"),
            hook = d("hook.sh"),
            ifname = self.ifname,
        );
        let argv: Vec<String> = ["unshare", "-m", "--propagation", "private", "sh", "-c"]
            .iter()
            .map(|s| s.to_string())
            .chain([script])
            .collect();
        self.starts += 1;
        let log = self.dir.join(format!("dhcpcd-{}.log", self.starts));
        self.proc = Some(Proc::spawn("dhcpcd", Some(&self.ns), &argv, &[], &log)?);
        Ok(())
    }

    /// Starts it again with the same DUID and saved lease (`/var/lib/dhcpcd`
    /// is kept): the case RFC 9915 §18.2.12 lists as "the client reboots".
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Every hook call so far, in order.
    pub fn events(&self) -> Result<Vec<DhcpcdEvent>> {
        load_events(&self.dir)
    }

    /// Waits until dhcpcd reports a delegated prefix it was granted.
    pub fn wait_delegated(&mut self, timeout: Duration) -> Result<DhcpcdEvent> {
        self.wait_event(0, timeout, |e| {
            e.is_bound() && e.delegated_prefix().is_some()
        })
    }

    /// Waits for the first event after the first `skip` events that satisfies `pred`.
    pub fn wait_event(
        &mut self,
        skip: usize,
        timeout: Duration,
        pred: impl Fn(&DhcpcdEvent) -> bool,
    ) -> Result<DhcpcdEvent> {
        let desc = format!("dhcpcd in {} to report a delegated prefix", self.ns);
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

    /// Stops dhcpcd (SIGTERM: it exits without releasing).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.stop()?;
        }
        Ok(())
    }

    /// The tail of dhcpcd's log.
    pub fn log_tail(&self) -> String {
        hook_events::log_tail(&self.proc)
    }
}

/// The hook's blocks in `dir`.
fn load_events(dir: &Path) -> Result<Vec<DhcpcdEvent>> {
    Ok(hook_events::read(&dir.join("events"))?
        .into_iter()
        .map(|b| DhcpcdEvent { vars: b.vars })
        .collect())
}
