//! Wire-level helpers: exact bytes over a raw TCP socket, a minimal HTTP/1.1 response
//! parser, and the RFC 9457 problem assertion every black-box test shares.
//!
//! reqwest normalises what it sends (it drops or rewrites `Connection`, `TE`, odd bytes), so
//! tests about header hygiene and hostile clients talk to the gateway through these instead.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a raw read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The peer closed the connection (read returned 0).
    Closed,
    /// The read failed (e.g. connection reset) — also a close.
    Error(std::io::ErrorKind),
    /// Nothing ended it before the deadline.
    StillOpen,
}

/// Reads from `stream` until the peer closes it or `limit` passes.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Ended) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, Ended::StillOpen),
            Ok(Ok(0)) => return (out, Ended::Closed),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, Ended::Error(e.kind())),
        }
    }
}

/// Connects, writes `bytes` exactly, and reads until the gateway closes (10 s cap).
/// Send `Connection: close` in the request so the gateway ends the exchange.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let (out, ended) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert_ne!(
        ended,
        Ended::StillOpen,
        "the gateway did not close after Connection: close"
    );
    out
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in wire order, repeated names kept.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Parses the first response in `raw`; `None` when there is no complete head.
    pub fn parse(raw: &[u8]) -> Option<RawResponse> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any header is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Asserts an RFC 9457 answer made by the gateway: status, `application/problem+json`, a
/// JSON body with `type` ending in `/{slug}`, a `title` and the same `status`.
pub async fn assert_problem(resp: reqwest::Response, status: u16, slug: &str) -> serde_json::Value {
    assert_eq!(
        resp.status().as_u16(),
        status,
        "status of the {slug} problem"
    );
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(
        ct, "application/problem+json",
        "content-type of the {slug} problem"
    );
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_problem_doc(&doc, status, slug);
    doc
}

/// The body half of [`assert_problem`].
pub fn assert_problem_doc(doc: &serde_json::Value, status: u16, slug: &str) {
    let ty = doc["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no type in {doc}"));
    assert!(
        ty.ends_with(&format!("/{slug}")),
        "type {ty:?} should end with /{slug}"
    );
    assert!(
        doc["title"].as_str().is_some_and(|t| !t.is_empty()),
        "no title in {doc}"
    );
    assert_eq!(doc["status"], status, "status member of {doc}");
}

/// A raw-TCP upstream that answers every request head with the same bytes `response`
/// (which must frame its own body, e.g. with `Content-Length`) and records each request
/// head exactly as the gateway wrote it. For response shapes hyper would not produce
/// (e.g. several `Connection` lines). Stops when dropped.
pub struct FixedUpstream {
    pub addr: SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FixedUpstream {
    pub async fn start(response: &'static [u8]) -> FixedUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&heads);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = std::sync::Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            log.lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&head).into_owned());
                            if s.write_all(response).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        FixedUpstream { addr, heads, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request head received so far, as text.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for FixedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
