//! The optional Prometheus endpoint (`server.metrics_listen`, loopback only):
//! `GET /metrics` in the text exposition format 0.0.4.

use std::fmt::Write;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::protocol::StatsSnapshot;
use super::server::ServerView;

/// Longest request head read before answering.
const MAX_HEAD: usize = 8 * 1024;

pub(super) async fn serve(
    listener: TcpListener,
    view: Arc<dyn ServerView>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(answer(stream, view.clone())); }
                Err(e) => {
                    tracing::warn!("metrics: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(mut stream: tokio::net::TcpStream, view: Arc<dyn ServerView>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    // Read until the end of the request head; a slow client is cut off.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let (status, body) =
        if first.starts_with(b"GET /metrics ") || first.starts_with(b"GET /metrics?") {
            ("200 OK", render(&view.stats()))
        } else {
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
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
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
