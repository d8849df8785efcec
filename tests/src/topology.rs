//! Ready-made labs: the shapes the RFC 6853 scenarios and the demo share.
//!
//! [`OneLink`] is RFC 6853's figures: N servers and M clients on one
//! Ethernet link. Field order is drop order: processes stop before their
//! namespaces go, and the directory (logs, captures) goes last.

use std::time::Duration;

use crate::dhclient::{Ask, Dhclient};
use crate::dhcp6d::{Dhcp6d, ServerConfig};
use crate::netns::{Netns, Segment};
use crate::tempdir::TempDir;
use crate::Result;

/// Every node's interface name inside its own namespace.
pub const IF: &str = "eth0";

/// A namespace plugged into `link` as [`IF`].
pub fn node(link: &Segment, tag: &str) -> Result<Netns> {
    let ns = Netns::new(tag)?;
    link.attach(&ns, IF)?;
    Ok(ns)
}

/// Servers and clients on one link.
#[derive(Debug)]
pub struct OneLink {
    /// The running servers, in config order.
    pub servers: Vec<Dhcp6d>,
    /// The running clients.
    pub clients: Vec<Dhclient>,
    /// One namespace per server.
    pub server_nodes: Vec<Netns>,
    /// One namespace per client.
    pub client_nodes: Vec<Netns>,
    /// The link.
    pub link: Segment,
    /// Configs, logs, leases, captures.
    pub dir: TempDir,
}

impl OneLink {
    /// Starts one server per config on a new link (configs are edited to
    /// serve direct clients on [`IF`]).
    pub fn new(tag: &str, configs: &[ServerConfig], io_mode: &str) -> Result<OneLink> {
        let dir = TempDir::new(tag)?;
        let link = Segment::new(tag)?;
        let mut lab = OneLink {
            servers: Vec::new(),
            clients: Vec::new(),
            server_nodes: Vec::new(),
            client_nodes: Vec::new(),
            link,
            dir,
        };
        for (i, cfg) in configs.iter().enumerate() {
            let name = format!("s{}", i + 1);
            let ns = node(&lab.link, &name)?;
            let mut cfg = cfg.clone();
            cfg.direct_on(IF);
            let server_dir = lab.dir.subdir(&name)?;
            lab.servers
                .push(Dhcp6d::start(&ns, &cfg, &server_dir, &name, io_mode)?);
            lab.server_nodes.push(ns);
        }
        Ok(lab)
    }

    /// Starts `n` more clients (each in its own namespace) asking for `ask`.
    pub fn add_clients(&mut self, n: usize, ask: Ask) -> Result<()> {
        for _ in 0..n {
            let name = format!("c{}", self.client_nodes.len() + 1);
            let ns = node(&self.link, &name)?;
            let dir = self.dir.subdir(&name)?;
            self.clients.push(Dhclient::start(&ns, IF, &dir, ask)?);
            self.client_nodes.push(ns);
        }
        Ok(())
    }

    /// Waits until every client holds a lease; the lease each reported.
    pub fn wait_all_bound(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<crate::dhclient::LeaseEvent>> {
        self.clients
            .iter_mut()
            .map(|c| c.wait_bound(timeout))
            .collect()
    }
}
