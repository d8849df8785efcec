//! From TOML text to a [`Config`], with every error naming its key path.
//!
//! The serde derives of `mod.rs` (all `deny_unknown_fields`) are the only
//! description of the file's shape: there is no second list of keys here.
//! `serde_path_to_error` records where deserializing stopped
//! (`subnet[2].pd_pools[0].delegated_length`); this module turns serde's
//! message into the reason an operator reads. TOML is read in file order, so
//! the first mistake in the file is the one reported.

use std::path::Path;

use serde_path_to_error::Segment;

use super::{Config, ConfigError};

/// An error before the file name is attached: `(key path, reason)`.
type KeyError = (String, String);

pub(super) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    // Parsed once as a plain tree first: a syntax error is told apart from a
    // bad value, and a bad value can be shown as it was written.
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            file: file.to_path_buf(),
            message: format!("not valid TOML: {}", e.to_string().trim_end()),
        })?;
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let (key, reason) = explain(&root, e.path(), e.inner().message());
        ConfigError::Invalid {
            file: file.to_path_buf(),
            key,
            reason,
        }
    })
}

/// The key path and the reason for serde's error `message` at `path`.
fn explain(root: &toml::Table, path: &serde_path_to_error::Path, message: &str) -> KeyError {
    let key = key_path(path);
    let message = message.trim_end();
    // `deny_unknown_fields`: "unknown field `x`, expected one of `a`, `b`";
    // the path already ends in `x`.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let known: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        return (
            key,
            format!("unknown key (known keys here: {})", known.join(", ")),
        );
    }
    // "missing field `x`", reported by the table that lacks it.
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let reason = if key.is_empty() && name == "server" {
            "missing (the [server] table is required)"
        } else {
            "missing (required)"
        };
        return (join(&key, name), reason.into());
    }
    let shown = value_at(root, path).map(toml::Value::to_string);
    let reason = match (message, &shown) {
        // An enum (`io`, `log_level`, `redundancy.model`) given a number or a list.
        ("wanted string or table", Some(shown)) => format!("must be a string, found {shown}"),
        _ => plain_words(message),
    };
    // serde's own messages ("invalid type: ...") already say what was found;
    // our FromStr messages may not repeat the value, so add it.
    let says_what = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "must be",
    ];
    match shown {
        Some(shown)
            if !says_what.iter().any(|p| reason.starts_with(p)) && !reason.contains(&shown) =>
        {
            (key, format!("{shown}: {reason}"))
        }
        _ => (key, reason),
    }
}

/// serde names Rust types where the operator wrote TOML: say it in TOML's words.
fn plain_words(message: &str) -> String {
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.rsplit_once(", expected "))
    {
        if expected.starts_with("struct ") {
            return format!("must be a table, found {found}");
        }
        if expected == "a sequence" {
            return format!("must be an array, found {found}");
        }
    }
    for (rust, toml) in [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
    ] {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{toml}");
        }
    }
    message.to_string()
}

/// `subnet[0].pools[1]`; empty for the whole file.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                key = join(&key, &toml_key(name));
            }
            Segment::Unknown => key = join(&key, "?"),
        }
    }
    key
}

/// A key as TOML writes it: bare when it can be, quoted otherwise (`""`, `"a b"`).
fn toml_key(name: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.is_empty() && name.chars().all(bare) {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The value written at `path`, when the path leads to one.
fn value_at<'a>(
    root: &'a toml::Table,
    path: &serde_path_to_error::Path,
) -> Option<&'a toml::Value> {
    let mut segments = path.iter();
    let first = match segments.next()? {
        Segment::Map { key } => root.get(key)?,
        _ => return None,
    };
    segments.try_fold(first, |v, segment| match segment {
        Segment::Map { key } => v.get(key.as_str()),
        Segment::Seq { index } => v.get(*index),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const SERVER: &str = "[server]\ninterfaces = [\"lo\"]\n";

    /// The `key: reason` part of the error for `text`.
    fn error(text: &str) -> String {
        let e = Config::from_toml(text, Path::new("f.toml")).unwrap_err();
        let shown = e.to_string();
        let rest = shown.strip_prefix("f.toml: ").expect("names the file");
        assert_eq!(Some(rest.split(": ").next().unwrap()), e.key(), "{shown}");
        rest.to_string()
    }

    #[test]
    fn numbers_out_of_range_or_of_the_wrong_type() {
        assert_eq!(
            error(&format!("{SERVER}preference = 300\n")),
            "server.preference: invalid value: integer `300`, expected an integer from 0 to 255"
        );
        assert_eq!(
            error(&format!("{SERVER}preference = \"high\"\n")),
            "server.preference: invalid type: string \"high\", expected an integer from 0 to 255"
        );
        assert_eq!(
            error(&format!("{SERVER}[lifetimes]\nt1 = 1.5\n")),
            "lifetimes.t1: invalid type: floating point `1.5`, expected an integer from 0 to \
             4294967295"
        );
        assert_eq!(
            error(&format!(
                "{SERVER}[[subnet]]\nprefix = \"2001:db8::/64\"\n\
                 pd_pools = [ {{ prefix = \"2001:db8:100::/40\", delegated_length = 256 }} ]\n"
            )),
            "subnet[0].pd_pools[0].delegated_length: invalid value: integer `256`, expected an \
             integer from 0 to 255"
        );
        assert_eq!(
            error(&format!("{SERVER}rapid_commit = \"yes\"\n")),
            "server.rapid_commit: invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn names_and_strings_say_what_was_written() {
        assert_eq!(
            error(&format!("{SERVER}io = \"dpdk\"\n")),
            "server.io: unknown variant `dpdk`, expected `xdp` or `socket`"
        );
        assert_eq!(
            error(&format!("{SERVER}log_level = 3\n")),
            "server.log_level: must be a string, found 3"
        );
        // A FromStr message that does not repeat the value gets it in front,
        // as written in the file (a literal string shown as a basic one).
        assert_eq!(
            error(&format!("{SERVER}metrics_listen = 'nope'\n")),
            "server.metrics_listen: \"nope\": invalid socket address syntax"
        );
        assert_eq!(
            error(&format!(
                "{SERVER}[redundancy]\nallocation_key = \"0011\"\n"
            )),
            "redundancy.allocation_key: \"0011\" must be 16 bytes (32 hex digits), got 2 bytes"
        );
        assert_eq!(
            error(&format!(
                "{SERVER}[[subnet]]\nprefix = \"2001:db8::/64\"\n\
                 pools = [\"2001:db8::/65\", \"2001:db8::9-2001:db8::1\"]\n"
            )),
            "subnet[0].pools[1]: \"2001:db8::9-2001:db8::1\": the first address is after the last"
        );
    }

    #[test]
    fn tables_and_arrays_of_the_wrong_shape() {
        assert_eq!(
            error("server = 5\n"),
            "server: must be a table, found integer `5`"
        );
        assert_eq!(
            error(&format!(
                "{SERVER}[[subnet]]\nprefix = \"2001:db8::/64\"\npools = \"2001:db8::/65\"\n"
            )),
            "subnet[0].pools: must be an array, found string \"2001:db8::/65\""
        );
    }

    #[test]
    fn missing_and_unknown_keys() {
        assert_eq!(
            error(""),
            "server: missing (the [server] table is required)"
        );
        assert_eq!(error("[server]\n"), "server.interfaces: missing (required)");
        assert_eq!(
            error(&format!("{SERVER}[[subnet]]\npools = []\n")),
            "subnet[0].prefix: missing (required)"
        );
        assert_eq!(
            error(&format!("{SERVER}[extra]\n")),
            "extra: unknown key (known keys here: server, redundancy, lifetimes, options, limits, subnet)"
        );
        assert_eq!(
            error(&format!("{SERVER}[lifetimes]\nt9 = 1\n")),
            "lifetimes.t9: unknown key (known keys here: preferred, valid, t1, t2)"
        );
        // A misspelt required key is reported as unknown, not as missing.
        assert_eq!(
            error("[server]\ninterface = [\"lo\"]\n"),
            "server.interface: unknown key (known keys here: interfaces, io, duid, preference, \
             rapid_commit, rebind_creates_bindings, state_dir, control_socket, metrics_listen, log_level, user)"
        );
    }

    /// A key that TOML had to quote is shown quoted, never as an empty path.
    #[test]
    fn quoted_keys_stay_quoted() {
        assert_eq!(
            error("[\"\"]\nx = 1\n"),
            "\"\": unknown key (known keys here: server, redundancy, lifetimes, options, limits, subnet)"
        );
        assert_eq!(
            error(&format!("{SERVER}\"sol max\" = 1\n")),
            "server.\"sol max\": unknown key (known keys here: interfaces, io, duid, preference, \
             rapid_commit, rebind_creates_bindings, state_dir, control_socket, metrics_listen, log_level, user)"
        );
    }

    /// The first mistake in the file is the one reported, whatever the tables.
    #[test]
    fn first_mistake_in_file_order() {
        assert_eq!(
            error(&format!(
                "[options]\nsol_max_rt = \"x\"\n{SERVER}preference = 300\n"
            )),
            "options.sol_max_rt: invalid type: string \"x\", expected an integer from 0 to \
             4294967295"
        );
        assert_eq!(
            error(&format!("{SERVER}[lifetimes]\nt1 = \"x\"\nt9 = 1\n")),
            "lifetimes.t1: invalid type: string \"x\", expected an integer from 0 to 4294967295"
        );
    }

    /// A well-formed file still goes through the cross-key checks.
    #[test]
    fn parsed_then_validated() {
        assert_eq!(
            error("[server]\ninterfaces = []\n"),
            "server.interfaces: must list at least one interface"
        );
    }
}
