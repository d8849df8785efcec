//! Reading the TOML tree key by key, so that every error names its key path.
//!
//! serde's derive reports `unknown field` or `invalid value` without saying
//! where; operators need `subnet[2].pd_pools[0].delegated_length`. So the
//! file is parsed into a `toml::Table` and each key is taken out and
//! deserialized on its own, with the path known at that point. Keys left over
//! at the end of a table are unknown keys. Defaults are the same functions the
//! serde derives use.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::{
    default_control_socket, default_state_dir, Config, ConfigError, Lifetimes, OptionValues,
    PdPoolConfig, Redundancy, ServerSection, SubnetConfig,
};

/// An error before the file name is attached: `(key path, reason)`.
type KeyError = (String, String);

pub(super) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_path_buf(),
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        })?;
    config(root).map_err(|(key, reason)| ConfigError::Invalid {
        file: file.to_path_buf(),
        key,
        reason,
    })
}

fn config(root: toml::Table) -> Result<Config, KeyError> {
    let mut t = Table {
        path: String::new(),
        map: root,
    };
    t.only(&["server", "redundancy", "lifetimes", "options", "subnet"])?;
    let server = match t.take_raw("server") {
        Some(v) => server(Table::new("server".into(), v)?)?,
        None => {
            return Err((
                "server".into(),
                "missing (the [server] table is required)".into(),
            ))
        }
    };
    let redundancy = match t.take_raw("redundancy") {
        Some(v) => redundancy(Table::new("redundancy".into(), v)?)?,
        None => Redundancy::default(),
    };
    let lifetimes = match t.take_raw("lifetimes") {
        Some(v) => lifetimes(Table::new("lifetimes".into(), v)?)?,
        None => Lifetimes::default(),
    };
    let options = match t.take_raw("options") {
        Some(v) => options(Table::new("options".into(), v)?)?,
        None => OptionValues::default(),
    };
    let mut subnets = Vec::new();
    if let Some(v) = t.take_raw("subnet") {
        let toml::Value::Array(items) = v else {
            return Err((
                "subnet".into(),
                "must be an array of tables ([[subnet]])".into(),
            ));
        };
        for (i, item) in items.into_iter().enumerate() {
            subnets.push(subnet(Table::new(format!("subnet[{i}]"), item)?)?);
        }
    }
    Ok(Config {
        server,
        redundancy,
        lifetimes,
        options,
        subnets,
    })
}

const SERVER_KEYS: &[&str] = &[
    "interfaces",
    "io",
    "duid",
    "preference",
    "rapid_commit",
    "state_dir",
    "control_socket",
    "metrics_listen",
    "log_level",
    "user",
];

fn server(mut t: Table) -> Result<ServerSection, KeyError> {
    t.only(SERVER_KEYS)?;
    let s = ServerSection {
        interfaces: t
            .list("interfaces")?
            .ok_or_else(|| t.missing("interfaces"))?,
        io: t.opt("io")?.unwrap_or_default(),
        duid: t.opt("duid")?,
        preference: t.opt("preference")?.unwrap_or_default(),
        rapid_commit: t.opt("rapid_commit")?.unwrap_or_default(),
        state_dir: t.opt("state_dir")?.unwrap_or_else(default_state_dir),
        control_socket: t
            .opt("control_socket")?
            .unwrap_or_else(default_control_socket),
        metrics_listen: t.opt("metrics_listen")?,
        log_level: t.opt("log_level")?,
        user: t.opt("user")?,
    };
    Ok(s)
}

fn redundancy(mut t: Table) -> Result<Redundancy, KeyError> {
    t.only(&["model", "allocation_key"])?;
    let r = Redundancy {
        model: t.opt("model")?.unwrap_or_default(),
        allocation_key: t.opt("allocation_key")?,
    };
    Ok(r)
}

fn lifetimes(mut t: Table) -> Result<Lifetimes, KeyError> {
    t.only(&["preferred", "valid", "t1", "t2"])?;
    let l = Lifetimes {
        preferred: t
            .opt("preferred")?
            .unwrap_or(Lifetimes::default().preferred),
        valid: t.opt("valid")?.unwrap_or(Lifetimes::default().valid),
        t1: t.opt("t1")?.unwrap_or(Lifetimes::default().t1),
        t2: t.opt("t2")?.unwrap_or(Lifetimes::default().t2),
    };
    Ok(l)
}

fn options(mut t: Table) -> Result<OptionValues, KeyError> {
    t.only(&["sol_max_rt", "inf_max_rt", "information_refresh_time"])?;
    let d = OptionValues::default();
    Ok(OptionValues {
        sol_max_rt: t.opt("sol_max_rt")?.unwrap_or(d.sol_max_rt),
        inf_max_rt: t.opt("inf_max_rt")?.unwrap_or(d.inf_max_rt),
        information_refresh_time: t
            .opt("information_refresh_time")?
            .unwrap_or(d.information_refresh_time),
    })
}

const SUBNET_KEYS: &[&str] = &[
    "prefix",
    "interface",
    "pools",
    "pd_pools",
    "dns_servers",
    "domain_search",
    "link_prefixes",
    "preferred",
    "valid",
    "t1",
    "t2",
    "sol_max_rt",
    "inf_max_rt",
    "information_refresh_time",
];

fn subnet(mut t: Table) -> Result<SubnetConfig, KeyError> {
    t.only(SUBNET_KEYS)?;
    let mut pd_pools = Vec::new();
    if let Some(v) = t.take_raw("pd_pools") {
        let key = t.key("pd_pools");
        let toml::Value::Array(items) = v else {
            return Err((
                key,
                "must be an array of { prefix, delegated_length } tables".into(),
            ));
        };
        for (i, item) in items.into_iter().enumerate() {
            let mut p = Table::new(format!("{key}[{i}]"), item)?;
            p.only(&["prefix", "delegated_length"])?;
            let pool = PdPoolConfig {
                prefix: p.opt("prefix")?.ok_or_else(|| p.missing("prefix"))?,
                delegated_length: p
                    .opt("delegated_length")?
                    .ok_or_else(|| p.missing("delegated_length"))?,
            };
            pd_pools.push(pool);
        }
    }
    let s = SubnetConfig {
        prefix: t.opt("prefix")?.ok_or_else(|| t.missing("prefix"))?,
        interface: t.opt("interface")?,
        pools: t.list("pools")?.unwrap_or_default(),
        pd_pools,
        dns_servers: t.list("dns_servers")?.unwrap_or_default(),
        domain_search: t.list("domain_search")?.unwrap_or_default(),
        link_prefixes: t.list("link_prefixes")?.unwrap_or_default(),
        preferred: t.opt("preferred")?,
        valid: t.opt("valid")?,
        t1: t.opt("t1")?,
        t2: t.opt("t2")?,
        sol_max_rt: t.opt("sol_max_rt")?,
        inf_max_rt: t.opt("inf_max_rt")?,
        information_refresh_time: t.opt("information_refresh_time")?,
    };
    Ok(s)
}

/// One TOML table being taken apart, with its key path.
struct Table {
    path: String,
    map: toml::Table,
}

impl Table {
    fn new(path: String, value: toml::Value) -> Result<Table, KeyError> {
        match value {
            toml::Value::Table(map) => Ok(Table { path, map }),
            other => Err((path, format!("must be a table, found {}", other.type_str()))),
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn missing(&self, key: &str) -> KeyError {
        (self.key(key), "missing (required)".into())
    }

    fn take_raw(&mut self, key: &str) -> Option<toml::Value> {
        self.map.remove(key)
    }

    /// Take `key` and deserialize it as `T`.
    fn opt<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, KeyError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(v) => value(self.key(key), v).map(Some),
        }
    }

    /// Take `key` as an array, deserializing element by element so that a
    /// bad element is named `key[i]`.
    fn list<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<Vec<T>>, KeyError> {
        let path = self.key(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| value(format!("{path}[{i}]"), v))
                .collect::<Result<Vec<T>, KeyError>>()
                .map(Some),
            Some(other) => Err((
                path,
                format!("must be an array, found {}", other.type_str()),
            )),
        }
    }

    /// A key not in `known` is an error, never silently ignored. Checked
    /// before the values so that a misspelt key is reported as such rather
    /// than as the required key it was meant to be.
    fn only(&self, known: &[&str]) -> Result<(), KeyError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err((
                self.key(unknown),
                format!("unknown key (known keys here: {})", known.join(", ")),
            )),
        }
    }
}

fn value<T: DeserializeOwned>(path: String, v: toml::Value) -> Result<T, KeyError> {
    let shown = v.to_string();
    T::deserialize(v).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.trim_end();
        // serde's built-in messages ("invalid type: ...") already say what was
        // found; our FromStr messages do not repeat the value, so add it.
        let says_what = [
            "invalid type",
            "invalid value",
            "invalid length",
            "unknown variant",
        ];
        if says_what.iter().any(|p| msg.starts_with(p)) || msg.contains(&shown) {
            (path, msg.to_string())
        } else {
            (path, format!("{shown}: {msg}"))
        }
    })
}
