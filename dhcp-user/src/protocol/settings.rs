//! The policy the operator chose, as plain values: what `config` builds
//! from the file and the core is built from (see [`super::Policy`]).
//!
//! Owns the value types both sides share (the RFC 6853 model, lifetimes,
//! option values, address ranges). Never reads a file or checks cross-key
//! rules: that is `config`'s job, done before a [`Settings`] exists.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::Deserialize;

/// Everything the core needs to answer clients, resolved: each subnet
/// carries its own lifetimes and option values (defaults merged in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Preference option value (RFC 9915 §21.8) sent in every Advertise.
    pub preference: u8,
    /// Answer Rapid Commit Solicits with a committed Reply (RFC 9915 §18.3.1).
    pub rapid_commit: bool,
    /// RFC 9915 §18.3.5: a server "configured to create new bindings as a
    /// result of processing Rebind messages" gives an IA it has no binding
    /// for a new lease (with the listed foreign ones at lifetimes 0);
    /// otherwise NoBinding. Independent of `rapid_commit`.
    pub rebind_creates_bindings: bool,
    /// The RFC 6853 model (shown in stats; it does not change answers).
    pub model: Model,
    /// The allocation function's key; `None` derives it from the server DUID.
    pub allocation_key: Option<[u8; 16]>,
    /// `limits.trusted_relays`: when set, a Relay-forw whose source is in
    /// none of these prefixes is dropped ([`DropReason::UntrustedRelay`](crate::protocol::DropReason)).
    pub trusted_relays: Option<Vec<Ipv6Net>>,
    /// `limits.bindings_per_client`: the addresses and prefixes one DUID may
    /// hold; an IA that would create one more gets NoAddrsAvail / NoPrefixAvail.
    pub bindings_per_client: u32,
    /// `limits.max_bindings`: the most address and prefix bindings the table
    /// holds; past it new ones are refused the same way (`None`: no cap).
    pub max_bindings: Option<u64>,
    /// `limits.messages_per_second_per_source`: when set, each source's
    /// messages beyond this rate (burst 2 s of tokens) are dropped
    /// ([`DropReason::RateLimited`](crate::protocol::DropReason)); see
    /// [`limit`](crate::protocol::limit).
    pub messages_per_second_per_source: Option<u32>,
    /// The subnets, in configuration order.
    pub subnets: Vec<SubnetSettings>,
}

/// One subnet of [`Settings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetSettings {
    /// The on-link prefix.
    pub prefix: Ipv6Net,
    /// Other prefixes on the same link (RFC 6853 §6.2).
    pub link_prefixes: Vec<Ipv6Net>,
    /// Interface of directly attached clients, by name, if any.
    pub interface: Option<String>,
    /// IA_NA address pools.
    pub pools: Vec<PoolRange>,
    /// IA_PD pools: (pool prefix, delegated length).
    pub pd_pools: Vec<(Ipv6Net, u8)>,
    /// DNS Recursive Name Servers (RFC 3646 §3).
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list (RFC 3646 §4).
    pub domain_search: Vec<String>,
    /// Lifetimes in force for this subnet.
    pub lifetimes: Lifetimes,
    /// Timer option values in force for this subnet.
    pub options: OptionValues,
}

/// The RFC 6853 deployment model this server takes part in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// One server, no redundancy partner (the default).
    #[default]
    Standalone,
    /// RFC 6853 §6.1: each server serves a disjoint pool cut from the same prefix.
    SplitPrefix,
    /// RFC 6853 §6.2: each server serves its own prefix; the link carries all of them
    /// (see `SubnetConfig::link_prefixes`).
    UniquePrefix,
    /// RFC 6853 §6.3: every server serves the same pool and must offer the same
    /// address to a client, so `redundancy.allocation_key` is required (§7).
    IdenticalPrefix,
}

impl Model {
    /// The name used in the config file and in stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Standalone => "standalone",
            Model::SplitPrefix => "split-prefix",
            Model::UniquePrefix => "unique-prefix",
            Model::IdenticalPrefix => "identical-prefix",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standalone" => Ok(Model::Standalone),
            "split-prefix" => Ok(Model::SplitPrefix),
            "unique-prefix" => Ok(Model::UniquePrefix),
            "identical-prefix" => Ok(Model::IdenticalPrefix),
            _ => Err(format!(
                "{s:?} is not a model (standalone, split-prefix, unique-prefix, identical-prefix)"
            )),
        }
    }
}

/// `[lifetimes]`, in seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    /// Preferred lifetime of an address or delegated prefix (RFC 9915 §21.6,
    /// §21.22), seconds (default 3000); at most `valid`.
    #[serde(default = "default_preferred")]
    pub preferred: u32,
    /// Valid lifetime of an address or delegated prefix (RFC 9915 §21.6, §21.22),
    /// seconds, greater than 0 (default 4000).
    #[serde(default = "default_valid")]
    pub valid: u32,
    /// T1 of IA_NA and IA_PD (RFC 9915 §21.4, §21.21): when the client starts to
    /// Renew, seconds (default 1000); at most `t2`.
    #[serde(default = "default_t1")]
    pub t1: u32,
    /// T2 of IA_NA and IA_PD (RFC 9915 §21.4, §21.21): when the client starts to
    /// Rebind, seconds (default 2000); at most `preferred`.
    #[serde(default = "default_t2")]
    pub t2: u32,
}

fn default_preferred() -> u32 {
    3000
}
fn default_valid() -> u32 {
    4000
}
fn default_t1() -> u32 {
    1000
}
fn default_t2() -> u32 {
    2000
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            preferred: default_preferred(),
            valid: default_valid(),
            t1: default_t1(),
            t2: default_t2(),
        }
    }
}

/// `[options]` (extension): the values of the timer options the server sends
/// when a client asks for them in its Option Request option, in seconds.
/// Defaults for every subnet; a subnet may override any of them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OptionValues {
    /// SOL_MAX_RT (RFC 9915 §21.24), 60..=86400 [3600, the §7.6 default].
    #[serde(default = "default_sol_max_rt")]
    pub sol_max_rt: u32,
    /// INF_MAX_RT (RFC 9915 §21.25), 60..=86400 [3600, the §7.6 default].
    #[serde(default = "default_inf_max_rt")]
    pub inf_max_rt: u32,
    /// Information Refresh Time (RFC 9915 §21.23), at least IRT_MINIMUM (600);
    /// 4294967295 means infinity (§7.7) [86400, IRT_DEFAULT].
    #[serde(default = "default_information_refresh_time")]
    pub information_refresh_time: u32,
}

/// SOL_MAX_RT and INF_MAX_RT bounds (RFC 9915 §21.24, §21.25: "MUST be in
/// this range: 60 <= "value" <= 86400").
pub const MAX_RT_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;
/// IRT_MINIMUM (RFC 9915 §7.6): the smallest Information Refresh Time a
/// server may send (§21.23: "The option value MUST NOT be smaller than IRT_MINIMUM").
pub const IRT_MINIMUM: u32 = 600;

// RFC 9915 §7.6 defaults: SOL_MAX_RT, INF_MAX_RT, IRT_DEFAULT.
fn default_sol_max_rt() -> u32 {
    3600
}
fn default_inf_max_rt() -> u32 {
    3600
}
fn default_information_refresh_time() -> u32 {
    86_400
}

impl Default for OptionValues {
    fn default() -> Self {
        OptionValues {
            sol_max_rt: default_sol_max_rt(),
            inf_max_rt: default_inf_max_rt(),
            information_refresh_time: default_information_refresh_time(),
        }
    }
}

/// An address pool: `"2001:db8::/65"` or `"2001:db8::10-2001:db8::ff"`, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde_with::DeserializeFromStr)]
pub struct PoolRange {
    /// First address of the range (inclusive).
    pub first: Ipv6Addr,
    /// Last address of the range (inclusive); never before `first`.
    pub last: Ipv6Addr,
}

impl PoolRange {
    /// Number of addresses in the range (may exceed `u64`).
    pub fn size(&self) -> u128 {
        u128::from(self.last) - u128::from(self.first) + 1
    }

    /// Whether `addr` is inside the range.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        let a = u128::from(addr);
        a >= u128::from(self.first) && a <= u128::from(self.last)
    }
}

impl std::fmt::Display for PoolRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Print as CIDR when the range is exactly one aligned prefix.
        let size = self.size();
        if size.is_power_of_two() && u128::from(self.first) % size == 0 {
            let len = 128 - size.trailing_zeros();
            write!(f, "{}/{}", self.first, len)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl std::str::FromStr for PoolRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((a, b)) = s.split_once('-') {
            let first: Ipv6Addr = a
                .trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IPv6 address", a.trim()))?;
            let last: Ipv6Addr = b
                .trim()
                .parse()
                .map_err(|_| format!("{:?} is not an IPv6 address", b.trim()))?;
            if u128::from(first) > u128::from(last) {
                return Err(format!("{s:?}: the first address is after the last"));
            }
            Ok(PoolRange { first, last })
        } else {
            let net: Ipv6Net = s
                .parse()
                .map_err(|_| format!("{s:?} is neither a CIDR prefix nor a first-last range"))?;
            if net.network() != net.addr() {
                return Err(format!(
                    "{s:?} has host bits set (did you mean {}?)",
                    net.trunc()
                ));
            }
            Ok(PoolRange {
                first: net.network(),
                last: net.broadcast(),
            })
        }
    }
}
