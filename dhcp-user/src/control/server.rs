//! The control socket server: a Unix socket (mode 0600) served by a
//! current-thread tokio runtime on its own thread, plus the optional
//! Prometheus endpoint on the same runtime.
//!
//! A bad request gets `{"error": ...}` and the connection stays open; a
//! failing connection never reaches the accept loop. Nothing here touches
//! the packet path: [`ServerView`] reads counters and the lease table.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::protocol::{LeaseFilter, LeaseList, Request, StatsSnapshot};

/// Longest request line accepted; longer ones get an error and the connection closes.
pub const MAX_REQUEST: usize = 64 * 1024;

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
            .spawn(move || run(listener, metrics_listener, view, stop))?;
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
        if let Some(m) = metrics {
            match tokio::net::TcpListener::from_std(m) {
                Ok(m) => {
                    tokio::spawn(super::metrics::serve(m, view.clone(), stop.clone()));
                }
                Err(e) => tracing::error!("control: metrics listener: {e}"),
            }
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(connection(stream, view.clone()));
                    }
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

/// Serve one connection: answer each request line until EOF.
async fn connection(stream: UnixStream, view: Arc<dyn ServerView>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = line.len() > MAX_REQUEST;
        let response = if too_long {
            error_json(&format!("request longer than {MAX_REQUEST} bytes"))
        } else {
            respond(&line, view.as_ref())
        };
        let mut out = response.to_string().into_bytes();
        out.push(b'\n');
        if write.write_all(&out).await.is_err() || too_long {
            return;
        }
    }
}

/// The response to one request line (also used by tests without a socket).
pub fn respond(line: &[u8], view: &dyn ServerView) -> serde_json::Value {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(_) => return error_json("bad request: not UTF-8"),
    };
    if text.is_empty() {
        return error_json("bad request: empty line");
    }
    match Request::parse(text) {
        Ok(Request::Stats) => to_value(&view.stats()),
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
