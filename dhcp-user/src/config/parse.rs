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
    let reason = plain_words(message);
    // serde's own messages ("invalid type: ...") already say what was found;
    // our FromStr messages may not repeat the value, so add it.
    let says_what = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "must be",
    ];
    match value_at(root, path).map(toml::Value::to_string) {
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
                key = join(&key, name);
            }
            Segment::Unknown => key = join(&key, "?"),
        }
    }
    key
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
