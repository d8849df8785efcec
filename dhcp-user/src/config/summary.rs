//! The human summary `check-config` prints: what this file would serve.

use std::fmt::Write;

use super::validate::interface_index;
use super::{Config, Model, OptionValues};

pub(super) fn summary(c: &Config) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_summary(&mut out, c);
    out
}

fn write_summary(o: &mut String, c: &Config) -> std::fmt::Result {
    let s = &c.server;
    let interfaces: Vec<String> = s
        .interfaces
        .iter()
        .map(|name| match interface_index(name) {
            Some(index) => format!("{name} (ifindex {index})"),
            None => format!("{name} (not on this host)"),
        })
        .collect();
    writeln!(o, "interfaces:      {}", interfaces.join(", "))?;
    writeln!(o, "io:              {}", io_name(c))?;
    match &s.duid {
        Some(d) => writeln!(o, "server duid:     {}", hex::encode(&d.0))?,
        None => writeln!(
            o,
            "server duid:     generated on first start, kept in {}",
            s.state_dir.display()
        )?,
    }
    writeln!(
        o,
        "model:           {}{}",
        c.redundancy.model.as_str(),
        model_note(c.redundancy.model)
    )?;
    writeln!(o, "preference:      {}", s.preference)?;
    match &c.redundancy.allocation_key {
        Some(k) => writeln!(o, "allocation key:  {k}")?,
        None => writeln!(o, "allocation key:  none")?,
    }
    writeln!(o, "rapid commit:    {}", on_off(s.rapid_commit))?;
    writeln!(o, "rebind creates:  {}", on_off(s.rebind_creates_bindings))?;
    writeln!(o, "state dir:       {}", s.state_dir.display())?;
    writeln!(o, "control socket:  {}", s.control_socket.display())?;
    match s.metrics_listen {
        Some(a) => writeln!(o, "metrics:         http://{a}/metrics")?,
        None => writeln!(o, "metrics:         off")?,
    }
    if let Some(user) = &s.user {
        writeln!(o, "run as user:     {user}")?;
    }
    let l = &c.limits;
    match l.messages_per_second_per_source {
        Some(n) => writeln!(
            o,
            "rate limit:      {n} messages/s per source, burst {}",
            n.saturating_mul(crate::protocol::limit::BURST_SECONDS)
        )?,
        None => writeln!(o, "rate limit:      none")?,
    }
    writeln!(
        o,
        "per client:      at most {} addresses and prefixes",
        l.bindings_per_client
    )?;
    match &l.trusted_relays {
        Some(nets) if nets.is_empty() => {
            writeln!(o, "trusted relays:  none (every Relay-forw dropped)")?
        }
        Some(nets) => {
            let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
            writeln!(o, "trusted relays:  {}", nets.join(", "))?
        }
        None => writeln!(o, "trusted relays:  any")?,
    }
    match l.max_bindings {
        Some(n) => writeln!(o, "max bindings:    {n}")?,
        None => writeln!(o, "max bindings:    no cap beyond the pools")?,
    }
    writeln!(o, "subnets:         {}", c.subnets.len())?;
    for (i, sub) in c.subnets.iter().enumerate() {
        let link = match &sub.interface {
            Some(name) => format!("on {name}"),
            None => "relayed".to_string(),
        };
        writeln!(o, "subnet[{i}] {} ({link})", sub.prefix)?;
        let l = sub.lifetimes(&c.lifetimes);
        writeln!(
            o,
            "  lifetimes: t1 {} s, t2 {} s, preferred {} s, valid {} s",
            l.t1, l.t2, l.preferred, l.valid
        )?;
        // Only when configured: the RFC defaults go without saying.
        let v = sub.option_values(&c.options);
        if v != OptionValues::default() {
            writeln!(
                o,
                "  sent on request: sol_max_rt {} s, inf_max_rt {} s, information_refresh_time {} s",
                v.sol_max_rt, v.inf_max_rt, v.information_refresh_time
            )?;
        }
        if sub.pools.is_empty() {
            writeln!(o, "  address pools: none")?;
        }
        for p in &sub.pools {
            // The allocator's own count, so check-config and `stats` agree.
            let usable = crate::protocol::alloc::NaPool {
                first: p.first.into(),
                last: p.last.into(),
                subnet_prefix: sub.prefix.network().into(),
                subnet_len: sub.prefix.prefix_len(),
            }
            .capacity();
            let reserved = p.size() - usable;
            write!(o, "  address pool {p}: {usable} addresses")?;
            if reserved > 0 {
                write!(o, " ({reserved} reserved anycast left out)")?;
            }
            writeln!(o)?;
        }
        for p in &sub.pd_pools {
            writeln!(
                o,
                "  prefix pool {} -> /{}: {} prefixes",
                p.prefix,
                p.delegated_length,
                p.capacity()
            )?;
        }
        if !sub.link_prefixes.is_empty() {
            let lp: Vec<String> = sub.link_prefixes.iter().map(|p| p.to_string()).collect();
            writeln!(o, "  also on this link (other servers): {}", lp.join(", "))?;
        }
        if !sub.dns_servers.is_empty() {
            let dns: Vec<String> = sub.dns_servers.iter().map(|a| a.to_string()).collect();
            writeln!(o, "  dns servers: {}", dns.join(", "))?;
        }
        if !sub.domain_search.is_empty() {
            writeln!(o, "  domain search: {}", sub.domain_search.join(", "))?;
        }
    }
    Ok(())
}

fn io_name(c: &Config) -> &'static str {
    match c.server.io {
        super::IoMode::Xdp => "xdp (XDP + AF_XDP)",
        super::IoMode::Socket => "socket (kernel UDP sockets)",
    }
}

fn model_note(m: Model) -> &'static str {
    match m {
        Model::Standalone => "",
        Model::SplitPrefix => " (RFC 6853 §6.1)",
        Model::UniquePrefix => " (RFC 6853 §6.2)",
        Model::IdenticalPrefix => " (RFC 6853 §6.3)",
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}
