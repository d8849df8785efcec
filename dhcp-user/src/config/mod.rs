//! The configuration file (TOML), as written in `shared/CONTRACT.md`.
//!
//! This module owns the file's shape (the serde derives below, every table
//! `deny_unknown_fields`), its parsing (private `parse`: TOML through
//! `serde_path_to_error`, so that every error names its key path,
//! `subnet[0].pools[1]: ...`), the cross-key checks (private `validate`),
//! the host checks `check-config` warns about, the summary it prints, and the
//! translation into the core's [`Settings`](crate::protocol::Settings). It never
//! opens sockets, binds, attaches XDP or touches the state directory, and it
//! does not decide what a reload may change (that is `serve`).
//!
//! [`Config::load`] (a file) and [`Config::from_toml`] (text) are the ways in,
//! for the server and for tests alike. The `Deserialize` derives are public
//! only because serde needs them to be; a `Config` from `toml::from_str`
//! would skip the cross-key checks, so nothing builds one that way.

mod parse;
mod policy;
mod summary;
mod validate;

pub use crate::dataplane::IoMode;
pub use crate::protocol::settings::{
    Lifetimes, Model, OptionValues, PoolRange, IRT_MINIMUM, MAX_RT_RANGE,
};
pub use validate::{interface_index, user_ids};

use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::Ipv6Net;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: interfaces, I/O backend, identity and local paths (required).
    pub server: ServerSection,
    /// `[redundancy]`: the RFC 6853 deployment model and the allocation key
    /// (default: standalone, no key).
    #[serde(default)]
    pub redundancy: Redundancy,
    /// `[lifetimes]`: T1, T2, preferred and valid lifetimes for every subnet, in seconds.
    #[serde(default)]
    pub lifetimes: Lifetimes,
    /// Extension: `[options]`, values of the timer options sent on request.
    #[serde(default)]
    pub options: OptionValues,
    /// `[limits]`: what untrusted input may cost us (default: no rate limit,
    /// 16 leases per client, Relay-forw from anyone, no table cap).
    #[serde(default)]
    pub limits: Limits,
    /// The `[[subnet]]` tables, in file order; the index is the `subnet[N]` of error messages.
    #[serde(default, rename = "subnet")]
    pub subnets: Vec<SubnetConfig>,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Interfaces where clients or relays reach us (at least one, no duplicates,
    /// names shorter than `IFNAMSIZ`); a change needs a restart.
    pub interfaces: Vec<String>,
    /// Packet I/O backend (default [`IoMode::Xdp`]); a change needs a restart.
    #[serde(default)]
    pub io: IoMode,
    /// Hex DUID; generated once and kept in `state_dir` when absent.
    #[serde(default)]
    pub duid: Option<HexBytes>,
    /// Value of the Preference option (RFC 9915 §21.8) sent in every Advertise,
    /// 0..=255 (default 0). 255 makes a client request at once (§18.2.1);
    /// RFC 6853 §6 gives each redundant server a different value.
    #[serde(default)]
    pub preference: u8,
    /// Answer a Solicit that carries Rapid Commit with a committed Reply
    /// (RFC 9915 §18.3.1, §21.14) instead of an Advertise (default false).
    #[serde(default)]
    pub rapid_commit: bool,
    /// RFC 9915 §18.3.5: create a new binding for an IA a Rebind names that
    /// we hold nothing for (the foreign leases it lists go back with
    /// lifetimes 0), instead of NoBinding; independent of `rapid_commit`
    /// (default true).
    #[serde(default = "default_true")]
    pub rebind_creates_bindings: bool,
    /// Directory of the lease journal, snapshots and generated DUID
    /// (default `/var/lib/dhcp6d`); locked by one server at a time.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Path of the Unix control socket (mode 0600), default [`DEFAULT_CONTROL_SOCKET`].
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// Extension: Prometheus text endpoint (`127.0.0.1:9547`); off when absent.
    /// Loopback addresses only: the counters are not meant for the world.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Extension: log level when neither `--log-level` nor `RUST_LOG` is given ["info"].
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    /// Extension: user to switch to once sockets are open and XDP is attached.
    #[serde(default)]
    pub user: Option<String>,
}

/// `server.log_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// One line per start, stop, attach, reload, refusal and error; never one
    /// per packet (the default).
    Info,
    /// Adds housekeeping detail (expiry sweeps) and the XDP program's debug log.
    Debug,
    /// Everything, from dhcp6d and the libraries it uses; very verbose.
    Trace,
}

impl std::str::FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!(
                "{s:?} is not a log level (error, warn, info, debug, trace)"
            )),
        }
    }
}

impl LogLevel {
    /// The name used in the config file and in `RUST_LOG`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/dhcp6d")
}

/// Where the control socket is when the config does not say (`server.control_socket`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/dhcp6d/control.sock";

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}

/// `[limits]`, as written in `shared/CONTRACT.md` "Beyond the base".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Token bucket per source (a direct client's link-local address on its
    /// interface, the innermost relay hop's peer-address on that hop's
    /// link-address for a relayed one), messages per second, at least 1;
    /// burst 2 s of tokens (default: no check). Checked before a message can
    /// change any state; each worker keeps its own table (see
    /// [`crate::protocol::limit`]).
    #[serde(default)]
    pub messages_per_second_per_source: Option<u32>,
    /// Addresses and prefixes one DUID may hold here, counted together, at
    /// least 1; an IA that would add one more gets NoAddrsAvail /
    /// NoPrefixAvail inside the IA, counted in `refused.bindings_per_client`
    /// (default 16).
    #[serde(default = "default_bindings_per_client")]
    pub bindings_per_client: u32,
    /// If set, Relay-forw whose source is outside every prefix is dropped
    /// (default: any source; an empty list refuses every relay).
    #[serde(default)]
    pub trusted_relays: Option<Vec<Ipv6Net>>,
    /// Extension: the most bindings the table may hold, at least 1; past it
    /// new bindings get NoAddrsAvail / NoPrefixAvail, counted in
    /// `refused.max_bindings` (default: no cap beyond the pools).
    #[serde(default)]
    pub max_bindings: Option<u64>,
}

/// Default of `limits.bindings_per_client`.
pub const DEFAULT_BINDINGS_PER_CLIENT: u32 = 16;

fn default_bindings_per_client() -> u32 {
    DEFAULT_BINDINGS_PER_CLIENT
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            messages_per_second_per_source: None,
            bindings_per_client: DEFAULT_BINDINGS_PER_CLIENT,
            trusted_relays: None,
            max_bindings: None,
        }
    }
}

/// `[redundancy]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redundancy {
    /// Which RFC 6853 model this server takes part in (default
    /// [`Model::Standalone`]); checked by validation and shown in stats, it
    /// does not change how packets are answered.
    #[serde(default)]
    pub model: Model,
    /// 16-byte SipHash key of the allocation function.
    #[serde(default)]
    pub allocation_key: Option<AllocationKey>,
}

/// One `[[subnet]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    /// The on-link prefix (no host bits); a relayed client whose innermost relay
    /// link-address falls in it belongs to this subnet.
    pub prefix: Ipv6Net,
    /// The interface where this subnet's clients reach us directly, without a
    /// relay; must be listed in `server.interfaces` and used by one subnet only
    /// (default none: relayed clients only).
    #[serde(default)]
    pub interface: Option<String>,
    /// IA_NA address pools inside `prefix`; disjoint from every other pool (default none).
    #[serde(default)]
    pub pools: Vec<PoolRange>,
    /// IA_PD pools of delegated prefixes; disjoint from every other pool (default none).
    #[serde(default)]
    pub pd_pools: Vec<PdPoolConfig>,
    /// Recursive DNS servers, sent in the DNS Recursive Name Server option
    /// (RFC 3646 §3) when the client requests it (default none).
    #[serde(default)]
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list, sent in the Domain Search List option (RFC 3646 §4)
    /// when the client requests it; RFC 1035 names (default none).
    #[serde(default)]
    pub domain_search: Vec<String>,
    /// Extension: other prefixes on this same link, served by other servers
    /// (RFC 6853 §6.2 unique prefixes). Addresses in them are on-link for
    /// Confirm, and a relay's link-address in them selects this subnet; we
    /// never hand out addresses from them.
    #[serde(default)]
    pub link_prefixes: Vec<Ipv6Net>,
    /// Override of `lifetimes.preferred` for this subnet, seconds (this and
    /// the next three override `[lifetimes]`; the merged set is checked again).
    #[serde(default)]
    pub preferred: Option<u32>,
    /// Override of `lifetimes.valid` for this subnet, seconds.
    #[serde(default)]
    pub valid: Option<u32>,
    /// Override of `lifetimes.t1` for this subnet, seconds.
    #[serde(default)]
    pub t1: Option<u32>,
    /// Override of `lifetimes.t2` for this subnet, seconds.
    #[serde(default)]
    pub t2: Option<u32>,
    /// Override of `options.sol_max_rt` for this subnet, 60..=86400 seconds
    /// (this and the next two override `[options]`).
    #[serde(default)]
    pub sol_max_rt: Option<u32>,
    /// Override of `options.inf_max_rt` for this subnet, 60..=86400 seconds.
    #[serde(default)]
    pub inf_max_rt: Option<u32>,
    /// Override of `options.information_refresh_time` for this subnet, at least 600 seconds.
    #[serde(default)]
    pub information_refresh_time: Option<u32>,
}

impl SubnetConfig {
    /// The `[options]` values in force for this subnet.
    pub fn option_values(&self, defaults: &OptionValues) -> OptionValues {
        OptionValues {
            sol_max_rt: self.sol_max_rt.unwrap_or(defaults.sol_max_rt),
            inf_max_rt: self.inf_max_rt.unwrap_or(defaults.inf_max_rt),
            information_refresh_time: self
                .information_refresh_time
                .unwrap_or(defaults.information_refresh_time),
        }
    }

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
    /// The pool (no host bits) that delegated prefixes are cut from.
    pub prefix: Ipv6Net,
    /// Length of each delegated prefix, from the pool's own length up to 128.
    pub delegated_length: u8,
}

impl PdPoolConfig {
    /// How many prefixes of `delegated_length` the pool holds, as a decimal
    /// string (a /0 cut into /128s does not fit a `u128`).
    pub fn capacity(&self) -> String {
        let bits = u32::from(
            self.delegated_length
                .saturating_sub(self.prefix.prefix_len()),
        );
        1u128
            .checked_shl(bits)
            .map_or_else(|| format!("2^{bits}"), |n| n.to_string())
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
            .map_err(|e| format!("{s:?} is not hex ({e})"))
    }
}

/// The 16-byte allocation key, written as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde_with::DeserializeFromStr)]
pub struct AllocationKey(pub [u8; 16]);

impl std::str::FromStr for AllocationKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| format!("{s:?} is not hex ({e})"))?;
        let key: [u8; 16] = bytes.try_into().map_err(|v: Vec<u8>| {
            format!(
                "{s:?} must be 16 bytes (32 hex digits), got {} bytes",
                v.len()
            )
        })?;
        Ok(AllocationKey(key))
    }
}

impl std::fmt::Display for AllocationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a configuration cannot be used. Every message names the file; the
/// `Invalid` ones also name the key path (`subnet[0].pools[1]`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file named on the command line.
        file: PathBuf,
        /// The I/O error from reading it.
        source: std::io::Error,
    },
    /// The file is not valid TOML (the message carries line and column).
    #[error("{}: {message}", file.display())]
    Syntax {
        /// The file named on the command line.
        file: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A key is missing, unknown, has a bad value, or conflicts with another key.
    #[error("{}: {key}: {reason}", file.display())]
    Invalid {
        /// The file named on the command line.
        file: PathBuf,
        /// The key path, e.g. `subnet[0].pools[1]`.
        key: String,
        /// What is wrong with the value, in words for the operator.
        reason: String,
    },
}

impl ConfigError {
    /// The key path of an `Invalid` error (`subnet[0].pools[1]`).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Something true of the configuration on this host that `serve` refuses
/// and `check-config` only warns about (the file may be meant for another host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIssue {
    /// Key path, e.g. `server.interfaces[1]`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for HostIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Parse and validate TOML text; `file` only names the source in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let config = parse::parse(text, file)?;
        validate::validate(&config).map_err(|(key, reason)| ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            reason,
        })?;
        Ok(config)
    }

    /// Checks that depend on this host: interfaces that exist, a user that exists.
    pub fn host_issues(&self) -> Vec<HostIssue> {
        validate::host_issues(self)
    }

    /// A human summary of what would be served (printed by `check-config`).
    pub fn summary(&self) -> String {
        summary::summary(self)
    }

    /// The lifetimes in force for subnet `index` (`[lifetimes]` plus overrides).
    pub fn subnet_lifetimes(&self, index: usize) -> Lifetimes {
        self.subnets[index].lifetimes(&self.lifetimes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of CONTRACT.md ("Configuration file") loads, with its values.
    #[test]
    fn contract_example_loads() {
        let text = r#"
[server]
interfaces = ["eth0"]
io = "xdp"
duid = "000400112233445566778899aabbccddeeff"
preference = 255
rapid_commit = false
state_dir = "/var/lib/dhcp6d"
control_socket = "/run/dhcp6d/control.sock"

[redundancy]
model = "split-prefix"
allocation_key = "00112233445566778899aabbccddeeff"

[lifetimes]
preferred = 3000
valid = 4000
t1 = 1000
t2 = 2000

[[subnet]]
prefix = "2001:db8:1:1::/64"
interface = "eth0"
pools = ["2001:db8:1:1::/65"]
pd_pools = [ { prefix = "2001:db8:100::/40", delegated_length = 56 } ]
dns_servers = ["2001:db8::53"]
domain_search = ["example.net"]
"#;
        let c = Config::from_toml(text, Path::new("contract.toml")).unwrap();
        assert_eq!(c.server.preference, 255);
        assert_eq!(c.redundancy.model, Model::SplitPrefix);
        assert_eq!(c.subnets[0].pools[0].size(), 1 << 63);
        assert_eq!(c.subnets[0].pd_pools[0].capacity(), "65536");
        assert_eq!(c.subnet_lifetimes(0), Lifetimes::default());
        assert_eq!(
            c.server.control_socket,
            PathBuf::from("/run/dhcp6d/control.sock")
        );
    }

    #[test]
    fn pool_ranges_parse_and_print() {
        let r: PoolRange = "2001:db8::10 - 2001:db8::1f".parse().unwrap();
        assert_eq!(
            (r.size(), r.to_string()),
            (16, "2001:db8::10/124".to_string())
        );
        let r: PoolRange = "2001:db8::10-2001:db8::20".parse().unwrap();
        assert_eq!(r.to_string(), "2001:db8::10-2001:db8::20");
        assert!("2001:db8::20-2001:db8::10".parse::<PoolRange>().is_err());
    }

    /// `[limits]` of CONTRACT.md "Beyond the base": absent means the
    /// defaults; the contract example loads with its values.
    #[test]
    fn limits_defaults_and_contract_example() {
        let server = "[server]\ninterfaces = [\"eth0\"]\n";
        let c = Config::from_toml(server, Path::new("f.toml")).unwrap();
        assert_eq!(c.limits.messages_per_second_per_source, None);
        assert_eq!(c.limits.bindings_per_client, 16);
        assert_eq!(c.limits.trusted_relays, None);
        assert_eq!(c.limits.max_bindings, None);
        let text = format!(
            "{server}[limits]\nmessages_per_second_per_source = 100\nbindings_per_client = 16\n\
             trusted_relays = [\"2001:db8:ff::/48\"]\nmax_bindings = 100000\n"
        );
        let c = Config::from_toml(&text, Path::new("f.toml")).unwrap();
        assert_eq!(c.limits.messages_per_second_per_source, Some(100));
        assert_eq!(
            c.limits.trusted_relays,
            Some(vec!["2001:db8:ff::/48".parse().unwrap()])
        );
        assert_eq!(c.limits.max_bindings, Some(100_000));
        let summary = c.summary();
        assert!(
            summary.contains("rate limit:      100 messages/s per source, burst 200"),
            "{summary}"
        );
        assert!(
            summary.contains("trusted relays:  2001:db8:ff::/48"),
            "{summary}"
        );
        assert!(summary.contains("max bindings:    100000"), "{summary}");
    }

    /// Every bad `[limits]` value is refused naming its key.
    #[test]
    fn limits_bad_values_name_the_key() {
        let server = "[server]\ninterfaces = [\"eth0\"]\n[limits]\n";
        for (line, key, reason) in [
            (
                "messages_per_second_per_source = 0",
                "limits.messages_per_second_per_source",
                "must be at least 1",
            ),
            (
                "messages_per_second_per_source = -5",
                "limits.messages_per_second_per_source",
                "invalid value",
            ),
            (
                "bindings_per_client = 0",
                "limits.bindings_per_client",
                "must be at least 1",
            ),
            (
                "max_bindings = 0",
                "limits.max_bindings",
                "must be at least 1",
            ),
            (
                "trusted_relays = [\"2001:db8:ff::1/48\"]",
                "limits.trusted_relays[0]",
                "host bits",
            ),
            (
                "trusted_relays = [\"relay\"]",
                "limits.trusted_relays[0]",
                "relay",
            ),
            ("burst = 3", "limits.burst", "unknown key"),
        ] {
            let e =
                Config::from_toml(&format!("{server}{line}\n"), Path::new("f.toml")).unwrap_err();
            assert_eq!(e.key(), Some(key), "{line}: {e}");
            assert!(e.to_string().contains(reason), "{line}: {e}");
        }
    }
}
