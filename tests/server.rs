//! The client-facing listener over real sockets: graceful shutdown (in-flight requests
//! finish, new connections are refused), the header read timeout against slow clients,
//! garbage on the socket, and hostile bytes in header values never producing a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use support::wire::{self, assert_problem_doc, Ended, RawResponse};
use support::{client, reply, Gateway, Seen, Upstream};

/// A catch-all route of `kind` to `{up}`, after `head` (e.g. a `[server]` table); jobs
/// (for `sync` routes) stay in memory.
fn config(head: &str, kind: &str) -> String {
    format!(
        r#"{head}

[jobs]
store = "memory"

[[routes]]
name = "all"
kind = "{kind}"
methods = ["GET", "POST"]
path = "/{{*rest}}"
upstream = "{{up}}"
"#
    )
}

async fn ok_upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, r#"{"ok":true}"#, &[]) }).await
}

/// A normal request still gets the upstream's 200.
async fn assert_still_serving(gw: &Gateway) {
    let resp = client().get(gw.url("/alive")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"ok":true}"#);
}

// === graceful shutdown ===

#[tokio::test]
async fn shutdown_lets_the_in_flight_request_finish_then_refuses_new_connections() {
    in_flight_finishes_then_new_connections_are_refused("").await;
}

/// The same on one per-core runtime, and on the main runtime (`worker_threads = 0`, no
/// per-core runtimes): where connections are served changes nothing a client sees.
#[tokio::test]
async fn shutdown_drains_the_same_on_one_core_runtime_and_on_the_main_runtime() {
    for head in [
        "[server]\nworker_threads = 1",
        "[server]\nworker_threads = 0",
    ] {
        in_flight_finishes_then_new_connections_are_refused(head).await;
    }
}

async fn in_flight_finishes_then_new_connections_are_refused(head: &str) {
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<()>();
    let up = Upstream::start(move |_s: Seen| {
        let arrived = arrived.clone();
        async move {
            let _ = arrived.send(());
            tokio::time::sleep(Duration::from_secs(1)).await;
            reply(200, r#"{"slow":"done"}"#, &[])
        }
    })
    .await;
    let gw = Gateway::start(&config(head, "proxy"), &up.url()).await;
    let addr = gw.addr;
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move {
        let resp = client().get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
        .await
        .expect("the request never reached the upstream");

    tokio::time::timeout(Duration::from_secs(20), gw.shutdown())
        .await
        .expect("shutdown did not complete");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight request never finished")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"slow":"done"}"#);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_with_idle_keep_alive_connections_completes() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("", "proxy"), &up.url()).await;
    let c = client();
    let resp = c.get(gw.url("/warm")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    // `c` keeps its idle connection open; a half-sent head sits on another one.
    let mut partial = TcpStream::connect(gw.addr).await.unwrap();
    partial
        .write_all(b"GET /half HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let addr = gw.addr;
    tokio::time::timeout(Duration::from_secs(20), gw.shutdown())
        .await
        .expect("shutdown did not complete with idle connections open");
    assert!(TcpStream::connect(addr).await.is_err());
    drop(c);
}

// === slow clients ===

const SHORT_HEADER_TIMEOUT: &str = "[server]\nheader_read_timeout = \"300ms\"";

#[tokio::test]
async fn a_client_that_stops_mid_head_is_disconnected_by_the_header_read_timeout() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config(SHORT_HEADER_TIMEOUT, "proxy"), &up.url()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let (bytes, ended) = wire::read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_ne!(ended, Ended::StillOpen, "the connection was not closed");
    if let Some(resp) = RawResponse::parse(&bytes) {
        assert_eq!(resp.status, 408, "only a 408 may be sent: {resp:?}");
    }
    assert!(up.seen().is_empty());
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected_by_the_header_read_timeout() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config(SHORT_HEADER_TIMEOUT, "proxy"), &up.url()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let (bytes, ended) = wire::read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_ne!(
        ended,
        Ended::StillOpen,
        "a silent connection is held open (slow-loris)"
    );
    if let Some(resp) = RawResponse::parse(&bytes) {
        assert_eq!(resp.status, 408, "only a 408 may be sent: {resp:?}");
    }
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn a_client_that_stops_inside_the_http2_preface_is_disconnected() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config(SHORT_HEADER_TIMEOUT, "proxy"), &up.url()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (_, ended) = wire::read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_ne!(
        ended,
        Ended::StillOpen,
        "a half-sent preface is held open (slow-loris)"
    );
    assert_still_serving(&gw).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_header_read_timeout() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config(SHORT_HEADER_TIMEOUT, "proxy"), &up.url()).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (bytes, ended) = wire::read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert_ne!(
        ended,
        Ended::StillOpen,
        "an idle keep-alive connection was held open"
    );
    assert_eq!(
        RawResponse::parse(&bytes).unwrap().status,
        200,
        "the first request was served"
    );
}

// === hostile bytes ===

/// A small deterministic PRNG (xorshift64*): reproducible garbage without a dependency.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_on_the_socket_never_takes_the_gateway_down() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config(SHORT_HEADER_TIMEOUT, "proxy"), &up.url()).await;
    let prefixes: [&[u8]; 5] = [
        b"",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for (i, prefix) in prefixes.iter().enumerate() {
        for seed in 1..=3u64 {
            let mut bytes = prefix.to_vec();
            bytes.extend(garbage(4096, seed * 7919 + i as u64));
            let mut s = TcpStream::connect(gw.addr).await.unwrap();
            // The gateway may close before reading everything: write errors are fine.
            let _ = s.write_all(&bytes).await;
            let (out, _) = wire::read_until_closed(&mut s, Duration::from_secs(2)).await;
            if let Some(resp) = RawResponse::parse(&out) {
                assert!(resp.status < 500, "prefix {i}: {resp:?}");
            }
        }
        assert_still_serving(&gw).await;
    }
}

#[tokio::test]
async fn obs_text_and_control_bytes_in_prefer_never_cause_a_gateway_5xx() {
    let up = ok_upstream().await;
    for kind in ["proxy", "sync"] {
        let gw = Gateway::start(&config("", kind), &up.url()).await;
        let values: [&[u8]; 7] = [
            b"\xff\xfe, wait=abc",
            b"wait=\xff",
            b"respond-async; x=\"\x80\x81\", wait=5",
            b"\"unterminated, wait=1",
            b"wait=99999999999999999999999999, respond-async",
            b"wait=\x015",
            b"\x7f",
        ];
        for value in values {
            let mut req = b"GET /prefer HTTP/1.1\r\nHost: x\r\nPrefer: ".to_vec();
            req.extend_from_slice(value);
            req.extend_from_slice(b"\r\nX-Request-Id: \xfe\xff\r\nConnection: close\r\n\r\n");
            let raw = wire::exchange(gw.addr, &req).await;
            let resp = RawResponse::parse(&raw)
                .unwrap_or_else(|| panic!("{kind}: no response to {value:?}"));
            assert!(resp.status < 500, "{kind}: {value:?} → {resp:?}");
        }
        // obs-text is legal field content (RFC 9110 §5.5): such a request is forwarded.
        let raw = wire::exchange(
            gw.addr,
            b"GET /obs HTTP/1.1\r\nHost: x\r\nPrefer: \xff\xfe, wait=abc\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(RawResponse::parse(&raw).unwrap().status, 200, "{kind}");
        let last = up.seen().pop().unwrap();
        assert_eq!(last.uri, "/obs");
        let forwarded = last.headers["prefer"].as_bytes();
        if kind == "proxy" {
            assert_eq!(forwarded, b"\xff\xfe, wait=abc", "proxy: Prefer untouched");
        } else {
            // The gateway owns execution on sync routes: wait elements go, others stay.
            assert!(forwarded.starts_with(b"\xff\xfe"), "sync: {forwarded:?}");
            assert!(
                !forwarded.windows(5).any(|w| w == b"wait="),
                "sync: {forwarded:?}"
            );
        }
        assert_still_serving(&gw).await;
    }
}

#[tokio::test]
async fn too_many_request_headers_are_a_431_problem() {
    let up = ok_upstream().await;
    let gw = Gateway::start(&config("", "proxy"), &up.url()).await;
    let mut req = b"GET /many HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..150 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let raw = wire::exchange(gw.addr, &req).await;
    let resp = RawResponse::parse(&raw).unwrap();
    assert_eq!(resp.status, 431, "{resp:?}");
    assert!(up.seen().is_empty());
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json"),
        "the gateway's own 431 is a problem document (behaviour §7): {resp:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_problem_doc(&doc, 431, "headers-too-large");
    assert_still_serving(&gw).await;
}
