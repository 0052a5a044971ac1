//! The `[server]` limits over real sockets: `max_connections` (back-pressure: the extra
//! client waits, nobody crashes), `h2_max_concurrent_streams` (advertised in SETTINGS),
//! `body_idle_timeout` (a body that stops mid-way → `408` problem, buffered or streamed),
//! and `tenant_rate` (`429` problem with `Retry-After`, per tenant).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::wire::{assert_problem_doc, RawResponse};
use support::{client, reply, Gateway, Seen, Upstream};

fn config(server: &str) -> String {
    format!(
        r#"
[server]
{server}

[jobs]
store = "memory"
tenant_header = "X-Api-Key"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"

[[routes]]
name = "files"
kind = "proxy"
methods = ["GET", "PUT"]
path = "/files/{{*rest}}"
upstream = "{{up}}"
"#
    )
}

async fn ok_upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, "ok", &[]) }).await
}

/// Sends `head` (+ `body`) on a fresh connection and reads until the connection closes or
/// `limit` passes.
async fn raw(gw: &Gateway, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn at_max_connections_the_next_client_waits_until_one_closes() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("max_connections = 2"), &up.url()).await;
    let get = b"GET /files/a HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(get).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s); // kept open (keep-alive): both slots are taken
    }
    let third = tokio::spawn(async move {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(get).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        (String::from_utf8_lossy(&buf[..n]).into_owned(), gw)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(held.pop());
    let (answer, gw) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot freed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    gw.shutdown().await;
}

#[tokio::test]
async fn http2_connections_advertise_the_stream_limit() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("h2_max_concurrent_streams = 7"), &up.url()).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    // The server's SETTINGS arrive with the first exchange.
    let req = http::Request::get(gw.url("/files/a")).body(()).unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    assert_eq!(h2.current_max_send_streams(), 7);
}

#[tokio::test]
async fn a_buffered_body_that_stops_is_a_408_problem() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("body_idle_timeout = \"200ms\""), &up.url()).await;
    let head = b"POST /v1/render HTTP/1.1\r\nhost: x\r\nx-api-key: t\r\nprefer: respond-async\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{\"a\":";
    let started = std::time::Instant::now();
    let out = raw(&gw, head, Duration::from_secs(5)).await;
    let resp = RawResponse::parse(&out).expect("an answer");
    assert_eq!(resp.status, 408, "{}", String::from_utf8_lossy(&out));
    assert_eq!(resp.header("connection"), Some("close"));
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_problem_doc(&doc, 408, "body-timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_streamed_upload_that_stops_is_a_408_problem() {
    let up = Upstream::start(|_s: Seen| async { reply(200, "stored", &[]) }).await;
    let gw = Gateway::start(&config("body_idle_timeout = \"200ms\""), &up.url()).await;
    let head = b"PUT /files/big HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n0123456789";
    let out = raw(&gw, head, Duration::from_secs(5)).await;
    let resp = RawResponse::parse(&out).expect("an answer");
    assert_eq!(resp.status, 408, "{}", String::from_utf8_lossy(&out));
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_problem_doc(&doc, 408, "body-timeout");
}

#[tokio::test]
async fn a_slow_but_steady_body_is_not_cut() {
    let up =
        Upstream::start(|s: Seen| async move { reply(200, &format!("got {}", s.body.len()), &[]) })
            .await;
    let gw = Gateway::start(&config("body_idle_timeout = \"300ms\""), &up.url()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PUT /files/slow HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n")
        .await
        .unwrap();
    // 10 bytes over ~1.5 s: every gap (150 ms) is under the idle limit.
    for b in b"0123456789" {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(&[*b]).await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("got 10"), "{text}");
}

#[tokio::test]
async fn over_the_tenant_rate_is_a_429_problem_with_retry_after_per_tenant() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("tenant_rate = 1\ntenant_burst = 2"), &up.url()).await;
    let c = client();
    let get = |key: &'static str| c.get(gw.url("/files/a")).header("x-api-key", key).send();
    assert_eq!(get("alpha").await.unwrap().status(), 200);
    assert_eq!(get("alpha").await.unwrap().status(), 200);
    let limited = get("alpha").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    let doc = support::wire::assert_problem(limited, 429, "rate-limited").await;
    assert!(doc["detail"].as_str().unwrap().contains("retry in 1s"));
    // Another tenant has its own bucket.
    assert_eq!(get("beta").await.unwrap().status(), 200);
    // A second later alpha has a token again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get("alpha").await.unwrap().status(), 200);
}
