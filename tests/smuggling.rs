//! Request smuggling, black-box over raw sockets (issue 18, bullet 1): the framing attacks
//! reverse proxies are known to fall to, each its own named test, against the real gateway
//! in front of a raw upstream ([`RawUpstream`]) that records every byte it receives and
//! parses requests itself, so a test can count how many requests reached it and read their
//! exact bytes.
//!
//! For every attack the test asserts what RFC 9112 asks of an intermediary:
//!
//! - the request is refused with `400`, or — where the RFC defines one unambiguous framing
//!   (e.g. `Transfer-Encoding` wins over `Content-Length`, §6.3) — framed that way and sent
//!   upstream re-framed by the gateway's own client;
//! - after any ambiguity the connection is closed (§6.1: "the server MUST close the
//!   connection after responding"), read to EOF with a generous timeout;
//! - the upstream never sees two requests where the client sent one: the smuggled request
//!   (always `GET /p/smuggled`, a path the proxy route would forward) never reaches it as
//!   a request, and no request reaches it carrying both `Content-Length` and
//!   `Transfer-Encoding`.
//!
//! Found by these tests and fixed: a `Transfer-Encoding` other than one `chunked`
//! (`gzip, chunked`, `identity, chunked`, `chunked` twice) was framed by its last coding
//! and forwarded re-chunked with the other codings silently dropped; it is now a `400`
//! problem with `Connection: close` (`pipeline::request::odd_transfer_coding`).
//!
//! Modules of this one target (`cargo test --test smuggling` runs them all):
//! `smuggling/h1.rs` HTTP/1.1 body framing (CL.TE, TE.CL, TE.TE, `Content-Length`
//! values), `smuggling/lines.rs` line-level attacks (bare LF/CR, obs-fold, chunk sizes and
//! extensions, the request line), `smuggling/h2.rs` the same over HTTP/2
//! (`content-length` disagreeing with DATA, connection-specific headers, sent as raw frames
//! where the `h2` crate would refuse to send them).
//!
//! Timing: no assertion is a timing bound; every read has a generous cap ([`PATIENCE`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "smuggling/h1.rs"]
mod h1;
#[path = "smuggling/h2.rs"]
mod h2;
#[path = "smuggling/lines.rs"]
mod lines;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::{read_until_closed, Ended, RawResponse};
use support::Gateway;

/// The longest any read waits before a test calls it a hang. Generous on purpose.
const PATIENCE: Duration = Duration::from_secs(10);

/// What every upstream answer is.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A request as the raw upstream parsed it.
#[derive(Debug, Clone)]
pub struct UpRequest {
    /// The request line, e.g. `POST /p/a HTTP/1.1`.
    pub line: String,
    /// The head (request line + headers), exactly as received.
    pub head: String,
    /// The body, de-chunked when chunked.
    pub body: Vec<u8>,
}

impl UpRequest {
    /// Header values named `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

#[derive(Default)]
struct Log {
    /// Every byte received, per connection, in accept order.
    bytes: Vec<Vec<u8>>,
    /// Every complete request parsed, in order.
    requests: Vec<UpRequest>,
}

/// A raw-TCP upstream on `127.0.0.1:0`: records every byte per connection, parses each
/// request (head, then a `Content-Length` or chunked body) and answers each complete one
/// with [`OK`]. Stops when dropped.
pub struct RawUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let log = Arc::clone(&shared);
                tokio::spawn(serve_raw(s, log));
            }
        });
        RawUpstream { addr, log, task }
    }

    /// `http://` + its address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every complete request so far.
    pub fn requests(&self) -> Vec<UpRequest> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Every byte received so far, all connections, as lossy text (for messages).
    pub fn all_bytes(&self) -> String {
        let log = self.log.lock().unwrap();
        log.bytes
            .iter()
            .enumerate()
            .map(|(i, b)| format!("[conn {i}] {:?}", String::from_utf8_lossy(b)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The upstream-side half of every attack: no smuggled request, at most `max`
    /// requests, none framed by both `Content-Length` and `Transfer-Encoding`.
    pub fn assert_not_smuggled(&self, max: usize) {
        let reqs = self.requests();
        let bytes = self.all_bytes();
        // For the record (`--nocapture`): what reached the upstream.
        eprintln!(
            "[{}] upstream: {} request(s) {:?}",
            std::thread::current().name().unwrap_or("?"),
            reqs.len(),
            reqs.iter().map(|r| &r.line).collect::<Vec<_>>()
        );
        assert!(
            reqs.len() <= max,
            "the upstream saw {} requests, at most {max} allowed:\n{bytes}",
            reqs.len()
        );
        for r in &reqs {
            assert!(
                !r.line.contains("/p/smuggled"),
                "the smuggled request reached the upstream:\n{bytes}"
            );
            let cl = r.header_all("content-length");
            let te = r.header_all("transfer-encoding");
            assert!(
                cl.is_empty() || te.is_empty(),
                "a request went up with both Content-Length and Transfer-Encoding:\n{bytes}"
            );
            assert!(cl.len() <= 1, "two Content-Length lines went up:\n{bytes}");
        }
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_raw(mut s: TcpStream, log: Arc<Mutex<Log>>) {
    let conn = {
        let mut l = log.lock().unwrap();
        l.bytes.push(Vec::new());
        l.bytes.len() - 1
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some((req, used)) = parse_request(&buf) {
            buf.drain(..used);
            log.lock().unwrap().requests.push(req);
            if s.write_all(OK).await.is_err() {
                return;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                log.lock().unwrap().bytes[conn].extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// One complete request at the start of `b` and the bytes it took; `None` while incomplete.
/// Strict on purpose: the gateway's own client must always write CRLF-framed requests.
fn parse_request(b: &[u8]) -> Option<(UpRequest, usize)> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&b[..end - 4]).into_owned();
    let line = head.split("\r\n").next().unwrap_or("").to_owned();
    let mut req = UpRequest {
        line,
        head,
        body: Vec::new(),
    };
    let chunked = req
        .header_all("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut at = end;
        loop {
            let eol = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size_text = String::from_utf8_lossy(&b[at..eol]).into_owned();
            let size_hex = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
            at = eol + 2;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let eol = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
                    let empty = eol == at;
                    at = eol + 2;
                    if empty {
                        return Some((req, at));
                    }
                }
            }
            if b.len() < at + size + 2 {
                return None;
            }
            req.body.extend_from_slice(&b[at..at + size]);
            at += size + 2;
        }
    }
    let len = req
        .header_all("content-length")
        .first()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if b.len() < end + len {
        return None;
    }
    req.body = b[end..end + len].to_vec();
    Some((req, end + len))
}

/// The gateway config: a `proxy` catch-all under `/p/`, a `sync` route `/sync`, memory jobs.
const CONFIG: &str = r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "memory"

[[routes]]
name = "proxied"
kind = "proxy"
methods = ["GET", "POST"]
path = "/p/{*rest}"
upstream = "{up}"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/sync"
upstream = "{up}"
"#;

/// A raw upstream and a gateway in front of it.
pub async fn setup() -> (RawUpstream, Gateway) {
    let up = RawUpstream::start().await;
    let gw = Gateway::start(CONFIG, &up.url()).await;
    (up, gw)
}

/// What the client saw after an attack.
#[derive(Debug)]
pub struct Outcome {
    /// Every byte the gateway sent back.
    pub raw: Vec<u8>,
    /// The status of the first response, if any.
    pub status: Option<u16>,
    /// How many responses came back (status lines counted).
    pub responses: usize,
    /// How the read ended.
    pub ended: Ended,
}

impl Outcome {
    /// The raw answer as lossy text (for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Asserts the connection was closed after the answer (EOF or reset, within PATIENCE).
    pub fn assert_closed(&self) {
        assert_ne!(
            self.ended,
            Ended::StillOpen,
            "the connection stayed open after an ambiguous request:\n{}",
            self.text()
        );
    }

    /// Asserts exactly one answer, `status`, and a closed connection.
    pub fn assert_refused(&self, status: u16) {
        assert_eq!(self.status, Some(status), "{}", self.text());
        assert_eq!(self.responses, 1, "one answer only:\n{}", self.text());
        self.assert_closed();
    }
}

/// Writes `bytes` on a fresh connection, then reads until the gateway closes it (or
/// [`PATIENCE`] passes). Never half-closes: a gateway that waits for more must show it.
pub async fn attack(gw: &Gateway, bytes: &[u8]) -> Outcome {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let (raw, ended) = read_until_closed(&mut s, PATIENCE).await;
    let status = RawResponse::parse(&raw).map(|r| r.status);
    let responses = raw.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    // For the record (`--nocapture`): what the gateway did.
    eprintln!(
        "[{}] gateway: status {status:?}, {responses} response(s), ended {ended:?}",
        std::thread::current().name().unwrap_or("?")
    );
    Outcome {
        raw,
        status,
        responses,
        ended,
    }
}

/// The request smuggled behind each attack: routable, so a gateway that parsed it as a
/// request of its own would forward it.
pub const SMUGGLED: &str = "GET /p/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// Waits (up to PATIENCE) until the upstream has `n` requests; for sync jobs run later.
pub async fn until_requests(up: &RawUpstream, n: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while up.requests().len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
