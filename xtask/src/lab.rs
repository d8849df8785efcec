//! `cargo xtask lab up|down`: the namespace lab of `dhcp6d_loadgen::lab`
//! from the command line; `up` leaves it running for `loadgen --lab NAME`.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use dhcp6d_loadgen::lab::{down_by_name, lab_dir, Lab, LabOptions, ServerKind};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Build the lab (taking down an earlier one of the same name) and keep it.
    Up {
        /// Prefix of every namespace name (1..=10 letters or digits).
        #[arg(long, default_value = "d6lab")]
        name: String,
        /// Number of server namespaces (1..=16).
        #[arg(long, default_value_t = 1)]
        servers: usize,
        /// RFC 6853 model of the generated configs.
        #[arg(long, default_value = "standalone")]
        model: String,
        /// Add a relay namespace (ISC dhcrelay) with its own clients.
        #[arg(long)]
        relay: bool,
        /// Start this server in every server namespace.
        #[arg(long, value_enum)]
        start: Option<Start>,
    },
    /// Stop everything the lab started and delete its namespaces and files.
    Down {
        #[arg(long, default_value = "d6lab")]
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Start {
    Kea,
    Socket,
    Xdp,
}

impl Args {
    /// `up` starts real servers and dhcrelay (packages of `setup`); `down` only deletes.
    pub fn needs_setup(&self) -> bool {
        matches!(self.action, Action::Up { .. })
    }
}

pub fn run(a: Args) -> Result<()> {
    match a.action {
        Action::Up {
            name,
            servers,
            model,
            relay,
            start,
        } => {
            let mut lab = Lab::up(LabOptions {
                name,
                servers,
                model,
                relay,
                dhcp6d: None,
            })?;
            if let Some(s) = start {
                let kind = match s {
                    Start::Kea => ServerKind::Kea { threads: 2 },
                    Start::Socket => ServerKind::Dhcp6d { io: "socket" },
                    Start::Xdp => ServerKind::Dhcp6d { io: "xdp" },
                };
                for i in 1..=lab.opts.servers {
                    let pid = lab.start_server(i, kind)?;
                    println!("server {i}: {kind:?} pid {pid} in {}", lab.ns_server(i));
                }
            }
            println!(
                "lab {} is up; files in {}",
                lab.opts.name,
                lab.dir.display()
            );
            println!("clients: ip netns exec {} ...", lab.ns_client());
            lab.persist();
            Ok(())
        }
        Action::Down { name } => {
            down_by_name(&name)?;
            let _ = std::fs::remove_dir_all(lab_dir(&name));
            println!("lab {name} is down");
            Ok(())
        }
    }
}
