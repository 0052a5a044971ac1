//! The gateway's own upstream connection pool (`src/client.rs`), over real sockets: what it
//! puts on the wire (origin-form request line, `Host`), and the keep-alive cases a pool gets
//! wrong — an upstream that says `Connection: close`, one that closes idle connections
//! without saying so, a response the client abandons half-read, and many requests at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::wire::FixedUpstream;
use support::{client, Gateway};

fn config() -> String {
    r#"
[jobs]
store = "memory"
[[routes]]
name = "all"
kind = "proxy"
methods = ["GET"]
path = "/{*rest}"
upstream = "{up}"
"#
    .to_string()
}

/// A raw upstream: reads one request head at a time and calls `answer(n, &mut stream)` for
/// the n-th request overall; `answer` returns whether to keep the connection. Counts
/// accepted connections.
struct ScriptedUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Connections open now (accepted and not yet closed by either side).
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

type Answer = fn(
    usize,
    &mut TcpStream,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;

impl ScriptedUpstream {
    async fn start(answer: Answer) -> ScriptedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let conns = Arc::clone(&connections);
        let open_now = Arc::clone(&open);
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let requests = Arc::clone(&requests);
                let open = Arc::clone(&open_now);
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    // Counted down however this task ends (the answer may return early).
                    struct Closed(Arc<AtomicUsize>);
                    impl Drop for Closed {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _closed = Closed(open);
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let n = requests.fetch_add(1, Ordering::SeqCst);
                            if !answer(n, &mut s).await {
                                return;
                            }
                            continue;
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        ScriptedUpstream {
            addr,
            connections,
            open,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer for [`ScriptedUpstream`]: after `delay_ms`, a 200 whose body is the request's
/// number; keeps the connection.
async fn numbered(n: usize, s: &mut TcpStream, delay_ms: u64) -> bool {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    let body = format!("{n}");
    let msg = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await.is_ok()
}

async fn get_ok(gw: &Gateway, path: &str) -> String {
    let resp = client().get(gw.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn requests_go_out_in_origin_form_with_the_upstream_as_host() {
    let up = FixedUpstream::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let gw = Gateway::start(&config(), &up.url()).await;
    assert_eq!(get_ok(&gw, "/a/b?c=d").await, "ok");
    let heads = up.heads();
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /a/b?c=d http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: {}\r\n", up.addr)),
        "{head}"
    );
}

#[tokio::test]
async fn an_upstream_that_closes_after_each_response_is_never_reused() {
    let up = ScriptedUpstream::start(|n, s| {
        Box::pin(async move {
            let body = format!("r{n}");
            let msg = format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(msg.as_bytes()).await;
            false
        })
    })
    .await;
    let gw = Gateway::start(&config(), &up.url()).await;
    for i in 0..5 {
        assert_eq!(get_ok(&gw, "/x").await, format!("r{i}"));
    }
    assert_eq!(up.connections(), 5);
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_silently_is_replaced() {
    // Keep-alive answers, but the upstream drops every connection 50 ms after answering
    // without `Connection: close` (as an upstream with a short keepalive_timeout does).
    let up = ScriptedUpstream::start(|_, s| {
        Box::pin(async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            false
        })
    })
    .await;
    let gw = Gateway::start(&config(), &up.url()).await;
    for _ in 0..3 {
        assert_eq!(get_ok(&gw, "/x").await, "ok");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(up.connections(), 3);
}

#[tokio::test]
async fn a_response_abandoned_half_read_does_not_poison_the_pool() {
    // Request 0 gets a 4 MiB body the client stops reading after the first chunk; every
    // later request gets a short body. A connection handed back mid-body would make a later
    // request read the rest of the 4 MiB as its answer.
    let up = ScriptedUpstream::start(|n, s| {
        Box::pin(async move {
            if n == 0 {
                let size = 4 * 1024 * 1024;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return false;
                }
                let chunk = vec![b'x'; 64 * 1024];
                for _ in 0..size / chunk.len() {
                    if s.write_all(&chunk).await.is_err() {
                        return false;
                    }
                }
                return true;
            }
            let body = format!("short-{n}");
            let msg = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(msg.as_bytes()).await.is_ok()
        })
    })
    .await;
    let gw = Gateway::start(&config(), &up.url()).await;
    let resp = client().get(gw.url("/big")).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.iter().all(|b| *b == b'x'));
    drop(stream);
    for i in 1..=5 {
        assert_eq!(get_ok(&gw, "/small").await, format!("short-{i}"));
    }
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_answer() {
    let up = ScriptedUpstream::start(|n, s| Box::pin(numbered(n, s, 5))).await;
    let gw = Gateway::start(&config(), &up.url()).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = gw.url("/c");
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..10 {
                let r = client().get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                seen.push(r.text().await.unwrap().parse::<usize>().unwrap());
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 200, "every request got a distinct answer");
    assert!(
        up.connections() <= 40,
        "20 concurrent clients opened {} upstream connections",
        up.connections()
    );
}

#[tokio::test]
async fn at_the_connection_cap_requests_queue_instead_of_opening_more() {
    let up = ScriptedUpstream::start(|n, s| Box::pin(numbered(n, s, 20))).await;
    let resolver = prefer_gateway::upstream::client::StaticResolver::default();
    let client = prefer_gateway::upstream::client::build_with_cap(resolver, 3);
    let url: http::Uri = format!("{}/q", up.url()).parse().unwrap();
    let mut calls = Vec::new();
    for _ in 0..30 {
        let client = client.clone();
        let url = url.clone();
        calls.push(tokio::spawn(async move {
            let mut req = http::Request::new(prefer_gateway::body::Body::Empty);
            *req.uri_mut() = url;
            let resp = client.request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = prefer_gateway::body::collect(resp.into_body(), 1024)
                .await
                .unwrap();
            String::from_utf8(body.to_vec()).unwrap()
        }));
    }
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    answers.sort();
    answers.dedup();
    assert_eq!(answers.len(), 30, "every request got its own answer");
    assert!(
        up.connections() <= 3,
        "30 concurrent requests opened {} connections with a cap of 3",
        up.connections()
    );
}

#[tokio::test]
async fn a_bursts_idle_connections_are_closed_by_half_every_five_seconds() {
    // HAProxy's `pool-purge-delay` (default 5 s): the connections a burst opened do not
    // stay open (and in memory) until the next request looks at the pool.
    // Long enough that the burst's requests overlap even on a loaded machine.
    let up = ScriptedUpstream::start(|n, s| Box::pin(numbered(n, s, 1000))).await;
    let gw = Gateway::start(&config(), &up.url()).await;
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let url = gw.url("/burst");
            tokio::spawn(async move { client().get(&url).send().await.unwrap().status() })
        })
        .collect();
    for b in burst {
        assert_eq!(b.await.unwrap(), 200);
    }
    let after_burst = up.open();
    assert!(
        after_burst >= 16,
        "{after_burst} of the burst's connections are pooled: they are not closed at once"
    );
    // A purge that finds them unused for a whole interval comes within 10 s of the burst
    // (ticks every 5 s from the pool's first use): half of them are closed.
    let started = std::time::Instant::now();
    let mut open = after_burst;
    while started.elapsed() < Duration::from_secs(13) && open > after_burst / 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = up.open();
    }
    let took = started.elapsed();
    assert_eq!(
        open,
        after_burst / 2,
        "{after_burst} idle connections, after {took:?}: half are closed"
    );
    assert!(
        took >= Duration::from_secs(4),
        "closed after {took:?}: a connection unused for less than 5 s is kept"
    );
    // What is left is still used.
    let before = up.connections();
    get_ok(&gw, "/after").await;
    assert_eq!(
        up.connections(),
        before,
        "an idle connection the purge kept was reused"
    );
}
