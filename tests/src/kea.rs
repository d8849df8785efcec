//! Kea (kea-dhcp6) as a reference server: it validates the harness itself
//! (a scenario that passes against Kea and fails against dhcp6d points at
//! dhcp6d, not at the harness).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::error::io;
use crate::netns::Netns;
use crate::process::{require, Proc};
use crate::{wait, Result};

/// What one Kea server serves.
#[derive(Clone, Debug)]
pub struct KeaConfig {
    /// Interface it listens on.
    pub interface: String,
    /// Preference option value in every Advertise (RFC 9915 §21.8).
    pub preference: u8,
    /// Server DUID, hex (an enterprise-number DUID is built from it).
    pub server_id: String,
    /// (subnet, pool) pairs; `pool` as Kea writes it ("prefix/len" or "a - b").
    pub subnets: Vec<(String, String)>,
    /// Optional PD pool: (prefix, length, delegated length).
    pub pd_pool: Option<(String, u8, u8)>,
    /// Serve relayed clients only (subnets selected by link-address, not
    /// bound to the interface); relays reach Kea at this unicast address,
    /// on which Kea opens a socket only when told (`"eth0/ADDR"`).
    pub relayed: Option<String>,
    /// preferred, valid, T1, T2 (seconds).
    pub lifetimes: (u32, u32, u32, u32),
}

/// A running kea-dhcp6.
#[derive(Debug)]
pub struct Kea {
    proc: Proc,
}

impl Kea {
    /// Starts kea-dhcp6 in `ns`; returns once it logs DHCP6_STARTED (sockets are open by then).
    pub fn start(ns: &Netns, cfg: &KeaConfig, dir: &Path, name: &str) -> Result<Kea> {
        require("kea-dhcp6")?;
        let (preferred, valid, t1, t2) = cfg.lifetimes;
        let subnets: Vec<_> = cfg
            .subnets
            .iter()
            .enumerate()
            .map(|(i, (subnet, pool))| {
                let mut s = json!({
                    "id": i + 1,
                    "subnet": subnet,
                    "pools": [ { "pool": pool } ],
                });
                if cfg.relayed.is_none() {
                    s["interface"] = json!(cfg.interface);
                }
                if let (0, Some((prefix, len, delegated))) = (i, &cfg.pd_pool) {
                    s["pd-pools"] = json!([{
                        "prefix": prefix, "prefix-len": len, "delegated-len": delegated
                    }]);
                }
                s
            })
            .collect();
        let listen = match &cfg.relayed {
            Some(addr) => format!("{}/{addr}", cfg.interface),
            None => cfg.interface.clone(),
        };
        let config = json!({ "Dhcp6": {
            "interfaces-config": { "interfaces": [ listen ] },
            "server-id": { "type": "EN", "enterprise-id": 2495,
                           "identifier": cfg.server_id, "persist": false },
            "lease-database": { "type": "memfile", "persist": false },
            "preferred-lifetime": preferred, "valid-lifetime": valid,
            "renew-timer": t1, "rebind-timer": t2,
            "option-data": [ { "name": "preference", "data": cfg.preference.to_string() } ],
            "subnet6": subnets,
            "loggers": [ { "name": "kea-dhcp6", "severity": "INFO",
                           "output_options": [ { "output": "stdout" } ] } ]
        }});
        let file: PathBuf = dir.join(format!("{name}.json"));
        std::fs::write(&file, config.to_string())
            .map_err(io(format!("write {}", file.display())))?;
        let d = dir.display().to_string();
        let argv = vec![
            "kea-dhcp6".to_string(),
            "-c".into(),
            file.display().to_string(),
        ];
        let mut proc = Proc::spawn(
            name,
            Some(ns.name()),
            &argv,
            &[("KEA_PIDFILE_DIR", &d), ("KEA_LOCKFILE_DIR", &d)],
            &dir.join(format!("{name}.log")),
        )?;
        wait::until(&format!("{name} to start"), Duration::from_secs(15), || {
            proc.check_running()?;
            Ok(proc.log().contains("DHCP6_STARTED").then_some(()))
        })?;
        Ok(Kea { proc })
    }

    /// The server DUID Kea builds from `server_id` (DUID-EN, enterprise 2495).
    pub fn duid(cfg: &KeaConfig) -> String {
        format!("0002000009bf{}", cfg.server_id.to_ascii_lowercase())
    }

    /// A crash: SIGKILL.
    pub fn kill(&mut self) -> Result<()> {
        self.proc.kill().map(drop)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}
