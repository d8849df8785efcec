//! The configuration file (TOML), as written in `shared/CONTRACT.md`.
//!
//! This module owns parsing and validation; it never opens sockets or touches
//! the state directory. Unknown keys are errors (`deny_unknown_fields`).

use std::net::Ipv6Addr;
use std::path::PathBuf;

use ipnet::Ipv6Net;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    #[serde(default)]
    pub redundancy: Redundancy,
    #[serde(default)]
    pub lifetimes: Lifetimes,
    #[serde(default, rename = "subnet")]
    pub subnets: Vec<SubnetConfig>,
}

/// Which packet I/O backend serves clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// XDP program steering DHCPv6 into AF_XDP sockets.
    #[default]
    Xdp,
    /// Kernel UDP sockets on port 547.
    Socket,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub io: IoMode,
    /// Hex DUID; generated once and kept in `state_dir` when absent.
    #[serde(default)]
    pub duid: Option<HexBytes>,
    #[serde(default)]
    pub preference: u8,
    #[serde(default)]
    pub rapid_commit: bool,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/dhcp6d")
}

fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/dhcp6d/control.sock")
}

/// The RFC 6853 deployment model this server takes part in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    #[default]
    Standalone,
    SplitPrefix,
    UniquePrefix,
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

/// `[redundancy]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redundancy {
    #[serde(default)]
    pub model: Model,
    /// 16-byte SipHash key of the allocation function.
    #[serde(default)]
    pub allocation_key: Option<AllocationKey>,
}

/// `[lifetimes]`, in seconds.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    #[serde(default = "default_preferred")]
    pub preferred: u32,
    #[serde(default = "default_valid")]
    pub valid: u32,
    #[serde(default = "default_t1")]
    pub t1: u32,
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

/// One `[[subnet]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    pub prefix: Ipv6Net,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub pools: Vec<PoolRange>,
    #[serde(default)]
    pub pd_pools: Vec<PdPoolConfig>,
    #[serde(default)]
    pub dns_servers: Vec<Ipv6Addr>,
    #[serde(default)]
    pub domain_search: Vec<String>,
    /// Per-subnet overrides of `[lifetimes]`.
    #[serde(default)]
    pub preferred: Option<u32>,
    #[serde(default)]
    pub valid: Option<u32>,
    #[serde(default)]
    pub t1: Option<u32>,
    #[serde(default)]
    pub t2: Option<u32>,
}

impl SubnetConfig {
    /// The lifetimes in force for this subnet.
    pub fn lifetimes(&self, defaults: &Lifetimes) -> Lifetimes {
        Lifetimes {
            preferred: self.preferred.unwrap_or(defaults.preferred),
            valid: self.valid.unwrap_or(defaults.valid),
            t1: self.t1.unwrap_or(defaults.t1),
            t2: self.t2.unwrap_or(defaults.t2),
        }
    }
}

/// One entry of `pd_pools`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PdPoolConfig {
    pub prefix: Ipv6Net,
    pub delegated_length: u8,
}

/// An address pool: `"2001:db8::/65"` or `"2001:db8::10-2001:db8::ff"`, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde_with::DeserializeFromStr)]
pub struct PoolRange {
    pub first: Ipv6Addr,
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
                .map_err(|_| format!("{a:?} is not an IPv6 address"))?;
            let last: Ipv6Addr = b
                .trim()
                .parse()
                .map_err(|_| format!("{b:?} is not an IPv6 address"))?;
            if u128::from(first) > u128::from(last) {
                return Err(format!("pool {s:?}: first address is after the last"));
            }
            Ok(PoolRange { first, last })
        } else {
            let net: Ipv6Net = s
                .parse()
                .map_err(|_| format!("{s:?} is neither a CIDR prefix nor a first-last range"))?;
            if net.network() != net.addr() {
                return Err(format!(
                    "pool {s:?} has host bits set (did you mean {}?)",
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

/// Bytes written as hex in the config (a DUID).
#[derive(Clone, Debug, PartialEq, Eq, serde_with::DeserializeFromStr)]
pub struct HexBytes(pub Vec<u8>);

impl std::str::FromStr for HexBytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let clean: String = s.chars().filter(|c| *c != ':').collect();
        hex::decode(&clean)
            .map(HexBytes)
            .map_err(|e| format!("{s:?} is not hex: {e}"))
    }
}

/// The 16-byte allocation key, written as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde_with::DeserializeFromStr)]
pub struct AllocationKey(pub [u8; 16]);

impl std::str::FromStr for AllocationKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| format!("{s:?} is not hex: {e}"))?;
        let key: [u8; 16] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| format!("must be 16 bytes (32 hex digits), got {}", v.len()))?;
        Ok(AllocationKey(key))
    }
}
