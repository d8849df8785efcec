//! The `serve` command's assembly: state directory, journal, protocol core,
//! data plane, control socket, signals, privileges.
//!
//! Order matters: the signals are blocked before any thread exists; the
//! journal takes the state-dir lock before anything is written there; the
//! core is filled from the recovered leases before the first packet; the
//! control socket opens once there is something to show; privileges drop
//! after every socket is open. Shutdown runs the other way: data plane first
//! (workers flush replies waiting for the journal, then XDP is detached),
//! then the journal (every acknowledged record on disk), then the control socket.
//!
//! Threads that die: data-plane workers are restarted where they run
//! (`dataplane/supervise.rs`); the journal writer and housekeeping are not,
//! and their death stops the process the same way with exit status 1
//! ([`deaths`]).

mod deaths;
mod housekeeping;
mod plane;
pub mod privilege;
pub mod reload;
pub mod signals;
mod view;

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::{interface_index, user_ids, Config};
use crate::control::ControlHandle;
use crate::protocol::server::{CoreError, Policy, Server};
use crate::store::{self, Journal, JournalOptions, StateDir, StoreError};
use deaths::Deaths;

/// Why `serve` stopped with a failure. Each keeps what caused it
/// ([`std::error::Error::source`]); the message is what the operator reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration cannot be served on this host (exit status 2).
    #[error("{0}")]
    Config(String),
    /// The core refused the configuration (exit status 2).
    #[error("{file}: {source}", file = file.display())]
    Core {
        /// The configuration file.
        file: std::path::PathBuf,
        /// Why the core cannot be built from it.
        #[source]
        source: CoreError,
    },
    /// The lease store could not be opened (exit status 1).
    #[error("{}", store_message(.0))]
    Store(#[source] StoreError),
    /// A thread that is not restarted in place died; everything else was
    /// stopped cleanly (exit status 1).
    #[error(
        "the {thread} thread died ({cause}); stopped so that the service manager restarts dhcp6d"
    )]
    ThreadDied {
        /// Which thread.
        thread: &'static str,
        /// How it died.
        cause: String,
    },
    /// Something else needed at start-up failed (exit status 1).
    #[error("{what}: {source}")]
    Startup {
        /// What was being set up.
        what: &'static str,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn store_message(e: &StoreError) -> String {
    match e {
        // Says itself which state directory and which process holds it.
        StoreError::Locked { .. } => e.to_string(),
        other => format!("lease store: {other}"),
    }
}

fn startup<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> ServeError {
    move |e| ServeError::Startup {
        what,
        source: Box::new(e),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Extremely unlikely (getrandom never returns short for <= 256 bytes);
        // mixing the time and pid still gives a unique DUID per host.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 64)).to_be_bytes());
    }
    b
}

/// Run the server until SIGTERM or SIGINT. `file` is re-read on SIGHUP.
pub fn run(config: Config, file: &Path) -> Result<(), ServeError> {
    signals::block().map_err(startup("blocking signals"))?;
    let deaths = Arc::new(Deaths::for_this_thread());
    let started = Instant::now();
    let io = config.server.io;
    tracing::info!(
        config = %file.display(),
        io = io.as_str(),
        model = config.redundancy.model.as_str(),
        "dhcp6d starting"
    );
    if let Some(point) = crate::fault::armed() {
        tracing::warn!(
            "test fault armed: {}={} (a testing build): the first thread to get there panics",
            crate::fault::ENV,
            point.name()
        );
    }

    // `server.user` owns the state directory after the first drop, so its
    // uid is one the directory's owner check must accept.
    let user = match &config.server.user {
        Some(user) => match user_ids(user) {
            Some(ids) => Some((user, ids)),
            None => {
                return Err(ServeError::Config(format!(
                    "{}: server.user: user {user:?} does not exist on this host",
                    file.display()
                )))
            }
        },
        None => None,
    };
    // Before the first thread (journal writer, workers, control), which
    // inherit no_new_privs and the cut bounding set.
    if user.is_some() {
        privilege::prepare(io).map_err(startup("limiting capabilities"))?;
    }
    // The journal takes the state-dir lock: a second server stops here.
    let state_dir = StateDir::open(&config.server.state_dir, user.map(|(_, (uid, _))| uid))
        .map_err(ServeError::Store)?;
    let on_writer_death = deaths.clone();
    let options = JournalOptions {
        on_writer_death: Some(Arc::new(move |cause: &str| {
            on_writer_death.report("journal writer", cause)
        })),
        ..JournalOptions::default()
    };
    let (journal, mut recovered) =
        Journal::open_in(state_dir, options).map_err(ServeError::Store)?;
    let duid = match &config.server.duid {
        Some(d) => d.0.clone(),
        None => store::load_or_create_duid(journal.state_dir(), || store::duid_uuid(random16()))
            .map_err(startup("server DUID"))?,
    };
    let interfaces: Vec<(String, u32)> = config
        .server
        .interfaces
        .iter()
        .map(|name| {
            interface_index(name)
                .map(|i| (name.clone(), i))
                .ok_or_else(|| {
                    ServeError::Config(format!(
                        "{}: server.interfaces: interface {name:?} does not exist on this host",
                        file.display()
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let server = Server::with_index_key(&config.settings(), duid.clone(), &interfaces, random16())
        .map_err(|source| ServeError::Core {
            file: file.to_path_buf(),
            source,
        })?;
    recovered.retain_live(unix_now());
    let mut restored = 0u64;
    for rec in recovered.iter() {
        server.apply(&rec);
        restored += 1;
    }
    tracing::info!(bindings = restored, "leases restored into the core");

    let handler = Arc::new(server);
    let journal_handle = Arc::new(journal.handle());
    let dataplane = plane::Plane::start(
        &config.server.interfaces,
        io,
        handler.clone(),
        journal_handle.clone(),
    )
    .map_err(startup("data plane"))?;
    tracing::info!(
        workers = dataplane.workers(),
        io = io.as_str(),
        interfaces = ?config.server.interfaces,
        "data plane started"
    );
    let dataplane = Arc::new(dataplane);

    let view = Arc::new(view::ServeView {
        started,
        io,
        server_duid: hex::encode(&duid),
        preference: AtomicU8::new(config.server.preference),
        model: Mutex::new(config.redundancy.model),
        handler: handler.clone(),
        counters: dataplane.worker_counters(),
        journal: journal.handle(),
        dataplane: dataplane.clone(),
        run_id: crate::control::leases::new_run_id(),
    });
    let control = ControlHandle::start(
        &config.server.control_socket,
        config.server.metrics_listen,
        view.clone(),
    )
    .map_err(startup("control socket"))?;
    tracing::info!(
        socket = %config.server.control_socket.display(),
        metrics = ?control.metrics_addr,
        "control socket listening"
    );

    if let Some((user, (uid, gid))) = user {
        privilege::drop_to(user, uid, gid, io, journal.state_dir())
            .map_err(startup("dropping privileges"))?;
        tracing::info!(
            user = user.as_str(),
            kept = ?privilege::kept(io),
            "privileges dropped"
        );
    }

    let refresh = {
        let dp = dataplane.clone();
        Box::new(move || dp.refresh_local())
    };
    let keeper = housekeeping::start(handler.clone(), journal.handle(), deaths.clone(), refresh)
        .map_err(startup("housekeeping thread"))?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "dhcp6d ready"
    );

    let mut config = config;
    loop {
        match signals::wait() {
            Ok(signals::Signal::Stop) => break,
            Ok(signals::Signal::Reload) => {
                dataplane.refresh_local();
                if let Some(new) = reload(&config, file, &duid, &interfaces, &handler) {
                    view.preference
                        .store(new.server.preference, Ordering::Relaxed);
                    if let Ok(mut m) = view.model.lock() {
                        *m = new.redundancy.model;
                    }
                    config = new;
                }
            }
            Ok(signals::Signal::ThreadDied) => {
                if deaths.first().is_some() {
                    break;
                }
                tracing::warn!("SIGUSR1 ignored: dhcp6d uses it internally");
            }
            Err(e) => {
                tracing::error!("sigwait: {e}; stopping");
                break;
            }
        }
    }

    let death = deaths.first().cloned();
    match &death {
        None => tracing::info!("dhcp6d stopping"),
        Some(d) => tracing::error!(thread = d.thread, "dhcp6d stopping: a thread died"),
    }
    keeper.stop();
    // Workers first: they flush replies waiting for the journal; then XDP detaches.
    drop(view);
    control.stop();
    match Arc::try_unwrap(dataplane) {
        Ok(dp) => dp.stop(),
        Err(still_shared) => drop(still_shared),
    }
    tracing::info!("data plane stopped");
    let stats = journal.handle().stats();
    journal.shutdown();
    let Some(death) = death else {
        tracing::info!(
            records = stats.records,
            fsyncs = stats.fsyncs,
            "journal synced and closed; dhcp6d stopped"
        );
        return Ok(());
    };
    tracing::error!(
        records = stats.records,
        healthy = stats.healthy,
        "journal closed; dhcp6d stopped after the {} thread died (exit status 1)",
        death.thread
    );
    Err(ServeError::ThreadDied {
        thread: death.thread,
        cause: death.cause,
    })
}

/// SIGHUP: re-read the file; install its policy if the reload is safe.
/// Returns the new configuration when it took effect. The bindings stay
/// where they are; only the policy is swapped (see [`Server::install`]).
fn reload(
    old: &Config,
    file: &Path,
    duid: &[u8],
    interfaces: &[(String, u32)],
    server: &Server,
) -> Option<Config> {
    tracing::info!(config = %file.display(), "SIGHUP: reloading");
    let new = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused: {e}; the running configuration stays");
            return None;
        }
    };
    let notes = match reload::check(old, &new, |f| server.for_each_binding(|r| f(r))) {
        Ok(notes) => notes,
        Err(refusal) => {
            tracing::error!("{refusal}");
            return None;
        }
    };
    let installed = Policy::new(&new.settings(), duid.to_vec(), interfaces)
        .and_then(|policy| server.install(policy));
    if let Err(e) = installed {
        tracing::error!("reload refused: {e}; the running configuration stays");
        return None;
    }
    for n in notes {
        tracing::warn!("{n}");
    }
    let (addresses, prefixes) = server.lease_counts();
    tracing::info!(
        preference = new.server.preference,
        model = new.redundancy.model.as_str(),
        addresses,
        prefixes,
        "configuration reloaded"
    );
    Some(new)
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// The operator reads the same line as before; a caller (or a log with
    /// `{:#}`) can still reach the cause.
    #[test]
    fn start_up_errors_keep_their_cause() {
        let e = startup("control socket")(std::io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert!(e.to_string().starts_with("control socket: "), "{e}");
        let cause = e.source().expect("a source");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("the io::Error");
        assert_eq!(io.raw_os_error(), Some(libc::EADDRINUSE));

        let core = ServeError::Core {
            file: "/etc/dhcp6d.toml".into(),
            source: CoreError::TooManyPools(70_000),
        };
        assert_eq!(
            core.to_string(),
            "/etc/dhcp6d.toml: too many pools (70000); at most 65534"
        );
        assert!(core.source().is_some_and(|s| s.is::<CoreError>()));
    }
}
