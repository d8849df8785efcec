//! `dhcp6d plan`: N server configurations for one link, following the
//! deployment models of RFC 6853 §6.
//!
//! - split-prefix (§6.1, Figure 1): the prefix is cut into 2^b equal pools,
//!   2^b the smallest power of two >= N (2 servers → /65s, 3–4 → /66s …);
//!   server k gets pool k, every server keeps the whole prefix as its subnet.
//! - unique-prefix (§6.2, Figure 2): server k gets the k-th /64 of the given
//!   (shorter) prefix as both subnet prefix and pool, and the other servers'
//!   /64s as `link_prefixes` (on-link for Confirm, never handed out).
//! - identical-prefix (§6.3, Figure 3): every server gets the same prefix and
//!   pool and one shared `allocation_key` (§7: the servers must allocate alike).
//!
//! Preferences follow the figures: server 1 = 255 (a client takes its
//! Advertise at once, RFC 9915 §18.2.1), server 2 = 0, servers 3..N distinct
//! values between, evenly spaced and descending (3 servers: 128; 4: 170, 85).
//!
//! Pure: returns file names and text; the binary writes them.

use std::fmt::Write;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::config::{AllocationKey, Lifetimes, Model};

/// Most servers a plan may have: 255 and 0 plus 254 distinct values between.
pub const MAX_SERVERS: u16 = 256;

/// What to plan.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// split-prefix, unique-prefix or identical-prefix.
    pub model: Model,
    /// The link's /64 (split, identical) or the prefix to carve /64s from (unique).
    pub prefix: Ipv6Net,
    /// How many servers.
    pub servers: u16,
    /// Interface name written into every file.
    pub interface: String,
    /// The shared key for identical-prefix; derived from the inputs when `None`.
    pub allocation_key: Option<AllocationKey>,
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedConfig {
    /// `server1.toml`, `server2.toml`, …
    pub file_name: String,
    /// The TOML text, starting with its comment header.
    pub text: String,
}

/// Why a plan cannot be made (a usage error: exit status 2).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `--servers` out of range.
    #[error("--servers: must be between 1 and {MAX_SERVERS}, got {0}")]
    Servers(u16),
    /// `--model standalone` has nothing to plan.
    #[error("--model: {0} is not an RFC 6853 model (use split-prefix, unique-prefix or identical-prefix)")]
    Model(&'static str),
    /// `--prefix` has host bits set.
    #[error("--prefix: {0} has host bits set (did you mean {1}?)")]
    HostBits(Ipv6Net, Ipv6Net),
    /// The prefix is too small for the plan.
    #[error("--prefix: {0}")]
    TooSmall(String),
}

/// The preference of server `k` (1-based) of `n`, as described in the module docs.
pub fn preference(k: u16, n: u16) -> u8 {
    match k {
        1 => 255,
        2 => 0,
        _ => {
            // j runs from n-2 (server 3) down to 1 (server n): evenly spaced
            // in 1..=254 and distinct because the step 255/(n-1) is >= 1.
            let j = u32::from(n - k + 1);
            let span = u32::from(n - 1);
            ((255 * j + span / 2) / span) as u8
        }
    }
}

/// The identical-prefix key derived from the inputs: SipHash-2-4 (128-bit
/// output, fixed key) over a label, the prefix and the server count, so the
/// same command gives the same key on any machine. It is not secret; pass
/// `--allocation-key` for one that is.
pub fn derived_key(prefix: Ipv6Net, servers: u16) -> AllocationKey {
    let mut h = SipHasher24::new_with_key(b"dhcp6d plan key\0");
    std::hash::Hasher::write(&mut h, b"identical-prefix");
    std::hash::Hasher::write(&mut h, &prefix.network().octets());
    std::hash::Hasher::write(&mut h, &[prefix.prefix_len()]);
    std::hash::Hasher::write(&mut h, &servers.to_be_bytes());
    AllocationKey(h.finish128().as_bytes())
}

/// Make the N configurations.
pub fn plan(req: &PlanRequest) -> Result<Vec<PlannedConfig>, PlanError> {
    let n = req.servers;
    if n == 0 || n > MAX_SERVERS {
        return Err(PlanError::Servers(n));
    }
    if req.prefix.addr() != req.prefix.network() {
        return Err(PlanError::HostBits(req.prefix, req.prefix.trunc()));
    }
    let len = req.prefix.prefix_len();
    let base = u128::from(req.prefix.network());
    let servers: Vec<(Ipv6Net, Ipv6Net)> = match req.model {
        Model::Standalone => return Err(PlanError::Model("standalone")),
        Model::SplitPrefix => {
            let bits = 16 - (n - 1).leading_zeros() as u8; // ceil(log2 n)
            let pool_len = len + bits;
            if pool_len > 128 {
                return Err(PlanError::TooSmall(format!(
                    "{} cannot be cut into {n} pools",
                    req.prefix
                )));
            }
            (0..n)
                .map(|k| {
                    let step = 1u128.checked_shl(128 - u32::from(pool_len)).unwrap_or(0);
                    let first = base + u128::from(k) * step;
                    (req.prefix, net(first, pool_len))
                })
                .collect()
        }
        Model::UniquePrefix => {
            let room = 64u32.saturating_sub(u32::from(len));
            if len >= 64 || (room < 16 && (1u32 << room) < u32::from(n)) {
                return Err(PlanError::TooSmall(format!(
                    "{} holds fewer than {n} /64s; unique-prefix needs a shorter prefix (RFC 6853 §6.2)",
                    req.prefix
                )));
            }
            (0..n)
                .map(|k| {
                    let p = net(base + (u128::from(k) << 64), 64);
                    (p, p)
                })
                .collect()
        }
        Model::IdenticalPrefix => (0..n).map(|_| (req.prefix, req.prefix)).collect(),
    };
    let key = (req.model == Model::IdenticalPrefix).then(|| {
        req.allocation_key
            .unwrap_or_else(|| derived_key(req.prefix, n))
    });
    Ok(servers
        .iter()
        .enumerate()
        .map(|(i, (prefix, pool))| {
            let k = i as u16 + 1;
            // Unique prefixes: every other server's /64 is on this link too.
            let others: Vec<Ipv6Net> = if req.model == Model::UniquePrefix {
                servers
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, (p, _))| *p)
                    .collect()
            } else {
                Vec::new()
            };
            PlannedConfig {
                file_name: format!("server{k}.toml"),
                text: file(
                    req,
                    k,
                    (*prefix, *pool, &others),
                    key,
                    req.allocation_key.is_some(),
                ),
            }
        })
        .collect())
}

fn net(first: u128, len: u8) -> Ipv6Net {
    // `len` <= 128 was checked by the caller.
    Ipv6Net::new(Ipv6Addr::from(first), len)
        .unwrap_or_else(|_| Ipv6Net::from(Ipv6Addr::from(first)))
}

/// `subnet` is (prefix, pool, the other prefixes on the link).
fn file(
    req: &PlanRequest,
    k: u16,
    subnet: (Ipv6Net, Ipv6Net, &[Ipv6Net]),
    key: Option<AllocationKey>,
    key_given: bool,
) -> String {
    let (prefix, pool, link_prefixes) = subnet;
    let n = req.servers;
    let model = req.model.as_str();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# dhcp6d server {k} of {n}: RFC 6853 {}",
        title(req.model)
    );
    let _ = writeln!(
        o,
        "# Generated by: dhcp6d plan --model {model} --prefix {} --servers {n}",
        req.prefix
    );
    match req.model {
        Model::SplitPrefix => {
            let pools = 1u32 << (pool.prefix_len() - req.prefix.prefix_len());
            let _ = writeln!(
                o,
                "# {} is cut into {pools} equal /{} pools; this server hands out only pool {k},",
                req.prefix,
                pool.prefix_len()
            );
            let _ = write!(o, "# so no two servers can give out the same address.");
            let spare = pools - u32::from(n);
            if spare == 1 {
                let _ = write!(o, " Pool {pools} is spare.");
            } else if spare > 1 {
                let _ = write!(o, " Pools {}-{pools} are spare.", n + 1);
            }
            let _ = writeln!(o);
        }
        Model::UniquePrefix => {
            let _ = writeln!(
                o,
                "# Each server has its own /64 of {}, as subnet prefix and pool; the link",
                req.prefix
            );
            let _ = writeln!(o, "# must carry all {n} prefixes and route them.");
        }
        _ => {
            let _ = writeln!(
                o,
                "# Every server has the same prefix, pool and allocation_key, so all offer a"
            );
            let _ = writeln!(
                o,
                "# client the same address and any of them can take over its binding (§7)."
            );
            if !key_given {
                let _ = writeln!(
                    o,
                    "# The key is derived from the plan's inputs (not secret): pass"
                );
                let _ = writeln!(
                    o,
                    "# --allocation-key HEX (16 random bytes) for a secret one."
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "# Preference {}: server 1 = 255 (clients take it at once), server 2 = 0,",
        preference(k, n)
    );
    let _ = writeln!(
        o,
        "# servers 3..N evenly spaced between, descending (RFC 6853 Figures 1-3)."
    );
    let _ = writeln!(
        o,
        "# Set the interface for this host, then run: dhcp6d check-config -c server{k}.toml"
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "[server]");
    let _ = writeln!(o, "interfaces = [{:?}]", req.interface);
    let _ = writeln!(o, "preference = {}", preference(k, n));
    if matches!(req.model, Model::SplitPrefix | Model::UniquePrefix) {
        // Without it a client of a failed partner gets its old lease back with
        // lifetimes 0 and nothing else, and has to wait out the valid lifetime.
        // Rapid Commit stays off: two servers committing one Rapid Commit
        // Solicit would spend a lease each.
        let _ = writeln!(
            o,
            "# On a Rebind for a failed partner's lease, also hand out one of ours"
        );
        let _ = writeln!(o, "# (RFC 6853 §6.1, RFC 9915 §18.3.5; the default).");
        let _ = writeln!(o, "rebind_creates_bindings = true");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "[redundancy]");
    let _ = writeln!(o, "model = {model:?}");
    if let Some(key) = key {
        let _ = writeln!(o, "allocation_key = \"{key}\"");
    }
    let l = Lifetimes::default();
    let _ = writeln!(o);
    let _ = writeln!(o, "[lifetimes]");
    let _ = writeln!(o, "t1 = {}", l.t1);
    let _ = writeln!(o, "t2 = {}", l.t2);
    let _ = writeln!(o, "preferred = {}", l.preferred);
    let _ = writeln!(o, "valid = {}", l.valid);
    let _ = writeln!(o);
    let _ = writeln!(o, "[[subnet]]");
    let _ = writeln!(o, "prefix = \"{prefix}\"");
    let _ = writeln!(o, "interface = {:?}", req.interface);
    let _ = writeln!(o, "pools = [\"{pool}\"]");
    if !link_prefixes.is_empty() {
        let list: Vec<String> = link_prefixes.iter().map(|p| format!("\"{p}\"")).collect();
        let _ = writeln!(
            o,
            "# The other servers' /64s on this link: a client of theirs that Confirms"
        );
        let _ = writeln!(
            o,
            "# gets Success here too (RFC 9915 §18.3.3); nothing is handed out from them."
        );
        let _ = writeln!(o, "link_prefixes = [{}]", list.join(", "));
    }
    o
}

fn title(m: Model) -> &'static str {
    match m {
        Model::SplitPrefix => "§6.1 split prefixes.",
        Model::UniquePrefix => "§6.2 multiple unique prefixes.",
        Model::IdenticalPrefix => "§6.3 identical prefixes.",
        Model::Standalone => "standalone.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6853 Figures 1-3: server 1 has preference 255, server 2 has 0, and
    /// "Server 3 ... Preference = [1..254]"; ours are distinct.
    #[test]
    fn preferences_are_distinct_and_follow_the_figures() {
        for n in 1..=MAX_SERVERS {
            let prefs: Vec<u8> = (1..=n).map(|k| preference(k, n)).collect();
            assert_eq!(prefs[0], 255);
            if n >= 2 {
                assert_eq!(prefs[1], 0);
            }
            let mut sorted = prefs.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), prefs.len(), "n = {n}: {prefs:?}");
        }
        assert_eq!(preference(3, 3), 128);
        assert_eq!((preference(3, 4), preference(4, 4)), (170, 85));
    }
}
