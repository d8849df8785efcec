//! The control socket server: a Unix socket (mode 0600) served by a
//! current-thread tokio runtime on its own thread, plus the optional
//! Prometheus endpoint on the same runtime.
//!
//! A bad request gets `{"error": ...}` and the connection stays open; a
//! failing connection never reaches the accept loop. Both endpoints hold a
//! bounded number of connections for a bounded time ([`ControlLimits`]);
//! every refusal is answered and counted ([`Refused`], shown in `stats` and
//! `/metrics`). Nothing here touches the packet path: [`ServerView`] reads
//! counters and the lease table.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;

use super::protocol::{
    ControlStats, LeaseFilter, LeaseList, MetricsRefusals, Request, SocketRefusals, StatsSnapshot,
};

/// Longest request line accepted; longer ones get an error and the connection closes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// How many connections each endpoint holds, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlLimits {
    /// Control-socket connections open at once; one more is answered
    /// `{"error":"busy: ..."}` and closed.
    pub connections: usize,
    /// Longest a control connection may take to send a complete request
    /// line (from its opening or its previous answer), or to take an answer;
    /// past it the connection is closed.
    pub request_timeout: Duration,
    /// `/metrics` connections open at once; one more is answered 503 and closed.
    pub metrics_connections: usize,
    /// Longest a `/metrics` connection is held, request head and answer together.
    pub metrics_timeout: Duration,
}

impl Default for ControlLimits {
    /// Generous for operators and scripts (`stats --watch` and `leases --all`
    /// open one connection per request) and for a few Prometheus servers
    /// scraping every second; small next to the process's file descriptors.
    fn default() -> ControlLimits {
        ControlLimits {
            connections: 16,
            request_timeout: Duration::from_secs(30),
            metrics_connections: 32,
            metrics_timeout: Duration::from_secs(2),
        }
    }
}

/// What the control side turned away since start, by endpoint and reason.
#[derive(Debug, Default)]
pub struct Refused {
    socket_bad_request: AtomicU64,
    socket_too_long: AtomicU64,
    socket_busy: AtomicU64,
    socket_timeout: AtomicU64,
    metrics_busy: AtomicU64,
    metrics_timeout: AtomicU64,
    metrics_not_found: AtomicU64,
}

/// One reason to refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A control request answered `{"error"}`.
    SocketBadRequest,
    /// A control request line over [`MAX_REQUEST`].
    SocketTooLong,
    /// A control connection over [`ControlLimits::connections`].
    SocketBusy,
    /// A control connection past [`ControlLimits::request_timeout`].
    SocketTimeout,
    /// A `/metrics` connection over [`ControlLimits::metrics_connections`].
    MetricsBusy,
    /// A `/metrics` connection past [`ControlLimits::metrics_timeout`].
    MetricsTimeout,
    /// A request for anything but `GET /metrics`.
    MetricsNotFound,
}

impl Refused {
    /// Count one refusal.
    pub fn count(&self, r: Refusal) {
        let c = match r {
            Refusal::SocketBadRequest => &self.socket_bad_request,
            Refusal::SocketTooLong => &self.socket_too_long,
            Refusal::SocketBusy => &self.socket_busy,
            Refusal::SocketTimeout => &self.socket_timeout,
            Refusal::MetricsBusy => &self.metrics_busy,
            Refusal::MetricsTimeout => &self.metrics_timeout,
            Refusal::MetricsNotFound => &self.metrics_not_found,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as `stats` shows them.
    pub fn snapshot(&self) -> ControlStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ControlStats {
            socket: SocketRefusals {
                bad_request: get(&self.socket_bad_request),
                too_long: get(&self.socket_too_long),
                busy: get(&self.socket_busy),
                timeout: get(&self.socket_timeout),
            },
            metrics: MetricsRefusals {
                busy: get(&self.metrics_busy),
                timeout: get(&self.metrics_timeout),
                not_found: get(&self.metrics_not_found),
            },
        }
    }
}

/// The view's stats with the control side's own counters.
pub(super) fn stats(view: &dyn ServerView, refused: &Refused) -> StatsSnapshot {
    let mut s = view.stats();
    s.control = refused.snapshot();
    s
}

/// Answer a connection we will not serve and close it, without waiting:
/// read what it has sent already (so the close is a clean end of stream,
/// not a reset that could discard the answer), write `answer` if the socket
/// takes it now, drop.
pub(super) fn refuse_now<S: Read + Write>(mut stream: S, answer: &[u8]) {
    let mut sink = [0u8; 4096];
    let _ = stream.read(&mut sink);
    let _ = stream.write(answer);
}

/// What the control side may read from the running server.
pub trait ServerView: Send + Sync + 'static {
    /// Current counters, summed over workers.
    fn stats(&self) -> StatsSnapshot;
    /// One page of the bindings matching `filter`: at most `filter.limit`,
    /// after `filter.after`; the error is the message for `{"error": ...}`.
    fn leases(&self, filter: &LeaseFilter) -> Result<LeaseList, String>;
}

/// The running control thread. Stop it with [`ControlHandle::stop`].
#[derive(Debug)]
pub struct ControlHandle {
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    socket: PathBuf,
    /// Where the metrics endpoint listens (port 0 in the config is resolved here).
    pub metrics_addr: Option<SocketAddr>,
}

impl ControlHandle {
    /// Bind the control socket (and the metrics listener) now, so errors
    /// surface at start-up, then serve them on a new thread.
    pub fn start(
        socket: &Path,
        metrics: Option<SocketAddr>,
        view: Arc<dyn ServerView>,
    ) -> io::Result<ControlHandle> {
        Self::start_with(socket, metrics, view, ControlLimits::default())
    }

    /// [`ControlHandle::start`] with other limits (tests use short timeouts).
    pub fn start_with(
        socket: &Path,
        metrics: Option<SocketAddr>,
        view: Arc<dyn ServerView>,
        limits: ControlLimits,
    ) -> io::Result<ControlHandle> {
        let listener = bind_unix(socket)?;
        let metrics_listener = match metrics {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("metrics endpoint {addr}: {e}"))
                })?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let (shutdown, stop) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("dhcp6d-control".into())
            .spawn(move || run(listener, metrics_listener, view, limits, stop))?;
        Ok(ControlHandle {
            shutdown,
            thread: Some(thread),
            socket: socket.to_path_buf(),
            metrics_addr,
        })
    }

    /// Stop serving, join the thread and remove the socket file.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Drop for ControlHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Bind the Unix socket with mode 0600 from the start: the umask is set
/// around `bind` so there is no moment where others could connect.
fn bind_unix(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    // The caller holds the state_dir lock, so a file left here is a stale socket
    // of a previous run, not a live server's.
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(path)?
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(_) => {}
    }
    // SAFETY: umask only changes the process file-creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above; restores the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound
        .map_err(|e| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn run(
    listener: std::os::unix::net::UnixListener,
    metrics: Option<std::net::TcpListener>,
    view: Arc<dyn ServerView>,
    limits: ControlLimits,
    mut stop: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("control: cannot start the runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("control: socket: {e}");
                return;
            }
        };
        let refused = Arc::new(Refused::default());
        if let Some(m) = metrics {
            match tokio::net::TcpListener::from_std(m) {
                Ok(m) => {
                    tokio::spawn(super::metrics::serve(
                        m,
                        view.clone(),
                        refused.clone(),
                        limits,
                        stop.clone(),
                    ));
                }
                Err(e) => tracing::error!("control: metrics listener: {e}"),
            }
        }
        let open = Arc::new(Semaphore::new(limits.connections));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match open.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let c = Connection {
                                view: view.clone(),
                                refused: refused.clone(),
                                timeout: limits.request_timeout,
                                _permit: permit,
                            };
                            tokio::spawn(c.serve(stream));
                        }
                        Err(_) => {
                            refused.count(Refusal::SocketBusy);
                            let answer = error_line(&format!(
                                "busy: {} control connections are open, the most served at once; \
                                 try again",
                                limits.connections
                            ));
                            if let Ok(s) = stream.into_std() {
                                refuse_now(s, &answer);
                            }
                        }
                    },
                    Err(e) => {
                        tracing::warn!("control: accept: {e}");
                        // Out of fds: wait instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    });
}

/// One control connection being served; it holds a place among the
/// [`ControlLimits::connections`] until it ends.
struct Connection {
    view: Arc<dyn ServerView>,
    refused: Arc<Refused>,
    timeout: Duration,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Answer each request line until EOF, an over-long line or a timeout.
    async fn serve(self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        loop {
            line.clear();
            let mut limited = (&mut reader).take(MAX_REQUEST as u64 + 1);
            let n = match timeout(self.timeout, limited.read_until(b'\n', &mut line)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return,
                Err(_) => {
                    self.refused.count(Refusal::SocketTimeout);
                    let answer = error_line(&format!(
                        "no complete request line in {:?}; closing",
                        self.timeout
                    ));
                    let _ = write.try_write(&answer);
                    return;
                }
            };
            if n == 0 {
                return;
            }
            let too_long = line.len() > MAX_REQUEST;
            let response = if too_long {
                self.refused.count(Refusal::SocketTooLong);
                error_json(&format!("request longer than {MAX_REQUEST} bytes"))
            } else {
                respond(&line, self.view.as_ref(), &self.refused)
            };
            let mut out = response.to_string().into_bytes();
            out.push(b'\n');
            match timeout(self.timeout, write.write_all(&out)).await {
                Ok(Ok(())) if !too_long => {}
                Ok(_) => return,
                Err(_) => {
                    self.refused.count(Refusal::SocketTimeout);
                    return;
                }
            }
        }
    }
}

/// The response to one request line (also used by tests without a socket).
/// An `{"error"}` answer is counted in `refused`.
pub fn respond(line: &[u8], view: &dyn ServerView, refused: &Refused) -> serde_json::Value {
    let answer = answer(line, view, refused);
    if answer.get("error").is_some() {
        refused.count(Refusal::SocketBadRequest);
    }
    answer
}

fn answer(line: &[u8], view: &dyn ServerView, refused: &Refused) -> serde_json::Value {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => return error_json("bad request: not UTF-8"),
    };
    if text.is_empty() {
        return error_json("bad request: empty line");
    }
    match Request::parse(text) {
        Ok(Request::Stats) => to_value(&stats(view, refused)),
        Ok(Request::Leases(filter)) => match view.leases(&filter) {
            Ok(list) => to_value(&list),
            Err(e) => error_json(&e),
        },
        Err(e) => error_json(&e),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|e| error_json(&format!("internal: {e}")))
}

fn error_json(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

fn error_line(message: &str) -> Vec<u8> {
    let mut line = error_json(message).to_string().into_bytes();
    line.push(b'\n');
    line
}
