//! SIGHUP: may this new configuration replace the running one?
//!
//! Options, lifetimes, preference, pools and the allocation key may change.
//! Keys that name sockets, files or the server's identity need a restart.
//! A reload that would leave a live binding outside every pool is refused:
//! the server could neither renew nor reclaim it (an orphan).

use std::fmt::Write;

use crate::config::Config;
use crate::protocol::{LeaseKind, LeaseOp, LeaseRecord};

/// Why a reload is refused (logged; the old configuration stays in force).
pub type Refusal = String;

/// Keys that only take effect at start-up.
fn restart_only(old: &Config, new: &Config) -> Option<&'static str> {
    let (o, n) = (&old.server, &new.server);
    if o.interfaces != n.interfaces {
        return Some("server.interfaces");
    }
    if o.io != n.io {
        return Some("server.io");
    }
    if o.duid != n.duid {
        return Some("server.duid");
    }
    if o.state_dir != n.state_dir {
        return Some("server.state_dir");
    }
    if o.control_socket != n.control_socket {
        return Some("server.control_socket");
    }
    if o.metrics_listen != n.metrics_listen {
        return Some("server.metrics_listen");
    }
    if o.user != n.user {
        return Some("server.user");
    }
    None
}

/// Whether a binding still has a pool in `config`.
fn has_pool(config: &Config, rec: &LeaseRecord) -> bool {
    config.subnets.iter().any(|s| match rec.kind {
        LeaseKind::Na => s.pools.iter().any(|p| p.contains(rec.addr)),
        LeaseKind::Pd => s
            .pd_pools
            .iter()
            .any(|p| p.delegated_length == rec.prefix_len && p.prefix.contains(&rec.addr)),
    })
}

/// Check `new` against `old` and the live bindings (`for_each` calls its
/// argument once per binding). `Ok` carries notes worth logging.
pub fn check(
    old: &Config,
    new: &Config,
    for_each: impl FnOnce(&mut dyn FnMut(&LeaseRecord)),
) -> Result<Vec<String>, Refusal> {
    if let Some(key) = restart_only(old, new) {
        return Err(format!(
            "reload refused: {key} changed, which needs a restart; the running configuration stays"
        ));
    }
    let mut orphans = 0u64;
    let mut example: Option<LeaseRecord> = None;
    for_each(&mut |rec: &LeaseRecord| {
        if rec.op == LeaseOp::Commit && !has_pool(new, rec) {
            orphans += 1;
            example.get_or_insert(*rec);
        }
    });
    if let Some(e) = example {
        let mut m = format!(
            "reload refused: {orphans} live binding{} would be outside every pool of the new \
             configuration, e.g. ",
            if orphans == 1 { "" } else { "s" }
        );
        let _ = match e.kind {
            LeaseKind::Na => write!(m, "{}", e.addr),
            LeaseKind::Pd => write!(m, "{}/{}", e.addr, e.prefix_len),
        };
        let _ = write!(
            m,
            " (DUID {}, IAID {}); keep its pool until its bindings expire or are released",
            hex::encode(e.duid()),
            e.iaid
        );
        return Err(m);
    }
    let mut notes = Vec::new();
    if old.redundancy.allocation_key != new.redundancy.allocation_key {
        notes.push(
            "redundancy.allocation_key changed: existing bindings keep their addresses, new \
             clients get addresses from the new key (other identical-prefix servers must change too)"
                .to_string(),
        );
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(pools: &str) -> Config {
        let text = format!(
            "[server]\ninterfaces = [\"lo\"]\n[[subnet]]\nprefix = \"2001:db8:1:1::/64\"\n\
             pools = [{pools}]\npd_pools = [ {{ prefix = \"2001:db8:100::/40\", delegated_length = 56 }} ]\n"
        );
        Config::from_toml(&text, Path::new("t.toml")).unwrap()
    }

    fn rec(op: LeaseOp, kind: LeaseKind, addr: &str, len: u8) -> LeaseRecord {
        LeaseRecord::new(
            op,
            kind,
            addr.parse().unwrap(),
            len,
            7,
            &[0, 1, 0xaa],
            10,
            20,
        )
        .unwrap()
    }

    #[test]
    fn shrinking_a_pool_under_a_live_binding_is_refused() {
        let old = config("\"2001:db8:1:1::/65\"");
        let new = config("\"2001:db8:1:1:8000::/65\"");
        let live = [
            rec(LeaseOp::Commit, LeaseKind::Na, "2001:db8:1:1::5", 128),
            rec(LeaseOp::Commit, LeaseKind::Pd, "2001:db8:100:200::", 56),
        ];
        let err = check(&old, &new, |f| live.iter().for_each(f)).unwrap_err();
        assert_eq!(
            err,
            "reload refused: 1 live binding would be outside every pool of the new \
             configuration, e.g. 2001:db8:1:1::5 (DUID 0001aa, IAID 7); keep its pool until its \
             bindings expire or are released"
        );
    }

    #[test]
    fn growing_a_pool_and_changing_lifetimes_is_accepted() {
        let old = config("\"2001:db8:1:1::/65\"");
        let mut new = config("\"2001:db8:1:1::/64\"");
        new.lifetimes.valid = 9000;
        new.server.preference = 7;
        let live = [
            rec(LeaseOp::Commit, LeaseKind::Na, "2001:db8:1:1::5", 128),
            // A declined address outside the new pools is only a quarantine entry.
            rec(LeaseOp::Decline, LeaseKind::Na, "2001:db8:1:2::5", 128),
        ];
        assert_eq!(check(&old, &new, |f| live.iter().for_each(f)), Ok(vec![]));
    }

    #[test]
    fn restart_only_keys_are_refused() {
        let old = config("\"2001:db8:1:1::/65\"");
        let mut new = old.clone();
        new.server.interfaces.push("eth1".into());
        let err = check(&old, &new, |_| {}).unwrap_err();
        assert!(
            err.starts_with("reload refused: server.interfaces changed"),
            "{err}"
        );
    }
}
