//! Hostile client pacing and bodies (README "Limits"):
//!
//! - **slow-loris heads**: 200 connections each dribbling a header byte every 250 ms are
//!   closed at `server.header_read_timeout` (1 s here) — never answered, never forwarded;
//! - **slow-loris bodies**: 100 uploads sending a body byte every 2.5 s (a gap past
//!   `server.body_idle_timeout`, 1 s here) each get a `408` problem, buffered (a job submit)
//!   or streamed (a proxied `PUT`). A body that keeps every gap under the idle limit is not
//!   cut, by design (nginx's `client_body_timeout` works the same way, see
//!   `tests/limits.rs`): such clients are bounded by `server.max_connections`;
//! - **oversized bodies**: a chunked body of 64 MiB to a route that buffers at most 1 MiB is
//!   a `413` problem that arrives long before the client could send it all (the gateway
//!   stops reading at the limit), and a declared `Content-Length` over it is refused before
//!   a byte of body is read;
//! - **a body that stops mid-way** (`Content-Length: 1000`, 10 bytes, then the client's write
//!   half closes) is a `400 bad-request-body` problem, buffered or streamed, and the
//!   upstream never gets a complete request; left open instead, it is a `408` problem at
//!   `body_idle_timeout`.
//!
//! Every attack runs while a [`Bystander`] is served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::wire::{self, Ended, RawResponse};
use super::support::{Gateway, Upstream};
use super::{assert_raw_problem, config, healthy_upstream, route, Bystander, PATIENCE};

/// Timeouts of 1 s; a job route `/v1/render` buffering at most 1 MiB and a streaming proxy
/// route `PUT /files/{*rest}`, both to `up`.
async fn gateway(up: &Upstream, alive: &Upstream) -> Gateway {
    let routes = format!(
        "{}{}",
        route(
            "render",
            "sync",
            r#""POST""#,
            "/v1/render",
            &up.url(),
            "max_body = \"1MiB\""
        ),
        route(
            "files",
            "proxy",
            r#""PUT""#,
            "/files/{*rest}",
            &up.url(),
            ""
        )
    );
    let cfg = config(
        "header_read_timeout = \"1s\"\nbody_idle_timeout = \"1s\"",
        "",
        &alive.url(),
        &routes,
    );
    Gateway::start(&cfg, "").await
}

const BUFFERED: &[u8] = b"POST /v1/render HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n\
    Content-Type: application/json\r\n";
const STREAMED: &[u8] = b"PUT /files/upload HTTP/1.1\r\nHost: x\r\n";

fn with_length(head: &[u8], length: u64) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_slow_loris_heads_are_cut_at_the_header_read_timeout() {
    let (up, alive) = (healthy_upstream().await, healthy_upstream().await);
    let gw = gateway(&up, &alive).await;
    let bystander = Bystander::start(gw.addr);
    let started = Instant::now();
    let loris: Vec<_> = (0..200)
        .map(|_| {
            let addr = gw.addr;
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let opened = Instant::now();
                let _ = s.write_all(b"GET /alive HTTP/1.1\r\nX-Slow: ").await;
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        },
                        _ = tick.tick() => {
                            // One more header byte; a failed write means it was closed.
                            if s.write_all(b"a").await.is_err() { break; }
                        }
                    }
                    assert!(
                        opened.elapsed() < PATIENCE,
                        "a slow-loris head was held open"
                    );
                }
                (opened.elapsed(), got)
            })
        })
        .collect();
    let mut longest = Duration::ZERO;
    for l in loris {
        let (held, got) = l.await.unwrap();
        longest = longest.max(held);
        if let Some(resp) = RawResponse::parse(&got) {
            assert_eq!(resp.status, 408, "only a 408 may be sent: {resp:?}");
        }
    }
    assert!(
        longest >= Duration::from_millis(900),
        "cut before the timeout: {longest:?}"
    );
    bystander.finish("200 slow-loris heads").await;
    assert_eq!(up.count("/"), 0, "a half-sent head was forwarded");
    eprintln!(
        "slow-loris: longest held {longest:?}, all closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_slow_loris_bodies_are_408_problems() {
    let (up, alive) = (healthy_upstream().await, healthy_upstream().await);
    let gw = gateway(&up, &alive).await;
    let bystander = Bystander::start(gw.addr);
    let uploads: Vec<_> = (0..100)
        .map(|i| {
            let addr = gw.addr;
            let head = with_length(if i % 2 == 0 { BUFFERED } else { STREAMED }, 1000);
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(&head).await.unwrap();
                s.write_all(b"{").await.unwrap();
                let (mut rd, mut wr) = s.into_split();
                // One body byte every 2.5 s: each gap is well past the 1 s idle limit.
                let dribble = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(2500)).await;
                        if wr.write_all(b" ").await.is_err() {
                            return;
                        }
                    }
                });
                let mut out = Vec::new();
                let read = tokio::time::timeout(PATIENCE, rd.read_to_end(&mut out)).await;
                dribble.abort();
                assert!(read.is_ok(), "a slow-loris body was held open");
                out
            })
        })
        .collect();
    for u in uploads {
        let out = u.await.unwrap();
        assert_raw_problem(&out, 408, "body-timeout");
    }
    bystander.finish("100 slow-loris bodies").await;
    assert!(
        up.seen().iter().all(|s| s.body.len() < 1000),
        "a cut body reached the upstream whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_chunked_body_over_a_1_mib_limit_is_a_413_before_it_is_all_sent() {
    let (up, alive) = (healthy_upstream().await, healthy_upstream().await);
    let gw = gateway(&up, &alive).await;
    let bystander = Bystander::start(gw.addr);
    const TOTAL: usize = 64 * 1024 * 1024;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let writer = tokio::spawn(async move {
        let mut head = BUFFERED.to_vec();
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        wr.write_all(&head).await?;
        let chunk = vec![b' '; 64 * 1024];
        while counter.load(Ordering::SeqCst) < TOTAL {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        wr.write_all(b"0\r\n\r\n").await
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the whole answer is in (the problem document ends with `}`).
    let answered = tokio::time::timeout(PATIENCE, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if RawResponse::parse(&out).is_some_and(|r| r.body.ends_with(b"}")) {
                break;
            }
        }
    })
    .await;
    let sent_at_answer = sent.load(Ordering::SeqCst);
    assert!(answered.is_ok(), "no answer to an oversized chunked body");
    assert_raw_problem(&out, 413, "body-too-large");
    assert!(
        sent_at_answer < TOTAL,
        "the 413 came only after all {TOTAL} bytes were sent"
    );
    // The gateway stops reading: the rest can never all be delivered.
    let rest = tokio::time::timeout(PATIENCE, writer).await;
    let finished_ok = matches!(rest, Ok(Ok(Ok(()))));
    assert!(!finished_ok, "the gateway swallowed the whole 64 MiB body");
    drop(rd);
    eprintln!(
        "oversized chunked: 413 after {} KiB sent",
        sent_at_answer / 1024
    );

    // A declared length over the limit is refused before any body byte is read.
    let (raw, _) = super::send_raw(gw.addr, &with_length(BUFFERED, 64 << 20), PATIENCE).await;
    assert_raw_problem(&raw, 413, "body-too-large");
    bystander.finish("oversized chunked body").await;
    assert!(up.seen().is_empty(), "an oversized job was sent upstream");
}

/// Sends `head` (Content-Length 1000) plus 10 body bytes, then closes the write half and
/// reads the answer.
async fn stop_mid_way(gw: &Gateway, head: &[u8]) -> (Vec<u8>, Ended) {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(&with_length(head, 1000)).await.unwrap();
    s.write_all(b"{\"a\":1234").await.unwrap();
    s.shutdown().await.unwrap();
    wire::read_until_closed(&mut s, PATIENCE).await
}

#[tokio::test]
async fn a_body_that_stops_mid_way_is_a_problem_and_never_reaches_the_upstream_whole() {
    let (up, alive) = (healthy_upstream().await, healthy_upstream().await);
    let gw = gateway(&up, &alive).await;
    let bystander = Bystander::start(gw.addr);
    for _ in 0..10 {
        // Buffered: the body cannot be read → 400 problem, no job.
        let (raw, ended) = stop_mid_way(&gw, BUFFERED).await;
        assert_ne!(ended, Ended::StillOpen);
        assert_raw_problem(&raw, 400, "bad-request-body");
        // Streamed: the upstream request is aborted; the client's fault, so a 400 (not a
        // 502 blaming the upstream).
        let (raw, ended) = stop_mid_way(&gw, STREAMED).await;
        assert_ne!(ended, Ended::StillOpen);
        assert_raw_problem(&raw, 400, "bad-request-body");
        // And a client that vanishes altogether (no one to answer).
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(&with_length(STREAMED, 1000)).await.unwrap();
        s.write_all(b"0123456789").await.unwrap();
        drop(s);
    }
    bystander.finish("bodies that stop").await;
    assert!(
        up.seen().iter().all(|s| s.body.len() < 1000),
        "a truncated body reached the upstream as a complete request"
    );
}

#[tokio::test]
async fn a_body_that_stops_and_stays_open_is_a_408_problem_at_the_idle_timeout() {
    let (up, alive) = (healthy_upstream().await, healthy_upstream().await);
    let gw = gateway(&up, &alive).await;
    let bystander = Bystander::start(gw.addr);
    let started = Instant::now();
    let stalled: Vec<_> = [BUFFERED, STREAMED]
        .into_iter()
        .map(|head| async move {
            let mut req = with_length(head, 1000);
            req.extend_from_slice(b"0123456789");
            super::send_raw(gw.addr, &req, PATIENCE).await
        })
        .collect();
    for (raw, ended) in futures_util::future::join_all(stalled).await {
        assert_ne!(ended, Ended::StillOpen, "a stalled body was held open");
        assert_raw_problem(&raw, 408, "body-timeout");
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "cut early");
    bystander.finish("stalled bodies").await;
}
