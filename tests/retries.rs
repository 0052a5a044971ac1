//! Retries of transient upstream failures on `sync` routes, black-box over real sockets
//! (issue 17, bullet 2): a refused connection is retried by default until the upstream
//! comes up; `503` + `Retry-After` is retried when the route lists `"503"`, each attempt
//! with the job id as `Idempotency-Key` and at least the asked-for time apart; a default
//! route does not retry a `503`; exhausted retries fail the job with the last error and
//! `attempts = N`; a `Retry-After` that would pass the job's deadline ends the retries at
//! once. The status document shows `attempts` and, while unfinished, `last_error`. The
//! cases whose state lives in the store run on memory, SQLite and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::store::store;
use support::{client, reply, sync_config, Gateway, Seen, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Submits `respond-async` and returns the status URL.
async fn submit(gw: &Gateway, cancel_after: Option<&str>) -> String {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .body(r#"{"scene":"a"}"#);
    if let Some(v) = cancel_after {
        req = req.header("cancel-after", v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    doc["status_url"].as_str().unwrap().to_owned()
}

async fn status(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `url` until `done(doc)` (generous bound: the machine may be busy).
async fn until(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let doc = status(url).await;
        if done(&doc) {
            return doc;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "stuck at {doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminal(doc: &Value) -> bool {
    ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap_or(""))
}

/// A loopback address nothing listens on (bound, then released).
async fn refused_addr() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Serves `200 {"ok":true}` on `listener` to every request (a head, and a body by its
/// `Content-Length`), one request per connection.
async fn serve_ok(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = s.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      content-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}",
                )
                .await;
        });
    }
}

async fn refused_then_up(kind: &str) {
    let store = store(kind);
    let addr = refused_addr().await;
    let route = "retry = { attempts = 20, backoff = \"100ms\", max_backoff = \"300ms\" }";
    let gw = Gateway::start(
        &sync_config(&store.spec, "", route),
        &format!("http://{addr}"),
    )
    .await;
    let url = submit(&gw, None).await;
    // Seen failing and retried, in the store: attempts and the refused connection.
    let doc = until(&url, |d| d["attempts"].as_u64().unwrap_or(0) >= 2).await;
    assert_eq!(doc["status"], "running", "{doc}");
    assert_eq!(doc["last_error"]["code"], "upstream_unreachable", "{doc}");
    assert!(doc.get("error").is_none(), "{doc}");
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(serve_ok(listener));
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert!(doc["attempts"].as_u64().unwrap() >= 2, "{doc}");
    assert!(
        doc.get("error").is_none() && doc.get("last_error").is_none(),
        "{doc}"
    );
    let result = client().get(format!("{url}/result")).send().await.unwrap();
    assert_eq!(result.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_upstream_is_up_memory() {
    refused_then_up("memory").await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_upstream_is_up_sqlite() {
    refused_then_up("sqlite").await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_upstream_is_up_redis() {
    refused_then_up("redis").await;
}

/// Answers `status` + `Retry-After: retry_after` to the first `fails` requests, then
/// `200`; records each request's arrival time and `Idempotency-Key`.
async fn flaky(
    fails: usize,
    status: u16,
    retry_after: &'static str,
) -> (Upstream, Arc<Mutex<Vec<(Instant, String)>>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let log: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let seen = Arc::clone(&log);
    let up = Upstream::start(move |s: Seen| {
        let calls = Arc::clone(&calls);
        let log = Arc::clone(&log);
        async move {
            let key = s
                .headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            log.lock().unwrap().push((Instant::now(), key));
            if calls.fetch_add(1, Ordering::SeqCst) < fails {
                return reply(status, r#"{"busy":true}"#, &[("retry-after", retry_after)]);
            }
            reply(200, r#"{"ok":true}"#, &[])
        }
    })
    .await;
    (up, seen)
}

async fn unavailable_twice_then_ok(kind: &str) {
    let store = store(kind);
    let (up, log) = flaky(2, 503, "1").await;
    let route = "retry = { attempts = 3, on = [\"connect\", \"503\"] }";
    let gw = Gateway::start(&sync_config(&store.spec, "", route), &up.url()).await;
    let url = submit(&gw, None).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(doc["attempts"], 3, "{doc}");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    let id = doc["job_id"].as_str().unwrap();
    for (_, key) in &log {
        assert_eq!(
            key, id,
            "every attempt carries the job id as Idempotency-Key"
        );
    }
    for pair in log.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        // `Retry-After: 1` is a floor (a lower bound only: a busy machine is slower).
        assert!(gap >= Duration::from_millis(950), "attempts {gap:?} apart");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_with_the_same_key_memory() {
    unavailable_twice_then_ok("memory").await;
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_with_the_same_key_sqlite() {
    unavailable_twice_then_ok("sqlite").await;
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_with_the_same_key_redis() {
    unavailable_twice_then_ok("redis").await;
}

#[tokio::test]
async fn the_default_does_not_retry_a_503() {
    let (up, log) = flaky(usize::MAX, 503, "1").await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let url = submit(&gw, None).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["attempts"], 1, "{doc}");
    assert_eq!(doc["error"]["code"], "upstream_status", "{doc}");
    assert_eq!(doc["error"]["status"], 503, "{doc}");
    assert_eq!(log.lock().unwrap().len(), 1);
    gw.shutdown().await;
}

async fn exhausted(kind: &str) {
    let store = store(kind);
    let up = Upstream::start(|_s: Seen| async { reply(502, r#"{"bad":"gateway"}"#, &[]) }).await;
    let route =
        "retry = { attempts = 3, backoff = \"50ms\", max_backoff = \"100ms\", on = [\"502\"] }";
    let gw = Gateway::start(&sync_config(&store.spec, "", route), &up.url()).await;
    let url = submit(&gw, None).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["attempts"], 3, "{doc}");
    assert_eq!(doc["error"]["code"], "upstream_status", "{doc}");
    assert_eq!(doc["error"]["status"], 502, "{doc}");
    assert!(doc.get("last_error").is_none(), "{doc}");
    assert_eq!(up.count("/"), 3);
    // The last answer is the job's result, replayable as ever.
    let result = client().get(format!("{url}/result")).send().await.unwrap();
    assert_eq!(result.status(), 502);
    gw.shutdown().await;
}

#[tokio::test]
async fn exhausted_retries_fail_with_the_last_error_memory() {
    exhausted("memory").await;
}

#[tokio::test]
async fn exhausted_retries_fail_with_the_last_error_sqlite() {
    exhausted("sqlite").await;
}

#[tokio::test]
async fn exhausted_retries_fail_with_the_last_error_redis() {
    exhausted("redis").await;
}

#[tokio::test]
async fn exhausted_default_retries_of_a_refused_connection() {
    let addr = refused_addr().await;
    let route = "retry = { backoff = \"50ms\", max_backoff = \"100ms\" }";
    let gw = Gateway::start(&sync_config("memory", "", route), &format!("http://{addr}")).await;
    let url = submit(&gw, None).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["attempts"], 3, "the default is 3 attempts: {doc}");
    assert_eq!(doc["error"]["code"], "upstream_unreachable", "{doc}");
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_ends_the_retries_at_once() {
    let (up, log) = flaky(usize::MAX, 503, "5").await;
    // The upstream asks for 5 s; the client allows 2 s: no second attempt, and the job
    // fails with the upstream's answer rather than waiting for `deadline_exceeded`.
    let route = "retry = { on = [\"503\"] }";
    let gw = Gateway::start(&sync_config("memory", "", route), &up.url()).await;
    let url = submit(&gw, Some("2s")).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], "upstream_status", "{doc}");
    assert_eq!(doc["attempts"], 1, "{doc}");
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_above_max_backoff_ends_the_retries() {
    let (up, log) = flaky(usize::MAX, 429, "1").await;
    let route = "retry = { backoff = \"100ms\", max_backoff = \"500ms\", on = [\"429\"] }";
    let gw = Gateway::start(&sync_config("memory", "", route), &up.url()).await;
    let url = submit(&gw, None).await;
    let doc = until(&url, terminal).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["status"], 429, "{doc}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
