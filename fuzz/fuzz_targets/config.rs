//! Any UTF-8 text as a config file: `Config::from_toml` (the one way a
//! configuration is read, by `serve`, `check-config` and tests alike) returns
//! a config or an error naming the file and, for a bad key, its path; it never
//! panics. An accepted config can be summarised and turned into settings.
#![no_main]

use std::path::Path;

use dhcp6d::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, Path::new("fuzz.toml")) {
        Ok(config) => {
            let _ = config.summary();
            let settings = config.settings();
            assert_eq!(settings.subnets.len(), config.subnets.len());
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml: "), "{shown}");
            if let Some(key) = e.key() {
                assert!(!key.is_empty(), "an invalid value names its key: {shown}");
            }
        }
    }
});
