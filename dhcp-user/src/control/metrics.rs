//! The optional Prometheus endpoint (`server.metrics_listen`, loopback only):
//! `GET /metrics` in the text exposition format 0.0.4.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::protocol::StatsSnapshot;
use super::server::{refuse_now, ControlLimits, Refusal, Refused, ServerView};

/// Longest request head read before answering.
const MAX_HEAD: usize = 8 * 1024;

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
    Content-Length: 35\r\nConnection: close\r\nRetry-After: 1\r\n\r\n\
    too many open /metrics connections\n";

const TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n\
    Content-Length: 24\r\nConnection: close\r\n\r\nno request head in time\n";

/// Accept scrapes: at most `limits.metrics_connections` at once, each held
/// at most `limits.metrics_timeout`; one more is answered 503 at once.
pub(super) async fn serve(
    listener: TcpListener,
    view: Arc<dyn ServerView>,
    refused: Arc<Refused>,
    limits: ControlLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(Semaphore::new(limits.metrics_connections));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match open.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let scrape = Scrape {
                            view: view.clone(),
                            refused: refused.clone(),
                            hold: limits.metrics_timeout,
                            _permit: permit,
                        };
                        tokio::spawn(scrape.answer(stream));
                    }
                    Err(_) => {
                        refused.count(Refusal::MetricsBusy);
                        if let Ok(s) = stream.into_std() {
                            refuse_now(s, BUSY);
                        }
                    }
                },
                Err(e) => {
                    tracing::warn!("metrics: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// One `/metrics` connection; it holds a place among the
/// [`ControlLimits::metrics_connections`] until it ends.
struct Scrape {
    view: Arc<dyn ServerView>,
    refused: Arc<Refused>,
    hold: Duration,
    _permit: OwnedSemaphorePermit,
}

impl Scrape {
    async fn answer(self, mut stream: tokio::net::TcpStream) {
        let deadline = tokio::time::Instant::now() + self.hold;
        let mut head = Vec::with_capacity(512);
        let mut buf = [0u8; 1024];
        // Read until the end of the request head; a slow client is cut off.
        let read = tokio::time::timeout_at(deadline, async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            true
        })
        .await;
        match read {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                self.refused.count(Refusal::MetricsTimeout);
                let _ = stream.try_write(TIMEOUT);
                return;
            }
        }
        let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
        let (status, body) =
            if first.starts_with(b"GET /metrics ") || first.starts_with(b"GET /metrics?") {
                let stats = super::server::stats(self.view.as_ref(), &self.refused);
                ("200 OK", render(&stats))
            } else {
                self.refused.count(Refusal::MetricsNotFound);
                (
                    "404 Not Found",
                    "only /metrics is served here\n".to_string(),
                )
            };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let written = tokio::time::timeout_at(deadline, async {
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        })
        .await;
        if written.is_err() {
            self.refused.count(Refusal::MetricsTimeout);
        }
    }
}

/// The stats as Prometheus text.
pub fn render(s: &StatsSnapshot) -> String {
    let mut o = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(o, "{name}{labels} {value}");
        }
    };
    let label = |k: &str, v: &str| format!("{{{k}=\"{}\"}}", escape(v));
    let rx = &s.rx;
    let received: Vec<(String, String)> = [
        ("solicit", rx.solicit),
        ("request", rx.request),
        ("confirm", rx.confirm),
        ("renew", rx.renew),
        ("rebind", rx.rebind),
        ("release", rx.release),
        ("decline", rx.decline),
        ("information_request", rx.information_request),
        ("relay_forw", rx.relay_forw),
        ("other", rx.other),
    ]
    .iter()
    .map(|(t, v)| (label("type", t), v.to_string()))
    .collect();
    family(
        "dhcp6d_received_messages_total",
        "counter",
        "DHCPv6 messages received, by type.",
        &received,
    );
    let sent: Vec<(String, String)> = [
        ("advertise", s.tx.advertise),
        ("reply", s.tx.reply),
        ("relay_repl", s.tx.relay_repl),
    ]
    .iter()
    .map(|(t, v)| (label("type", t), v.to_string()))
    .collect();
    family(
        "dhcp6d_sent_messages_total",
        "counter",
        "DHCPv6 messages sent, by type.",
        &sent,
    );
    let d = &s.dropped;
    // One series per reason; `other` is left out here (it is the sum of
    // the reasons without a base-contract key, each of which has its series).
    let dropped: Vec<(String, String)> = d
        .entries()
        .into_iter()
        .filter(|(t, _)| *t != "other")
        .map(|(t, v)| (label("reason", t), v.to_string()))
        .collect();
    family(
        "dhcp6d_dropped_messages_total",
        "counter",
        "DHCPv6 messages dropped without a reply, by reason.",
        &dropped,
    );
    let refused: Vec<(String, String)> = crate::protocol::Refusal::ALL
        .iter()
        .map(|r| (label("reason", r.label()), s.refused.get(*r).to_string()))
        .collect();
    family(
        "dhcp6d_refused_ias_total",
        "counter",
        "IAs answered NoAddrsAvail or NoPrefixAvail because of a [limits] cap, by the key.",
        &refused,
    );
    family(
        "dhcp6d_leases",
        "gauge",
        "Live bindings, by kind.",
        &[
            (label("kind", "address"), s.leases.addresses.to_string()),
            (label("kind", "prefix"), s.leases.prefixes.to_string()),
        ],
    );
    let pool_label = |p: &super::PoolStats| {
        format!(
            "{{pool=\"{}\",kind=\"{}\"}}",
            escape(&p.pool),
            escape(&p.kind)
        )
    };
    let capacity: Vec<(String, String)> = s
        .pools
        .iter()
        .map(|p| (pool_label(p), float(&p.capacity)))
        .collect();
    family(
        "dhcp6d_pool_capacity",
        "gauge",
        "Addresses (na) or prefixes (pd) in each pool.",
        &capacity,
    );
    let used: Vec<(String, String)> = s
        .pools
        .iter()
        .map(|p| (pool_label(p), p.used.to_string()))
        .collect();
    family(
        "dhcp6d_pool_used",
        "gauge",
        "Live bindings in each pool.",
        &used,
    );
    family(
        "dhcp6d_journal_records_total",
        "counter",
        "Lease records written to the journal.",
        &[(String::new(), s.journal.records.to_string())],
    );
    family(
        "dhcp6d_journal_fsyncs_total",
        "counter",
        "Journal group commits (fdatasync calls).",
        &[(String::new(), s.journal.fsyncs.to_string())],
    );
    family(
        "dhcp6d_journal_written_bytes_total",
        "counter",
        "Bytes written to the journal.",
        &[(String::new(), s.journal.bytes.to_string())],
    );
    family(
        "dhcp6d_journal_queue_full_total",
        "counter",
        "Messages refused because the queue to the journal writer was full (the disk is behind).",
        &[(String::new(), s.journal.queue_full.to_string())],
    );
    family(
        "dhcp6d_xdp_frames_total",
        "counter",
        "Frames the XDP program handled, by action.",
        &[
            (label("action", "redirected"), s.xdp.redirected.to_string()),
            (label("action", "passed"), s.xdp.passed.to_string()),
            (label("action", "dropped"), s.xdp.dropped.to_string()),
        ],
    );
    family(
        "dhcp6d_binding_locks_poisoned_total",
        "counter",
        "Binding-table locks found poisoned (a worker panicked mid-update); lease counts may be off by this much.",
        &[(String::new(), s.leases.poisoned_locks.to_string())],
    );
    family(
        "dhcp6d_xdp_worker_restarts_total",
        "counter",
        "AF_XDP workers that died and were restarted.",
        &[(String::new(), s.xdp.worker_restarts.to_string())],
    );
    family(
        "dhcp6d_xdp_not_ours_total",
        "counter",
        "UDP/547 frames not addressed to this server, passed to the kernel (counted in passed too).",
        &[(String::new(), s.xdp.not_ours.to_string())],
    );
    family(
        "dhcp6d_xdp_passed_without_worker_total",
        "counter",
        "DHCPv6 frames for this server passed to the kernel for want of an AF_XDP worker, by reason (counted in passed too).",
        &[
            (label("reason", "no_socket"), s.xdp.no_socket.to_string()),
            (
                label("reason", "beyond_queue_limit"),
                s.xdp.beyond_queue_limit.to_string(),
            ),
        ],
    );
    family(
        "dhcp6d_xdp_fallback_answered_total",
        "counter",
        "Replies sent by the kernel-socket fallback listener (what XDP passed for want of a worker).",
        &[(String::new(), s.xdp.fallback_answered.to_string())],
    );
    family(
        "dhcp6d_xdp_queues_without_worker",
        "gauge",
        "RX queues found at start that got no AF_XDP worker (beyond the XskMap); the fallback answers them.",
        &[(String::new(), s.xdp.queues_without_worker.to_string())],
    );
    let c = &s.control;
    let refused: Vec<(String, String)> = [
        ("socket", "bad_request", c.socket.bad_request),
        ("socket", "too_long", c.socket.too_long),
        ("socket", "busy", c.socket.busy),
        ("socket", "timeout", c.socket.timeout),
        ("metrics", "busy", c.metrics.busy),
        ("metrics", "timeout", c.metrics.timeout),
        ("metrics", "not_found", c.metrics.not_found),
    ]
    .iter()
    .map(|(endpoint, reason, v)| {
        (
            format!("{{endpoint=\"{endpoint}\",reason=\"{reason}\"}}"),
            v.to_string(),
        )
    })
    .collect();
    family(
        "dhcp6d_control_refused_total",
        "counter",
        "Control-socket requests and connections, and /metrics connections, refused, by endpoint and reason.",
        &refused,
    );
    family(
        "dhcp6d_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[(String::new(), s.uptime_s.to_string())],
    );
    family(
        "dhcp6d_info",
        "gauge",
        "Constant 1, labelled with the server identity.",
        &[(
            format!(
                "{{io=\"{}\",model=\"{}\",server_duid=\"{}\",preference=\"{}\"}}",
                escape(&s.io),
                escape(&s.model),
                escape(&s.server_duid),
                s.preference
            ),
            "1".into(),
        )],
    );
    o
}

/// A capacity string (decimal, possibly beyond u64) as a Prometheus float.
fn float(decimal: &str) -> String {
    decimal
        .parse::<f64>()
        .map(|f| format!("{f:e}"))
        .unwrap_or_else(|_| "NaN".into())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
