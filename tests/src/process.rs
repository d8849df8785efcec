//! Background processes started by the harness (servers, clients, relays,
//! captures), stopped by their own pid when the guard drops.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::error::io;
use crate::{wait, Error, Result};

/// How long a process gets to exit after SIGTERM before it is SIGKILLed.
const GRACE: Duration = Duration::from_secs(5);

/// A running program whose stdout and stderr go to a log file.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `argv` (inside namespace `ns` when given, via `ip netns exec`,
    /// which execs the program so the pid we hold is the program's own).
    pub fn spawn(
        name: &str,
        ns: Option<&str>,
        argv: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Proc> {
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        let out = File::create(log).map_err(io(format!("create {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io(format!("dup {}", log.display())))?;
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            cmd: argv.join(" "),
            source,
        })?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            status: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Ok(())` while running; [`Error::Exited`] with the log once it has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(io(format!("wait {}", self.name)))?;
        }
        match self.status {
            None => Ok(()),
            Some(status) => Err(Error::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log: tail(&self.log(), 40),
            }),
        }
    }

    /// Sends `signal` and waits for exit (SIGKILL after a grace period).
    pub fn stop_with(&mut self, signal: libc::c_int) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        self.signal(signal);
        let name = format!("{} to exit", self.name);
        let waited = wait::until(&name, GRACE, || {
            self.child
                .try_wait()
                .map_err(io(format!("wait {}", self.name)))
        });
        let status = match waited {
            Ok(status) => status,
            Err(_) => {
                self.signal(libc::SIGKILL);
                self.child
                    .wait()
                    .map_err(io(format!("wait {}", self.name)))?
            }
        };
        self.status = Some(status);
        Ok(status)
    }

    /// Graceful stop: SIGTERM.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_with(libc::SIGTERM)
    }

    /// A crash: SIGKILL, no chance to clean up.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.stop_with(libc::SIGKILL)
    }

    fn signal(&self, signal: libc::c_int) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) on the pid of our own un-reaped child: it cannot have
        // been recycled for another process while we have not waited for it.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command to completion; its stdout on success, [`Error::Command`] otherwise.
pub fn run(argv: &[&str]) -> Result<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            cmd: argv.join(" "),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let output = if stderr.trim().is_empty() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            stderr.into_owned()
        };
        return Err(Error::Command {
            cmd: argv.join(" "),
            status: out.status.to_string(),
            output,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails with [`Error::Prerequisite`] unless `program` is on PATH (or `/usr/sbin`, `/sbin`).
pub fn require(program: &str) -> Result<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file());
    found.ok_or_else(|| {
        Error::Prerequisite(format!(
            "{program} is not installed (cargo xtask setup installs it)"
        ))
    })
}

/// Fails with [`Error::Prerequisite`] unless we are root (namespaces need it).
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Prerequisite(
            "namespace tests need root (they create network namespaces)".into(),
        ));
    }
    Ok(())
}
