//! The readable tables `dhcp6d stats` and `dhcp6d leases` print.

use std::fmt::Write;

use super::protocol::{LeaseList, StatsSnapshot};
use crate::protocol::DropReason;

/// The stats table. With `previous` (an earlier sample and the seconds
/// between them) a per-second rate column is added, as `--watch` shows.
pub fn stats_table(s: &StatsSnapshot, previous: Option<(&StatsSnapshot, f64)>) -> String {
    let mut o = String::new();
    let _ = write_stats(&mut o, s, previous);
    o
}

fn write_stats(
    o: &mut String,
    s: &StatsSnapshot,
    previous: Option<(&StatsSnapshot, f64)>,
) -> std::fmt::Result {
    writeln!(
        o,
        "dhcp6d up {}  io {}  model {}  preference {}",
        duration(s.uptime_s),
        s.io,
        s.model,
        s.preference
    )?;
    writeln!(o, "server duid {}", s.server_duid)?;
    let rate = |now: u64, pick: &dyn Fn(&StatsSnapshot) -> u64| match previous {
        Some((p, secs)) if secs > 0.0 => {
            format!("{:>10.1}/s", now.saturating_sub(pick(p)) as f64 / secs)
        }
        _ => String::new(),
    };
    type Row = (&'static str, Box<dyn Fn(&StatsSnapshot) -> u64>);
    let row =
        |name: &'static str, pick: fn(&StatsSnapshot) -> u64| -> Row { (name, Box::new(pick)) };
    // The base-contract reasons and `other` always; each reason summed into
    // `other` once it has happened.
    let mut drops: Vec<Row> = Vec::new();
    for (name, v) in s.dropped.entries() {
        let shown = match DropReason::ALL.iter().find(|r| r.label() == name) {
            None => true,
            Some(r) if r.in_contract() => true,
            Some(_) => v > 0,
        };
        if shown {
            drops.push((
                name,
                Box::new(move |s: &StatsSnapshot| {
                    s.dropped
                        .entries()
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or(0, |(_, v)| *v)
                }),
            ));
        }
    }
    let sections: [(&str, Vec<Row>); 5] = [
        (
            "received",
            vec![
                row("solicit", |s| s.rx.solicit),
                row("request", |s| s.rx.request),
                row("confirm", |s| s.rx.confirm),
                row("renew", |s| s.rx.renew),
                row("rebind", |s| s.rx.rebind),
                row("release", |s| s.rx.release),
                row("decline", |s| s.rx.decline),
                row("information_request", |s| s.rx.information_request),
                row("relay_forw", |s| s.rx.relay_forw),
                row("other", |s| s.rx.other),
            ],
        ),
        (
            "sent",
            vec![
                row("advertise", |s| s.tx.advertise),
                row("reply", |s| s.tx.reply),
                row("relay_repl", |s| s.tx.relay_repl),
            ],
        ),
        ("dropped", drops),
        (
            "refused",
            vec![
                row("bindings_per_client", |s| s.refused.bindings_per_client),
                row("max_bindings", |s| s.refused.max_bindings),
            ],
        ),
        (
            "xdp",
            vec![
                row("redirected", |s| s.xdp.redirected),
                row("passed", |s| s.xdp.passed),
                row("dropped", |s| s.xdp.dropped),
                row("worker_restarts", |s| s.xdp.worker_restarts),
                row("no_socket", |s| s.xdp.no_socket),
                row("beyond_queue_limit", |s| s.xdp.beyond_queue_limit),
                row("fallback_answered", |s| s.xdp.fallback_answered),
            ],
        ),
    ];
    for (title, rows) in &sections {
        writeln!(o)?;
        writeln!(o, "{title}")?;
        for (name, pick) in rows {
            let v = pick(s);
            writeln!(o, "  {name:<21}{v:>14}{}", rate(v, pick.as_ref()))?;
        }
    }
    writeln!(o)?;
    writeln!(
        o,
        "leases: {} addresses, {} prefixes",
        s.leases.addresses, s.leases.prefixes
    )?;
    if s.leases.poisoned_locks > 0 {
        writeln!(
            o,
            "WARNING: {} binding-table locks found poisoned (a worker panicked mid-update); \
             lease counts may be off by that much until a restart",
            s.leases.poisoned_locks
        )?;
    }
    if !s.pools.is_empty() {
        writeln!(
            o,
            "  {:<40} {:<4} {:>12} {:>22} {:>8}",
            "pool", "kind", "used", "capacity", "util"
        )?;
        for p in &s.pools {
            writeln!(
                o,
                "  {:<40} {:<4} {:>12} {:>22} {:>8}",
                p.pool,
                p.kind,
                p.used,
                p.capacity,
                utilisation(p.used, &p.capacity)
            )?;
        }
    }
    let journal_rate = match previous {
        Some((p, secs)) if secs > 0.0 => format!(
            " ({:.1} records/s)",
            s.journal.records.saturating_sub(p.journal.records) as f64 / secs
        ),
        _ => String::new(),
    };
    writeln!(
        o,
        "journal: {} records, {} fsyncs, {} bytes{journal_rate}",
        s.journal.records, s.journal.fsyncs, s.journal.bytes
    )?;
    Ok(())
}

/// `used / capacity` as a percentage; capacity may exceed u64.
fn utilisation(used: u64, capacity: &str) -> String {
    match capacity.parse::<f64>() {
        Ok(c) if c > 0.0 => format!("{:.2}%", used as f64 * 100.0 / c),
        _ => "-".into(),
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m{s:02}s")
    } else if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The leases table, one binding per line; a page that is not the last
/// ends with how to ask for the next.
pub fn leases_table(l: &LeaseList, now_unix: u64) -> String {
    let mut o = leases_header();
    o.push_str(&leases_rows(l, now_unix));
    let _ = write!(o, "{} bindings", l.total);
    if l.truncated {
        let _ = write!(o, " ({} shown", l.leases.len());
        if let Some(next) = &l.next {
            let _ = write!(o, "; next page: --after {next}, or --all");
        }
        let _ = write!(o, ")");
    }
    let _ = writeln!(o);
    o
}

/// The column heads of the leases table.
pub fn leases_header() -> String {
    format!(
        "{:<44} {:<4} {:<8} {:>10} {:>12}  duid\n",
        "lease", "kind", "state", "iaid", "valid for"
    )
}

/// One line per binding of a page.
pub fn leases_rows(l: &LeaseList, now_unix: u64) -> String {
    let mut o = String::new();
    for e in &l.leases {
        let left = e.valid_until.saturating_sub(now_unix);
        let _ = writeln!(
            o,
            "{:<44} {:<4} {:<8} {:>10} {:>12}  {}",
            e.lease,
            e.kind,
            e.state,
            e.iaid,
            duration(left),
            e.duid
        );
    }
    o
}
