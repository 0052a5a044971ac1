//! Adversarial tests, black-box over real loopback sockets: hostile clients and hostile
//! upstreams, each case asserting what the gateway answers (every error it makes is an
//! `application/problem+json` document, or the connection is closed where HTTP leaves no
//! room for an answer) and that **the gateway keeps answering other clients throughout**:
//! a [`Bystander`] makes a normal request on a fresh connection every 100 ms while the
//! attack runs, and every one of them must get its `200`.
//!
//! The cases are split by concept into modules of this one test target (so
//! `cargo test --test adversarial` runs them all):
//!
//! - `adversarial/prefer.rs`: hostile `Prefer` headers — 100 KiB, 150 lines, a head past
//!   hyper's buffer, NUL / bare CR / obs-text bytes;
//! - `adversarial/slow.rs`: hostile client bodies and pacing — slow-loris heads and bodies,
//!   oversized chunked bodies, a body that stops mid-way;
//! - `adversarial/upstream.rs`: hostile upstreams — one that hangs, resets, answers
//!   garbage, and a status URL that never turns terminal (the wait cap still ends it);
//! - `adversarial/memory.rs`: the real binary, with its RSS read from `/proc`: 10,000
//!   connections opened and dropped, and an upstream answering a 10 GiB body.
//!
//! Some of these behaviours also have focused tests elsewhere (`tests/server.rs`: header
//! read timeout, garbage on the socket, control bytes in `Prefer`, 150 headers;
//! `tests/limits.rs`: a body that stops → `408`; `tests/proxy.rs`: 502 / 504, 100 MiB in
//! flat memory; `tests/task.rs`: the wait cap). Here each item of the adversarial issue is
//! demonstrated as an attack with bystanders, at the scale the issue names.
//!
//! Timing: the machine is shared and may be slow, so no assertion is a tight timing bound —
//! "within" means within [`PATIENCE`] (10 s); the short limits under test (`1s` timeouts)
//! keep the whole target well under a minute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "adversarial/memory.rs"]
mod memory;
#[path = "adversarial/prefer.rs"]
mod prefer;
#[path = "adversarial/slow.rs"]
mod slow;
#[path = "adversarial/upstream.rs"]
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::{self, assert_problem_doc, Ended, RawResponse};
use support::{reply, Seen, Upstream};

/// The longest any single answer may take before a test calls it a hang. Generous on
/// purpose: a slow machine must never fail a test.
const PATIENCE: Duration = Duration::from_secs(10);

/// The bystanders' upstream: `200 {"ok":true}` to everything.
async fn healthy_upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, r#"{"ok":true}"#, &[]) }).await
}

/// A gateway config: `[server]` and `[defaults]` extras, an in-memory job store, the
/// bystanders' `GET /alive` proxy route to `alive`, then `routes` (see [`route`]).
fn config(server: &str, defaults: &str, alive: &str, routes: &str) -> String {
    format!(
        r#"
[server]
{server}

[defaults]
poll_interval = "100ms"
{defaults}

[jobs]
store = "memory"

{}
{routes}
"#,
        route("alive", "proxy", r#""GET""#, "/alive", alive, "")
    )
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
         state = \"/status\"\nsucceeded = [\"succeeded\"]\nfailed = [\"failed\"]\n",
        route(name, "task", r#""POST""#, path, up, extra)
    )
}

/// Connects, writes `bytes` (a write error is fine: the gateway may close first), and reads
/// until the gateway closes or `limit` passes.
async fn send_raw(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Vec<u8>, Ended) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    wire::read_until_closed(&mut s, limit).await
}

/// Parses `raw` as a gateway-made problem answer with `status` and `slug`.
fn assert_raw_problem(raw: &[u8], status: u16, slug: &str) -> serde_json::Value {
    let resp = RawResponse::parse(raw)
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "{resp:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_problem_doc(&doc, status, slug);
    doc
}

/// One normal `GET /alive` on a fresh connection; `Ok(took)` when it got the healthy
/// upstream's `200` within [`PATIENCE`].
async fn normal_request(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let req = b"GET /alive HTTP/1.1\r\nHost: bystander\r\nConnection: close\r\n\r\n";
    let attempt = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(out)
    };
    let out = tokio::time::timeout(PATIENCE, attempt)
        .await
        .map_err(|_| format!("no answer within {PATIENCE:?}"))??;
    match RawResponse::parse(&out) {
        Some(r) if r.status == 200 && r.body == br#"{"ok":true}"# => Ok(started.elapsed()),
        _ => Err(format!("bad answer: {:?}", String::from_utf8_lossy(&out))),
    }
}

/// A normal client served while an attack runs: a fresh connection and a `GET /alive`
/// every 100 ms (each waited for, so a stalled gateway shows as a failure, not a pile-up).
struct Bystander {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Duration, Vec<String>)>,
}

impl Bystander {
    /// Starts asking `addr`.
    fn start(addr: SocketAddr) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let (mut served, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match normal_request(addr).await {
                    Ok(took) => {
                        served += 1;
                        slowest = slowest.max(took);
                    }
                    Err(e) => failures.push(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (served, slowest, failures)
        });
        Bystander { stop, task }
    }

    /// Stops, asserts every request was served (and at least one was made after the
    /// attack started), and returns how many were served.
    async fn finish(self, what: &str) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (served, slowest, failures) = self.task.await.unwrap();
        assert!(
            failures.is_empty(),
            "{what}: bystanders failed: {failures:?}"
        );
        assert!(served >= 1, "{what}: no bystander was served");
        eprintln!("{what}: {served} bystander requests served, slowest {slowest:?}");
        served
    }
}

/// A raw TCP upstream: each accepted connection is handed to `f`; every connection task
/// ends when the upstream is dropped.
struct RawUpstream {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    async fn start<F, Fut>(f: F) -> RawUpstream
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection task.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    a = listener.accept() => if let Ok((s, _)) = a {
                        conns.spawn(f(s));
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        RawUpstream { addr, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request head read off a raw upstream connection.
#[derive(Debug, Clone)]
struct Head {
    /// The request line's method and target.
    method: String,
    target: String,
}

/// Reads one request head and its `Content-Length` body (discarded); `None` when the peer
/// closed or sent something else.
async fn read_request(s: &mut TcpStream) -> Option<Head> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut words = text.split(' ');
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let content_length = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - (end + 4);
    while have < content_length {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => have += n,
        }
    }
    Some(Head { method, target })
}
