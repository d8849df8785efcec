//! The real `dhcp6d` binary: located (built if needed), configured from
//! `dhcp6d plan`, started in a namespace, and read through its control
//! socket and CLI (`stats --json`, `leases --json`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::io;
use crate::netns::Netns;
use crate::process::{run, Proc};
use crate::{wait, Error, Result};

/// How long a server may take from exec to answering its control socket.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The `dhcp6d` executable.
///
/// `DHCP6D_BIN` overrides. Otherwise `cargo build -p dhcp-user --bin dhcp6d`
/// runs once per process (a no-op when up to date) and its JSON messages say
/// where the executable is: this finds the right target dir and profile
/// whatever `CARGO_TARGET_DIR` or `--release` the caller used, and never runs
/// a stale binary. (`CARGO_BIN_EXE_dhcp6d` only exists inside dhcp-user's own tests.)
pub fn binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| locate().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Prerequisite)
}

/// The `dhcp6d-faults` executable: `dhcp6d` with the test fault points of
/// `dhcp6d::fault` (`DHCP6D_TEST_PANIC`), built like [`binary`] with the
/// `testing` feature. Its own name and artifact, so building it never
/// replaces the `dhcp6d` other tests run. `DHCP6D_BIN` does not apply.
pub fn fault_binary() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        build("dhcp6d-faults", &["--features", "testing"]).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Error::Prerequisite)
}

fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DHCP6D_BIN") {
        return Ok(PathBuf::from(p));
    }
    build("dhcp6d", &[])
}

/// `cargo build --bin BIN EXTRA...` of dhcp-user; where the executable is.
fn build(bin: &str, extra: &[&str]) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dhcp-user/Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--bin", bin, "--message-format=json"])
        .args(extra)
        .arg("--manifest-path")
        .arg(&manifest);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let what = format!("{cargo} build --bin {bin}");
    let out = cmd.output().map_err(|source| Error::Spawn {
        cmd: what.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: what,
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"]["name"] == bin)
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| Error::Parse {
            what: "cargo build output".into(),
            detail: format!("no executable for {bin}"),
        })
}

/// Runs `dhcp6d ARGS...` to completion; its stdout.
pub fn cli(args: &[&str]) -> Result<String> {
    let bin = binary()?.display().to_string();
    let mut argv = vec![bin.as_str()];
    argv.extend_from_slice(args);
    run(&argv)
}

/// The packet I/O a test server uses: `DHCP6D_TEST_IO` (`socket` or `xdp`), default `socket`.
pub fn test_io() -> String {
    std::env::var("DHCP6D_TEST_IO").unwrap_or_else(|_| "socket".into())
}

/// One server's configuration file, edited as TOML.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The whole file.
    pub table: toml::Table,
}

impl ServerConfig {
    /// Runs `dhcp6d plan --model MODEL --prefix PREFIX --servers N --out DIR`
    /// and reads the configs it wrote, in file-name order (server 1 first).
    pub fn plan(
        model: &str,
        prefix: &str,
        servers: usize,
        dir: &Path,
    ) -> Result<Vec<ServerConfig>> {
        let out = dir.join(format!("plan-{model}"));
        std::fs::create_dir_all(&out).map_err(io(format!("mkdir {}", out.display())))?;
        let n = servers.to_string();
        let out_s = out.display().to_string();
        cli(&[
            "plan",
            "--model",
            model,
            "--prefix",
            prefix,
            "--servers",
            &n,
            "--out",
            &out_s,
        ])?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
            .map_err(io(format!("read {}", out.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        if files.len() != servers {
            return Err(Error::Parse {
                what: format!("dhcp6d plan output in {}", out.display()),
                detail: format!("expected {servers} .toml files, found {files:?}"),
            });
        }
        files
            .iter()
            .map(|f| {
                let text =
                    std::fs::read_to_string(f).map_err(io(format!("read {}", f.display())))?;
                ServerConfig::parse(&text, &f.display().to_string())
            })
            .collect()
    }

    /// Parses a config file's text.
    pub fn parse(text: &str, what: &str) -> Result<ServerConfig> {
        let table = text.parse::<toml::Table>().map_err(|e| Error::Parse {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(ServerConfig { table })
    }

    fn section(&mut self, name: &str) -> &mut toml::Table {
        self.table
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("config sections are tables")
    }

    /// Serves direct clients on `ifname`: `server.interfaces` and every subnet's `interface`.
    pub fn direct_on(&mut self, ifname: &str) -> &mut Self {
        self.section("server")
            .insert("interfaces".into(), toml::Value::Array(vec![ifname.into()]));
        for s in self.subnets_mut() {
            s.insert("interface".into(), ifname.into());
        }
        self
    }

    /// Sets `server.interfaces`.
    pub fn interfaces(&mut self, names: &[&str]) -> &mut Self {
        let list = names.iter().map(|n| toml::Value::from(*n)).collect();
        self.section("server")
            .insert("interfaces".into(), toml::Value::Array(list));
        self
    }

    /// Serves relayed clients arriving on `ifname`: subnets are selected by
    /// link-address, so none is bound to an interface.
    pub fn relayed_on(&mut self, ifname: &str) -> &mut Self {
        self.section("server")
            .insert("interfaces".into(), toml::Value::Array(vec![ifname.into()]));
        for s in self.subnets_mut() {
            s.remove("interface");
        }
        self
    }

    /// Sets `[lifetimes]` for every subnet (subnet overrides removed).
    pub fn lifetimes(&mut self, preferred: u32, valid: u32, t1: u32, t2: u32) -> &mut Self {
        let mut l = toml::Table::new();
        for (k, v) in [
            ("preferred", preferred),
            ("valid", valid),
            ("t1", t1),
            ("t2", t2),
        ] {
            l.insert(k.into(), i64::from(v).into());
        }
        self.table.insert("lifetimes".into(), toml::Value::Table(l));
        for s in self.subnets_mut() {
            for k in ["preferred", "valid", "t1", "t2"] {
                s.remove(k);
            }
        }
        self
    }

    /// Sets `server.preference`.
    pub fn preference(&mut self, value: u8) -> &mut Self {
        self.section("server")
            .insert("preference".into(), i64::from(value).into());
        self
    }

    /// `server.preference` (0 when absent, the contract's default).
    pub fn get_preference(&self) -> u8 {
        self.table
            .get("server")
            .and_then(|s| s.get("preference"))
            .and_then(toml::Value::as_integer)
            .and_then(|p| u8::try_from(p).ok())
            .unwrap_or(0)
    }

    /// The `[[subnet]]` tables.
    pub fn subnets_mut(&mut self) -> impl Iterator<Item = &mut toml::Table> {
        self.table
            .get_mut("subnet")
            .and_then(toml::Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table_mut)
    }

    /// Appends a `[[subnet]]`.
    pub fn add_subnet(&mut self, subnet: toml::Table) -> &mut Self {
        let arr = self
            .table
            .entry("subnet")
            .or_insert_with(|| toml::Value::Array(Vec::new()));
        if let Some(a) = arr.as_array_mut() {
            a.push(toml::Value::Table(subnet));
        }
        self
    }

    /// Every subnet's `prefix`.
    pub fn subnet_prefixes(&self) -> Vec<String> {
        self.strings_in_subnets("prefix")
    }

    /// Every address pool of every subnet.
    pub fn pools(&self) -> Vec<String> {
        self.strings_in_subnets("pools")
    }

    /// Every PD pool prefix of every subnet.
    pub fn pd_pools(&self) -> Vec<(String, u8)> {
        let mut out = Vec::new();
        for s in self.subnets() {
            for p in s
                .get("pd_pools")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
            {
                let prefix = p.get("prefix").and_then(toml::Value::as_str);
                let len = p.get("delegated_length").and_then(toml::Value::as_integer);
                if let (Some(prefix), Some(len)) = (prefix, len) {
                    out.push((prefix.to_owned(), u8::try_from(len).unwrap_or(0)));
                }
            }
        }
        out
    }

    fn subnets(&self) -> impl Iterator<Item = &toml::Table> {
        self.table
            .get("subnet")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
    }

    fn strings_in_subnets(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.subnets() {
            match s.get(key) {
                Some(toml::Value::String(v)) => out.push(v.clone()),
                Some(toml::Value::Array(vs)) => {
                    out.extend(vs.iter().filter_map(|v| v.as_str().map(str::to_owned)))
                }
                _ => {}
            }
        }
        out
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        toml::to_string(&self.table).unwrap_or_default()
    }
}

/// A running `dhcp6d serve`.
#[derive(Debug)]
pub struct Dhcp6d {
    proc: Option<Proc>,
    name: String,
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    control: PathBuf,
    io: String,
    starts: u32,
}

impl Dhcp6d {
    /// Writes `config` (with `state_dir` and `control_socket` moved into
    /// `dir`), starts `dhcp6d serve -c FILE --io IO` in `ns` and returns once
    /// the control socket answers a stats request.
    pub fn start(
        ns: &Netns,
        config: &ServerConfig,
        dir: &Path,
        name: &str,
        io_mode: &str,
    ) -> Result<Dhcp6d> {
        std::fs::create_dir_all(dir).map_err(io(format!("mkdir {}", dir.display())))?;
        let mut config = config.clone();
        let control = dir.join("control.sock");
        let state = dir.join("state");
        {
            let server = config.section("server");
            server.insert("state_dir".into(), state.display().to_string().into());
            server.insert(
                "control_socket".into(),
                control.display().to_string().into(),
            );
        }
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config.to_text()).map_err(io(format!("write {}", path.display())))?;
        let mut d = Dhcp6d {
            proc: None,
            name: name.to_owned(),
            ns: ns.name().to_owned(),
            dir: dir.to_owned(),
            config: path,
            control,
            io: io_mode.to_owned(),
            starts: 0,
        };
        d.spawn()?;
        Ok(d)
    }

    fn spawn(&mut self) -> Result<()> {
        let argv = vec![
            binary()?.display().to_string(),
            "serve".into(),
            "-c".into(),
            self.config.display().to_string(),
            "--io".into(),
            self.io.clone(),
        ];
        self.starts += 1;
        let log = self.dir.join(format!("{}-{}.log", self.name, self.starts));
        let mut proc = Proc::spawn(
            &self.name,
            Some(&self.ns),
            &argv,
            &[("RUST_LOG", "info")],
            &log,
        )?;
        let control = self.control.clone();
        wait::until(
            &format!("{} to answer on {}", self.name, control.display()),
            READY_TIMEOUT,
            || {
                proc.check_running()?;
                Ok(control_request(&control, r#"{"command":"stats"}"#)
                    .ok()
                    .filter(|v| v.get("uptime_s").is_some()))
            },
        )?;
        // The server must run the packet I/O the test asked for: a silent
        // fallback (xdp -> socket) would make an XDP run test the wrong path.
        let stats = control_request(&control, r#"{"command":"stats"}"#)?;
        if stats["io"].as_str() != Some(self.io.as_str()) {
            return Err(Error::Parse {
                what: format!("{} stats.io", self.name),
                detail: format!("asked for --io {}, server reports {}", self.io, stats["io"]),
            });
        }
        self.proc = Some(proc);
        Ok(())
    }

    /// The server's name in this test.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the control socket.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// `dhcp6d stats --control PATH --json`.
    pub fn stats(&self) -> Result<serde_json::Value> {
        let c = self.control.display().to_string();
        parse_json(
            "dhcp6d stats --json",
            &cli(&["stats", "--control", &c, "--json"])?,
        )
    }

    /// `dhcp6d stats --control PATH` (the human table).
    pub fn stats_table(&self) -> Result<String> {
        let c = self.control.display().to_string();
        cli(&["stats", "--control", &c])
    }

    /// `dhcp6d leases --control PATH --json [EXTRA...]`.
    pub fn leases(&self, extra: &[&str]) -> Result<serde_json::Value> {
        let c = self.control.display().to_string();
        let mut args = vec!["leases", "--control", c.as_str(), "--json"];
        args.extend_from_slice(extra);
        parse_json("dhcp6d leases --json", &cli(&args)?)
    }

    /// The server DUID it reports in stats, as plain lowercase hex.
    pub fn duid(&self) -> Result<String> {
        let s = self.stats()?;
        s["server_duid"]
            .as_str()
            .map(crate::wire::duid_hex)
            .ok_or_else(|| Error::Parse {
                what: "stats.server_duid".into(),
                detail: s.to_string(),
            })
    }

    /// A crash (SIGKILL); returns the moment it was sent.
    pub fn kill(&mut self) -> Result<Instant> {
        let at = Instant::now();
        if let Some(mut p) = self.proc.take() {
            p.kill()?;
        }
        Ok(at)
    }

    /// A clean shutdown (SIGTERM); its exit status.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        match self.proc.take() {
            Some(mut p) => p.stop().map(Some),
            None => Ok(None),
        }
    }

    /// Starts it again with the same config and state directory.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// The current run's log.
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }
}

/// One request/response on a control socket.
pub fn control_request(path: &Path, request: &str) -> Result<serde_json::Value> {
    let what = format!("control socket {}", path.display());
    let mut stream = UnixStream::connect(path).map_err(io(what.clone()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io(what.clone()))?;
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(io(what.clone()))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(io(what.clone()))?;
    parse_json(&what, &line)
}

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text.trim()).map_err(|e| Error::Parse {
        what: what.to_owned(),
        detail: format!("{e}: {text:?}"),
    })
}
