//! The metrics page over HTTP: `GET /metrics` (and `HEAD`) answers the
//! Prometheus text, any other path 404 and any other method 405, so a
//! mistyped scrape URL fails loudly instead of scraping by accident. One
//! request per connection (`Connection: close`), as Prometheus scrapes.
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The one path served.
pub const PATH: &str = "/metrics";

/// A request head larger than this is refused (Prometheus sends a few hundred bytes).
const MAX_HEAD: usize = 8192;

/// Serves `handle`'s metrics on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            // Out of descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(conn, &handle)).await;
        });
    }
}

async fn answer(mut conn: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let reply = respond(&String::from_utf8_lossy(&head), || handle.render());
    conn.write_all(&reply).await?;
    conn.shutdown().await
}

/// The full HTTP response to a request whose head is `head`; `render`
/// makes the metrics text, called only when it is asked for.
pub fn respond(head: &str, render: impl FnOnce() -> String) -> Vec<u8> {
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    // A query string (`/metrics?x=1`) is still the page.
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", PATH) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            format!("not found: slowscan serves its metrics on {PATH} only\n"),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            format!("method not allowed: GET {PATH}\n"),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(reply: &[u8]) -> String {
        let text = String::from_utf8_lossy(reply);
        text.lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn only_metrics_is_the_page() {
        let page = || "slowscan_alerts_total 0\n".to_string();
        let ok = respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", page);
        assert_eq!(status_of(&ok), "HTTP/1.1 200 OK");
        assert!(String::from_utf8_lossy(&ok).ends_with("\r\n\r\nslowscan_alerts_total 0\n"));
        assert_eq!(
            status_of(&respond("GET /metrics?name[]=x HTTP/1.0\r\n\r\n", page)),
            "HTTP/1.1 200 OK"
        );
        for other in ["/", "/metric", "/metrics/", "/favicon.ico", "/metricsx"] {
            let r = respond(&format!("GET {other} HTTP/1.1\r\n\r\n"), || {
                panic!("{other}: the metrics are not rendered")
            });
            assert_eq!(status_of(&r), "HTTP/1.1 404 Not Found", "{other}");
            assert!(String::from_utf8_lossy(&r).contains("/metrics only"));
        }
        let post = respond("POST /metrics HTTP/1.1\r\n\r\n", page);
        assert_eq!(status_of(&post), "HTTP/1.1 405 Method Not Allowed");
        let head = respond("HEAD /metrics HTTP/1.1\r\n\r\n", page);
        assert!(String::from_utf8_lossy(&head).ends_with("\r\n\r\n"));
        assert_eq!(
            status_of(&respond("", page)),
            "HTTP/1.1 405 Method Not Allowed"
        );
    }
}
