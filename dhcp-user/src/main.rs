//! The `dhcp6d` binary: the command line of CONTRACT.md.
//!
//! Exit status: 0 success; 2 bad usage or bad config (one message naming the
//! file, the key and what is wrong); 1 any other failure, with its cause.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use dhcp6d::config::{AllocationKey, Config, IoMode, LogLevel, Model, DEFAULT_CONTROL_SOCKET};
use dhcp6d::control::{client, protocol, table, LeaseFilter};
use ipnet::Ipv6Net;

#[derive(Parser)]
#[command(
    name = "dhcp6d",
    version,
    about = "A DHCPv6 server for ISP edges (RFC 9915, RFC 6853)"
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace); overrides RUST_LOG and server.log_level.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server in the foreground.
    Serve {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Packet I/O: overrides server.io.
        #[arg(long, value_name = "xdp|socket")]
        io: Option<IoMode>,
    },
    /// Validate a configuration and print what it would serve (exit 0 or 2).
    CheckConfig {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Counters of a running server, as a table or JSON.
    Stats {
        #[command(flatten)]
        control: ControlArgs,
        /// Print the JSON response instead of a table.
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds, with per-second rates.
        #[arg(long, value_name = "SECS")]
        watch: Option<f64>,
    },
    /// List or look up active bindings of a running server.
    Leases {
        #[command(flatten)]
        control: ControlArgs,
        /// Print the JSON response instead of a table.
        #[arg(long)]
        json: bool,
        /// Only this client DUID (hex, ':' separators allowed).
        #[arg(long, value_name = "HEX")]
        duid: Option<String>,
        /// Only the binding holding this address (or a prefix containing it).
        #[arg(long, value_name = "ADDR")]
        address: Option<Ipv6Addr>,
        /// Only bindings inside this prefix.
        #[arg(long, value_name = "PFX")]
        prefix: Option<Ipv6Net>,
        /// Most bindings per page (the server lists at most 10000 per page).
        #[arg(long, value_name = "N", default_value_t = protocol::DEFAULT_LEASE_LIMIT)]
        limit: usize,
        /// Start after this cursor: the `next` of an earlier page.
        #[arg(long, value_name = "CURSOR")]
        after: Option<protocol::LeaseCursor>,
        /// Fetch every page, one request per page, until the last.
        #[arg(long)]
        all: bool,
    },
    /// Check the lease store in server.state_dir (stopped server only) and say what a
    /// repair of damage that start-up refuses would drop; --commit does it.
    Repair {
        /// Configuration file (for server.state_dir).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Repair: keep what replays as a new snapshot, set the damaged files aside.
        #[arg(long)]
        commit: bool,
    },
    /// Write N server configs for one RFC 6853 model.
    Plan {
        /// split-prefix, unique-prefix or identical-prefix.
        #[arg(long, value_name = "MODEL")]
        model: Model,
        /// The link's prefix (split, identical) or the prefix to carve /64s from (unique).
        #[arg(long, value_name = "PFX")]
        prefix: Ipv6Net,
        /// Number of servers.
        #[arg(long, value_name = "N")]
        servers: u16,
        /// Directory to write server1.toml … serverN.toml into (stdout when absent).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Interface name written into the files.
        #[arg(long, value_name = "IF", default_value = "eth0")]
        interface: String,
        /// identical-prefix: the shared key (32 hex digits) instead of one derived from the inputs.
        #[arg(long, value_name = "HEX")]
        allocation_key: Option<AllocationKey>,
    },
}

#[derive(Args)]
struct ControlArgs {
    /// Control socket path [default: /run/dhcp6d/control.sock].
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    control: Option<PathBuf>,
    /// Take the control socket path from this configuration file.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// A failure and its exit status.
enum Failure {
    /// Exit 2: bad usage or bad config.
    Usage(String),
    /// Exit 1: anything else.
    Other(String),
}

/// Also the main of `dhcp6d-faults` (src/bin/dhcp6d-faults.rs).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, io } => serve(&config, io, cli.log_level),
        Command::CheckConfig { config } => check_config(&config),
        Command::Stats {
            control,
            json,
            watch,
        } => {
            init_logging(cli.log_level, None, LogLevel::Warn);
            socket_path(&control).and_then(|p| stats(&p, json, watch))
        }
        Command::Leases {
            control,
            json,
            duid,
            address,
            prefix,
            limit,
            after,
            all,
        } => {
            init_logging(cli.log_level, None, LogLevel::Warn);
            let duid = match duid.map(|d| protocol::parse_duid(&d)).transpose() {
                Ok(d) => d,
                Err(e) => return finish(Err(Failure::Usage(format!("--duid: {e}")))),
            };
            if all && limit == 0 {
                return finish(Err(Failure::Usage(
                    "--all: pages of --limit 0 list nothing; give a limit above 0".into(),
                )));
            }
            let filter = LeaseFilter {
                duid,
                address,
                prefix,
                limit,
                after,
            };
            socket_path(&control).and_then(|p| leases(&p, json, all, filter))
        }
        Command::Repair { config, commit } => {
            init_logging(cli.log_level, None, LogLevel::Warn);
            repair(&config, commit)
        }
        Command::Plan {
            model,
            prefix,
            servers,
            out,
            interface,
            allocation_key,
        } => plan(
            dhcp6d::plan::PlanRequest {
                model,
                prefix,
                servers,
                interface,
                allocation_key,
            },
            out.as_deref(),
        ),
    };
    finish(result)
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("dhcp6d: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("dhcp6d: {m}");
            ExitCode::from(1)
        }
    }
}

/// Logging: `--log-level`, else `RUST_LOG`, else `server.log_level`, else `default`.
fn init_logging(flag: Option<LogLevel>, config: Option<LogLevel>, default: LogLevel) {
    use tracing_subscriber::EnvFilter;
    let filter = match (flag, std::env::var("RUST_LOG")) {
        (Some(l), _) => EnvFilter::new(l.as_str()),
        (None, Ok(env)) if !env.is_empty() => EnvFilter::new(env),
        _ => EnvFilter::new(config.unwrap_or(default).as_str()),
    };
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(libc::STDERR_FILENO) == 1 };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(tty)
        .try_init();
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|e| Failure::Usage(e.to_string()))
}

fn serve(path: &Path, io: Option<IoMode>, log_level: Option<LogLevel>) -> Result<(), Failure> {
    let mut config = load(path)?;
    init_logging(log_level, config.server.log_level, LogLevel::Info);
    if let Some(io) = io {
        config.server.io = io;
    }
    // On the host that serves, what check-config only warns about is fatal.
    if let Some(issue) = config.host_issues().first() {
        return Err(Failure::Usage(format!("{}: {issue}", path.display())));
    }
    dhcp6d::serve::run(config, path).map_err(|e| match e {
        e @ (dhcp6d::serve::ServeError::Config(_) | dhcp6d::serve::ServeError::Core { .. }) => {
            Failure::Usage(e.to_string())
        }
        other => Failure::Other(other.to_string()),
    })
}

fn check_config(path: &Path) -> Result<(), Failure> {
    let config = load(path)?;
    println!("{}: OK", path.display());
    print!("{}", config.summary());
    for issue in config.host_issues() {
        eprintln!(
            "warning: {}: {issue} (`serve` would refuse to start here)",
            path.display()
        );
    }
    Ok(())
}

fn repair(path: &Path, commit: bool) -> Result<(), Failure> {
    let config = load(path)?;
    let dir = &config.server.state_dir;
    // After the drop to server.user, that user owns the directory.
    let user = match &config.server.user {
        Some(name) => match dhcp6d::config::user_ids(name) {
            Some((uid, _)) => Some(uid),
            None => {
                return Err(Failure::Usage(format!(
                    "{}: server.user: user {name:?} does not exist on this host",
                    path.display()
                )))
            }
        },
        None => None,
    };
    let r = dhcp6d::store::StateDir::open(dir, user)
        .and_then(|d| dhcp6d::store::repair_in(&d, commit))
        .map_err(|e| Failure::Other(e.to_string()))?;
    println!("lease store {}:", dir.display());
    for d in &r.damage {
        println!("  damaged: {d}");
        if d.offset.is_some() {
            println!(
                "    a repair drops the {} bytes from there to the end of the file, holding {} records in intact batches",
                d.bytes, d.records
            );
        }
    }
    for s in &r.corrupt_snapshots {
        println!("  snapshot fails its checks: {}", s.display());
    }
    if r.torn_bytes > 0 {
        println!(
            "  torn final write: {} bytes, never acknowledged (start-up cuts them by itself)",
            r.torn_bytes
        );
    }
    println!("  bindings kept: {}", r.bindings);
    if !r.needs_repair() {
        println!("nothing to repair: the server starts on this directory");
    } else if let Some(s) = &r.snapshot {
        for f in &r.set_aside {
            println!("  set aside: {}", f.display());
        }
        println!(
            "repaired: snapshot {:016x} holds the {} bindings kept; the server starts on this directory",
            s.gen, s.bindings
        );
    } else {
        println!("nothing was changed; run again with --commit to drop what is listed above");
    }
    Ok(())
}

fn socket_path(args: &ControlArgs) -> Result<PathBuf, Failure> {
    match (&args.control, &args.config) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(file)) => Ok(load(file)?.server.control_socket),
        (None, None) => Ok(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
    }
}

fn client_failure(e: client::ClientError) -> Failure {
    Failure::Other(e.to_string())
}

fn stats(path: &Path, json: bool, watch: Option<f64>) -> Result<(), Failure> {
    let Some(secs) = watch else {
        let (typed, raw) = client::stats(path).map_err(client_failure)?;
        if json {
            println!("{raw}");
        } else {
            print!("{}", table::stats_table(&typed, None));
        }
        return Ok(());
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(Failure::Usage(format!(
            "--watch: {secs} is not a positive number of seconds"
        )));
    }
    let mut previous: Option<(protocol::StatsSnapshot, Instant)> = None;
    let tty = unsafe_isatty();
    loop {
        let (typed, raw) = client::stats(path).map_err(client_failure)?;
        let now = Instant::now();
        if json {
            println!("{raw}");
        } else {
            if tty {
                // Clear the screen and home the cursor, like watch(1).
                print!("\x1b[2J\x1b[H");
            } else if previous.is_some() {
                println!();
            }
            let prev = previous
                .as_ref()
                .map(|(p, at)| (p, now.duration_since(*at).as_secs_f64()));
            print!("{}", table::stats_table(&typed, prev));
        }
        previous = Some((typed, now));
        std::thread::sleep(Duration::from_secs_f64(secs));
    }
}

fn unsafe_isatty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 }
}

/// One page, or with `all` every page from `filter.after` on: JSON prints
/// one response line per page; the table prints its header once.
fn leases(path: &Path, json: bool, all: bool, mut filter: LeaseFilter) -> Result<(), Failure> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut listed = 0;
    loop {
        let (typed, raw) = client::leases(path, &filter).map_err(client_failure)?;
        let next = match typed
            .next
            .as_deref()
            .map(str::parse::<protocol::LeaseCursor>)
        {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => return Err(Failure::Other(format!("unexpected response: next: {e}"))),
            None => None,
        };
        if json {
            println!("{raw}");
        } else if !all {
            print!("{}", table::leases_table(&typed, now));
        } else {
            if listed == 0 {
                print!("{}", table::leases_header());
            }
            print!("{}", table::leases_rows(&typed, now));
        }
        listed += typed.leases.len();
        match next {
            Some(c) if all => filter.after = Some(c),
            _ => break,
        }
    }
    if all && !json {
        println!("{listed} bindings");
    }
    Ok(())
}

fn plan(req: dhcp6d::plan::PlanRequest, out: Option<&Path>) -> Result<(), Failure> {
    let files = dhcp6d::plan::plan(&req).map_err(|e| Failure::Usage(e.to_string()))?;
    match out {
        None => {
            for (i, f) in files.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("# ===== {} =====", f.file_name);
                print!("{}", f.text);
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Other(format!("{}: {e}", dir.display())))?;
            for f in &files {
                let path = dir.join(&f.file_name);
                std::fs::write(&path, &f.text)
                    .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
