//! A directory removed on drop. (The `tempfile` crate is not on the team's
//! allowed list; this is the few lines of it the harness needs.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::io;
use crate::Result;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, deleted with its contents on drop.
/// Set `DHCP6D_TESTS_KEEP=1` to keep it for post-mortem (logs, captures, leases).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/dhcp6d-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Result<TempDir> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("dhcp6d-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(io(format!("mkdir {}", path.display())))?;
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created if needed.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p).map_err(io(format!("mkdir {}", p.display())))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("DHCP6D_TESTS_KEEP").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
