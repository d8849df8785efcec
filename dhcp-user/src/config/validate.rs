//! Cross-key checks: what a well-formed file can still get wrong.
//!
//! Each check returns the first problem as `(key path, reason)`, in file
//! order, so the operator gets one precise message and a stable exit status.
//! Host checks (interfaces, user) live apart because a file may be written on
//! one machine for another: `check-config` warns about them, `serve` refuses.

use std::ffi::CString;

use super::{
    Config, HostIssue, Lifetimes, Model, OptionValues, SubnetConfig, IRT_MINIMUM, MAX_RT_RANGE,
};

type KeyError = (String, String);

/// Longest and shortest DUID (RFC 9915 §11.1: a 2-octet type and up to 128 octets).
const DUID_LEN: std::ops::RangeInclusive<usize> = 3..=130;

pub(super) fn validate(c: &Config) -> Result<(), KeyError> {
    server(c)?;
    redundancy(c)?;
    lifetimes("lifetimes", &c.lifetimes, None)?;
    option_values("options", &c.options, None)?;
    limits(c)?;
    for (i, s) in c.subnets.iter().enumerate() {
        subnet(c, i, s)?;
    }
    subnets_disjoint(c)?;
    pools_disjoint(c)
}

fn server(c: &Config) -> Result<(), KeyError> {
    let s = &c.server;
    if s.interfaces.is_empty() {
        return Err((
            "server.interfaces".into(),
            "must list at least one interface".into(),
        ));
    }
    for (i, name) in s.interfaces.iter().enumerate() {
        let key = format!("server.interfaces[{i}]");
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err((key, format!("{name:?} is not a valid interface name")));
        }
        if let Some(j) = s.interfaces[..i].iter().position(|n| n == name) {
            return Err((
                key,
                format!("{name:?} is already listed as server.interfaces[{j}]"),
            ));
        }
    }
    if let Some(duid) = &s.duid {
        if !DUID_LEN.contains(&duid.0.len()) {
            return Err((
                "server.duid".into(),
                format!(
                    "must be 3 to 130 bytes (RFC 9915 §11.1), got {} bytes",
                    duid.0.len()
                ),
            ));
        }
    }
    if let Some(addr) = s.metrics_listen {
        if !addr.ip().is_loopback() {
            return Err((
                "server.metrics_listen".into(),
                format!("{addr} is not a loopback address (the metrics endpoint is loopback-only)"),
            ));
        }
    }
    if s.user.as_deref() == Some("") {
        return Err(("server.user".into(), "must not be empty".into()));
    }
    Ok(())
}

fn limits(c: &Config) -> Result<(), KeyError> {
    let l = &c.limits;
    if l.messages_per_second_per_source == Some(0) {
        return Err((
            "limits.messages_per_second_per_source".into(),
            "must be at least 1 (leave the key out for no limit)".into(),
        ));
    }
    if l.bindings_per_client == 0 {
        return Err((
            "limits.bindings_per_client".into(),
            "must be at least 1 (0 would refuse every client)".into(),
        ));
    }
    if l.max_bindings == Some(0) {
        return Err((
            "limits.max_bindings".into(),
            "must be at least 1 (leave the key out for no cap)".into(),
        ));
    }
    for (i, net) in l.trusted_relays.iter().flatten().enumerate() {
        if net.trunc() != *net {
            return Err((
                format!("limits.trusted_relays[{i}]"),
                format!("{net} has host bits set (did you mean {}?)", net.trunc()),
            ));
        }
    }
    Ok(())
}

fn redundancy(c: &Config) -> Result<(), KeyError> {
    if c.redundancy.model == Model::IdenticalPrefix && c.redundancy.allocation_key.is_none() {
        return Err((
            "redundancy.allocation_key".into(),
            "required when redundancy.model = \"identical-prefix\": every server must use the \
             same key so that they offer the same address to a client (RFC 6853 §7)"
                .into(),
        ));
    }
    Ok(())
}

/// Check t1 <= t2 <= preferred <= valid. `subnet` is the subnet whose
/// overrides are merged in, so the message can name the key that was set there.
fn lifetimes(path: &str, l: &Lifetimes, subnet: Option<&SubnetConfig>) -> Result<(), KeyError> {
    let overridden = |name: &str| match (subnet, name) {
        (None, _) => true,
        (Some(s), "t1") => s.t1.is_some(),
        (Some(s), "t2") => s.t2.is_some(),
        (Some(s), "preferred") => s.preferred.is_some(),
        (Some(s), _) => s.valid.is_some(),
    };
    let shown = |name: &str, v: u32| {
        if overridden(name) {
            format!("{name} ({v})")
        } else {
            format!("{name} ({v}, from [lifetimes])")
        }
    };
    if l.valid == 0 {
        return Err((format!("{path}.valid"), "must be greater than 0".into()));
    }
    let order = [
        ("t1", l.t1),
        ("t2", l.t2),
        ("preferred", l.preferred),
        ("valid", l.valid),
    ];
    for w in order.windows(2) {
        let ((a, av), (b, bv)) = (w[0], w[1]);
        if av > bv {
            // Name the key this table sets; for a subnet, one of the two must be its own.
            let key = if overridden(b) { b } else { a };
            return Err((
                format!("{path}.{key}"),
                format!(
                    "{} is greater than {}; required: t1 <= t2 <= preferred <= valid",
                    shown(a, av),
                    shown(b, bv)
                ),
            ));
        }
    }
    Ok(())
}

/// Check the timer option values against the ranges RFC 9915 gives. With
/// `subnet`, only the keys that subnet sets are checked (the others come
/// from `[options]`, checked once).
fn option_values(
    path: &str,
    v: &OptionValues,
    subnet: Option<&SubnetConfig>,
) -> Result<(), KeyError> {
    let set = |o: Option<u32>| subnet.is_none() || o.is_some();
    let max_rt = [
        (
            "sol_max_rt",
            v.sol_max_rt,
            "§21.24",
            subnet.and_then(|s| s.sol_max_rt),
        ),
        (
            "inf_max_rt",
            v.inf_max_rt,
            "§21.25",
            subnet.and_then(|s| s.inf_max_rt),
        ),
    ];
    for (name, value, section, own) in max_rt {
        if set(own) && !MAX_RT_RANGE.contains(&value) {
            return Err((
                format!("{path}.{name}"),
                format!(
                    "{value} is outside {}..={} seconds (RFC 9915 {section})",
                    MAX_RT_RANGE.start(),
                    MAX_RT_RANGE.end()
                ),
            ));
        }
    }
    let irt = v.information_refresh_time;
    if set(subnet.and_then(|s| s.information_refresh_time)) && irt < IRT_MINIMUM {
        return Err((
            format!("{path}.information_refresh_time"),
            format!(
                "{irt} is below IRT_MINIMUM ({IRT_MINIMUM} seconds, RFC 9915 §21.23); \
                 4294967295 means infinity"
            ),
        ));
    }
    Ok(())
}

fn subnet(c: &Config, i: usize, s: &SubnetConfig) -> Result<(), KeyError> {
    let path = format!("subnet[{i}]");
    if s.prefix.addr() != s.prefix.network() {
        return Err((
            format!("{path}.prefix"),
            format!(
                "{} has host bits set (did you mean {}?)",
                s.prefix,
                s.prefix.trunc()
            ),
        ));
    }
    if let Some(name) = &s.interface {
        if !c.server.interfaces.contains(name) {
            return Err((
                format!("{path}.interface"),
                format!("{name:?} is not listed in server.interfaces"),
            ));
        }
        if let Some(j) = c.subnets[..i]
            .iter()
            .position(|o| o.interface.as_ref() == Some(name))
        {
            return Err((
                format!("{path}.interface"),
                format!(
                    "{name:?} is already the link of subnet[{j}]; a direct client's subnet \
                     is chosen by interface, so one interface has one subnet"
                ),
            ));
        }
    }
    let subnet_lifetimes = s.lifetimes(&c.lifetimes);
    if subnet_lifetimes != c.lifetimes {
        lifetimes(&path, &subnet_lifetimes, Some(s))?;
    }
    option_values(&path, &s.option_values(&c.options), Some(s))?;
    for (j, pool) in s.pools.iter().enumerate() {
        if !s.prefix.contains(&pool.first) || !s.prefix.contains(&pool.last) {
            return Err((
                format!("{path}.pools[{j}]"),
                format!("{pool} is outside subnet prefix {}", s.prefix),
            ));
        }
    }
    for (j, pd) in s.pd_pools.iter().enumerate() {
        let key = format!("{path}.pd_pools[{j}]");
        if pd.prefix.addr() != pd.prefix.network() {
            return Err((
                format!("{key}.prefix"),
                format!(
                    "{} has host bits set (did you mean {}?)",
                    pd.prefix,
                    pd.prefix.trunc()
                ),
            ));
        }
        if pd.delegated_length < pd.prefix.prefix_len() || pd.delegated_length > 128 {
            return Err((
                format!("{key}.delegated_length"),
                format!(
                    "{} must be between the pool's length /{} and 128",
                    pd.delegated_length,
                    pd.prefix.prefix_len()
                ),
            ));
        }
    }
    for (j, lp) in s.link_prefixes.iter().enumerate() {
        if lp.addr() != lp.network() {
            return Err((
                format!("{path}.link_prefixes[{j}]"),
                format!("{lp} has host bits set (did you mean {}?)", lp.trunc()),
            ));
        }
    }
    for (j, name) in s.domain_search.iter().enumerate() {
        if let Err(why) = domain_name(name) {
            return Err((
                format!("{path}.domain_search[{j}]"),
                format!("{name:?} is not a domain name ({why})"),
            ));
        }
    }
    Ok(())
}

/// RFC 1035 §2.3.4 limits, which the wire encoding (RFC 9915 §10) needs.
fn domain_name(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-' and '_' are allowed");
        }
    }
    Ok(())
}

fn subnets_disjoint(c: &Config) -> Result<(), KeyError> {
    // Every prefix that selects a subnet: its own, then its link_prefixes,
    // in file order, so the first overlap found is the one reported.
    let mut all: Vec<(usize, String, ipnet::Ipv6Net)> = Vec::new();
    for (i, s) in c.subnets.iter().enumerate() {
        all.push((i, format!("subnet[{i}].prefix"), s.prefix));
        for (j, lp) in s.link_prefixes.iter().enumerate() {
            all.push((i, format!("subnet[{i}].link_prefixes[{j}]"), *lp));
        }
    }
    for (b, (bsub, bkey, bnet)) in all.iter().enumerate() {
        for (asub, akey, anet) in &all[..b] {
            if bnet.contains(anet) || anet.contains(bnet) {
                let why = if asub == bsub {
                    "link_prefixes are the other prefixes on this subnet's link, \
                     so each is listed once and apart from the subnet's own prefix"
                } else {
                    "a relayed client's subnet must be unambiguous"
                };
                return Err((
                    bkey.clone(),
                    format!("{bnet} overlaps {akey} {anet}; {why}"),
                ));
            }
        }
    }
    Ok(())
}

/// No address may belong to two pools: NA pools and PD pools of every subnet.
fn pools_disjoint(c: &Config) -> Result<(), KeyError> {
    let mut all: Vec<(String, String, u128, u128)> = Vec::new();
    for (i, s) in c.subnets.iter().enumerate() {
        for (j, p) in s.pools.iter().enumerate() {
            all.push((
                format!("subnet[{i}].pools[{j}]"),
                p.to_string(),
                p.first.into(),
                p.last.into(),
            ));
        }
        for (j, p) in s.pd_pools.iter().enumerate() {
            all.push((
                format!("subnet[{i}].pd_pools[{j}]"),
                p.prefix.to_string(),
                p.prefix.network().into(),
                p.prefix.broadcast().into(),
            ));
        }
    }
    // Report in file order: NA pools of a subnet come before its PD pools.
    for (b, (bkey, bshow, bfirst, blast)) in all.iter().enumerate() {
        for (akey, ashow, afirst, alast) in &all[..b] {
            if bfirst <= alast && afirst <= blast {
                return Err((bkey.clone(), format!("{bshow} overlaps {akey} {ashow}")));
            }
        }
    }
    Ok(())
}

pub(super) fn host_issues(c: &Config) -> Vec<HostIssue> {
    let mut issues = Vec::new();
    for (i, name) in c.server.interfaces.iter().enumerate() {
        if interface_index(name).is_none() {
            issues.push(HostIssue {
                key: format!("server.interfaces[{i}]"),
                reason: format!("interface {name:?} does not exist on this host"),
            });
        }
    }
    if let Some(user) = &c.server.user {
        if user_ids(user).is_none() {
            issues.push(HostIssue {
                key: "server.user".into(),
                reason: format!("user {user:?} does not exist on this host"),
            });
        }
    }
    issues
}

/// The kernel's index for an interface name, or `None` when there is no such interface.
pub fn interface_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// `(uid, gid)` of a user name, or `None` when the user does not exist.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: `passwd` is a plain C struct; all-zero is a valid (empty) value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; getpwnam_r is the reentrant form.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}
