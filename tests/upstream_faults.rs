//! Upstreams that misbehave under load (issue 18, bullet 3), black-box over real loopback
//! sockets: hundreds of clients at once against an upstream that flaps, hangs, or drops
//! its keep-alive connections, each case counting what every client got and what the
//! upstream saw.
//!
//! What every case asserts, whatever the fault:
//! - **no waiter lost**: every client gets an answer within [`PATIENCE`] (no hang, no
//!   dropped connection);
//! - **only answers the contract names** for the situation (behaviour §4, §5, §7): the
//!   final `200` or the `202` handle for a waiter, `504 upstream-timeout` for a call that
//!   never answers, `502 upstream-unreachable` for a broken one — never a 5xx because one
//!   status poll failed;
//! - **retries only where they are safe**: the upstream counts requests by a unique id, and
//!   a `POST` reaches it twice only when it carried the `Idempotency-Key` the gateway
//!   forwards for jobs; status polls (`GET`) may be retried.
//!
//! The cases, one module each (one test target: `cargo test --test upstream_faults`):
//! - `upstream_faults/flapping.rs`: a task route whose status URL answers `500`, hangs past
//!   the poll timeout, closes the connection or says `running`, at random;
//! - `upstream_faults/silent.rs`: an upstream that accepts and never answers, on every
//!   route kind, while another route is served;
//! - `upstream_faults/stale.rs`: an upstream that closes keep-alive connections at random
//!   (the stale-connection race);
//! - `upstream_faults/mixed.rs`: mixed load on a misbehaving upstream beside a healthy one.
//!
//! Timing: the machine is shared and slow, so the only time assertions are generous upper
//! bounds (and "not before the timeout"); `upstream_timeout` is a few seconds — short
//! enough to stay quick, long enough that hundreds of requests starting at once on a
//! loaded machine are not what times out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "upstream_faults/flapping.rs"]
mod flapping;
#[path = "upstream_faults/mixed.rs"]
mod mixed;
#[path = "upstream_faults/silent.rs"]
mod silent;
#[path = "upstream_faults/stale.rs"]
mod stale;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest any single answer may take before a test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// A gateway config: `[defaults]` (`poll_interval = "100ms"` unless given), an in-memory
/// job store, then `routes`.
fn config(defaults: &str, routes: &str) -> String {
    let poll = if defaults.contains("poll_interval") {
        ""
    } else {
        "poll_interval = \"100ms\""
    };
    format!("[defaults]\n{poll}\n{defaults}\n\n[jobs]\nstore = \"memory\"\n\n{routes}")
}

/// One `[[routes]]` table; `extra` lines are appended to it.
fn route(name: &str, kind: &str, methods: &str, path: &str, up: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nkind = \"{kind}\"\nmethods = [{methods}]\n\
         path = \"{path}\"\nupstream = \"{up}\"\n{extra}\n"
    )
}

/// A `task` route at `path` whose operation id is the 202 body's `/taskId` and whose status
/// URL is `/v1/tasks/{id}` on the same upstream.
fn task_route(name: &str, path: &str, up: &str, extra: &str) -> String {
    format!(
        "{}[routes.task]\nid = \"/taskId\"\nstatus_url = \"/v1/tasks/{{id}}\"\n\
         state = \"/status\"\nsucceeded = [\"succeeded\"]\nfailed = [\"failed\"]\n\n",
        route(name, "task", r#""POST""#, path, up, extra)
    )
}

/// A raw TCP upstream: each accepted connection is handed to `f`. Counts connections
/// accepted and still open (a connection is open until `f` returns, which the handlers
/// here do when the gateway closes it). Every connection task ends when it is dropped.
struct RawUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Decrements the open-connection count when the connection's task ends (or is aborted).
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RawUpstream {
    async fn start<F, Fut>(f: F) -> RawUpstream
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (acc, opn) = (Arc::clone(&accepted), Arc::clone(&open));
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection task.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    a = listener.accept() => if let Ok((s, _)) = a {
                        acc.fetch_add(1, Ordering::SeqCst);
                        opn.fetch_add(1, Ordering::SeqCst);
                        let guard = OpenGuard(Arc::clone(&opn));
                        let conn = f(s);
                        conns.spawn(async move {
                            let _guard = guard;
                            conn.await;
                        });
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        RawUpstream {
            addr,
            accepted,
            open,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request read off a raw upstream connection.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (head and `Content-Length` or chunked body) from `s`, keeping bytes
/// of a next request in `buf`. `None` when the peer closed or sent something unreadable.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Req> {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        fill(s, buf).await?;
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = text.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut req = Req {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let eol = loop {
                if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
                    break eol;
                }
                fill(s, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..eol + 2);
            while buf.len() < size + 2 {
                fill(s, buf).await?;
            }
            req.body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                return Some(req);
            }
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        fill(s, buf).await?;
    }
    req.body = buf.drain(..len).collect();
    Some(req)
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// A keep-alive response with a JSON body.
fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes `bytes`; false when the gateway has gone.
async fn send(s: &mut TcpStream, bytes: &[u8]) -> bool {
    s.write_all(bytes).await.is_ok()
}

/// Holds the connection without answering until the gateway closes it (or `cap` passes):
/// an upstream that accepted the work and never answers.
async fn hold(s: &mut TcpStream, cap: Duration) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(cap, async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Closes with a `RST` (SO_LINGER 0), as a server does that closes with unread data.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64's finaliser, so neighbouring seeds give unrelated streams.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % n
    }
}

/// What a crowd of clients got: answers by status (and problem `type` slug), and failures
/// to get any answer at all.
#[derive(Debug, Default)]
struct Tally {
    by_status: BTreeMap<String, usize>,
    lost: Vec<String>,
}

impl Tally {
    fn add(&mut self, key: impl Into<String>) {
        *self.by_status.entry(key.into()).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.by_status.values().sum::<usize>() + self.lost.len()
    }

    /// Asserts every client got an answer and every answer's key is in `allowed`.
    fn assert_only(&self, what: &str, allowed: &[&str]) {
        assert!(
            self.lost.is_empty(),
            "{what}: {} clients got no answer: {:?}",
            self.lost.len(),
            &self.lost[..self.lost.len().min(5)]
        );
        for key in self.by_status.keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{what}: answer {key} is not one the contract names here ({:?})",
                self.by_status
            );
        }
        eprintln!("{what}: {:?}", self.by_status);
    }
}

/// `status` for a plain answer, `status type-slug` for a gateway problem (which must be
/// well-formed RFC 9457: `application/problem+json`, `type`, `title`, `status`).
fn answer_key(status: u16, content_type: Option<&str>, body: &[u8]) -> String {
    if content_type != Some("application/problem+json") {
        return status.to_string();
    }
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    support::wire::assert_problem_doc(&doc, status, doc["type"].as_str().map_or("?", slug));
    format!("{status} {}", slug(doc["type"].as_str().unwrap_or("?")))
}

fn slug(ty: &str) -> &str {
    ty.rsplit('/').next().unwrap_or(ty)
}

/// A response read whole: status, content type, body.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn key(&self) -> String {
        answer_key(self.status, self.content_type.as_deref(), &self.body)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// Sends `req` and reads the answer whole within [`PATIENCE`]; `Err` says why there was
/// none (a hang, a dropped connection).
async fn call(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let attempt = async {
        let resp = req.send().await.map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
        Ok(Answer {
            status,
            content_type,
            body: body.to_vec(),
        })
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .map_err(|_| format!("no answer within {PATIENCE:?}"))?
}

/// Waits (up to [`PATIENCE`]) until `f` holds; false if it never did.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
