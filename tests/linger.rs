//! Lingering close (issue 13, "Edge courtesy"), black-box over real loopback sockets.
//!
//! A client that sends a request body without `Expect: 100-continue` and only reads once
//! it has written it (Python's `http.client`, many SDKs) must be able to read the `413`,
//! `400` or `408` answered mid-body, instead of having its upload reset under it. The
//! clients here are raw TCP sockets with a small send buffer (so the kernel cannot hide the
//! server's behaviour by buffering the whole upload): each sends its head, keeps writing
//! body bytes, and asserts
//!
//! - that 512 KiB written after the answer were accepted (drained, not reset), and
//! - that the complete answer can be read afterwards.
//!
//! Cases: an oversized declared body (buffered job submit → `413`), a broken chunked body
//! (`400`), a client that pauses past `body_idle_timeout` and then resumes (`408`), a proxy
//! upstream that answers `413` before reading the body, and the `413` over TLS.
//!
//! Before lingering close every one of these uploads was reset after 16–160 KiB (`EPIPE`).
//! (On Linux the answer could still be read after the reset: the kernel keeps received
//! data; Windows and BSD clients may not, and clients that stop at the write error never
//! look.) The drain is bounded: a client that never stops sending, fast or slow, has its
//! connection closed; the assertions are upper bounds far above the gateway's (1 MiB, 2 s),
//! so a slow machine cannot fail them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use support::wire::{assert_problem_doc, RawResponse};
use support::{reply, Gateway, Seen, Upstream};

/// The longest any single answer may take before a test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(10);
/// What the gateway must accept after answering, from a client still sending its body:
/// well under the drain's byte bound, well over what kernel buffers absorb on their own.
const ACCEPTED: usize = 512 * 1024;
/// Upper bounds for a client that never stops sending. Time: ten times the drain's 2 s.
/// Bytes: the drain's 1 MiB plus what kernel buffers can hold when it ends (the receive
/// buffer auto-tunes up to `tcp_rmem`'s maximum, 32 MiB on some hosts), rounded up.
const TIME_BOUND: Duration = Duration::from_secs(20);
const BYTES_BOUND: usize = 64 << 20;

/// A sync route `/v1/render` buffering at most 1 MiB, with a 1 s body idle timeout.
async fn gateway(up: &Upstream) -> Gateway {
    Gateway::start(&config("", ""), &up.url()).await
}

/// [`gateway`]'s config, with `server_extra` lines in `[server]` and `routes` appended.
fn config(server_extra: &str, routes: &str) -> String {
    format!(
        r#"
[server]
body_idle_timeout = "1s"
{server_extra}

[jobs]
store = "memory"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
max_body = "1MiB"

{routes}
"#
    )
}

async fn upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, "{}", &[]) }).await
}

/// An async job submission (the body is buffered, so an oversized one is a `413`).
const HEAD: &str = "POST /v1/render HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n\
                    Content-Type: application/json\r\n";

/// A connection whose send buffer is small (16 KiB asked, the kernel doubles it).
async fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Writes `total` body bytes in 16 KiB pieces (`None` = forever) with `pause` between
/// pieces; stops at the first write error. Returns what was written and the error.
async fn upload<S: AsyncWrite + Unpin>(
    s: &mut S,
    total: Option<usize>,
    pause: Duration,
) -> (usize, Option<io::Error>) {
    let piece = vec![b'x'; 16 * 1024];
    let mut written = 0;
    while total.is_none_or(|t| written < t) {
        let n = total.map_or(piece.len(), |t| piece.len().min(t - written));
        if let Err(e) = s.write_all(&piece[..n]).await {
            return (written, Some(e));
        }
        written += n;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    (written, None)
}

/// Reads until a complete response (`Content-Length` framed) is in, the connection ends,
/// or [`PATIENCE`] passes.
async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(PATIENCE, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            if complete(&out) {
                return;
            }
        }
    })
    .await;
    out
}

fn complete(raw: &[u8]) -> bool {
    let Some(resp) = RawResponse::parse(raw) else {
        return false;
    };
    resp.header("content-length")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| resp.body.len() >= n)
}

fn assert_raw_problem(raw: &[u8], status: u16, slug: &str) {
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
}

/// The client goes on writing [`ACCEPTED`] bytes after the gateway answered; every write
/// must succeed. Then it keeps writing (errors are fine now: the drain is bounded) and
/// reads the answer.
async fn write_then_read<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, case: &str) -> Vec<u8> {
    let (written, err) = upload(s, Some(ACCEPTED), Duration::ZERO).await;
    eprintln!("{case}: {} KiB written, error: {err:?}", written / 1024);
    assert!(
        err.is_none(),
        "{case}: the gateway reset the upload after {} KiB: {err:?}",
        written / 1024
    );
    let (more, err) = upload(s, Some(8 << 20), Duration::ZERO).await;
    eprintln!("{case}: then {} KiB more, error: {err:?}", more / 1024);
    read_answer(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_without_expect_gets_its_413_not_a_reset() {
    let up = upstream().await;
    let gw = gateway(&up).await;
    let mut s = connect(gw.addr).await;
    let head = format!("{HEAD}Content-Length: {}\r\n\r\n", 64 << 20);
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = write_then_read(&mut s, "413").await;
    assert_raw_problem(&raw, 413, "body-too-large");
    assert!(
        up.seen().is_empty(),
        "an oversized job reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunked_body_gets_its_400_while_the_client_still_sends() {
    let up = upstream().await;
    let gw = gateway(&up).await;
    let mut s = connect(gw.addr).await;
    // One good chunk, then a chunk size that is not hex: hyper fails the body → 400.
    let req = format!("{HEAD}Transfer-Encoding: chunked\r\n\r\n4\r\n{{\"a\"\r\nzz\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let raw = write_then_read(&mut s, "400").await;
    assert_raw_problem(&raw, 400, "bad-request-body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resumes_after_a_408_can_still_read_it() {
    let up = upstream().await;
    let gw = gateway(&up).await;
    let mut s = connect(gw.addr).await;
    // Within max_body, but 10 bytes and then a pause past the 1 s body idle timeout.
    let head = format!("{HEAD}Content-Length: {}\r\n\r\n0123456789", 768 * 1024);
    s.write_all(head.as_bytes()).await.unwrap();
    // Wait for the 408 to arrive (without reading it), then send the rest of the body.
    tokio::time::timeout(PATIENCE, s.readable())
        .await
        .expect("no 408 at the idle timeout")
        .unwrap();
    let raw = write_then_read(&mut s, "408").await;
    assert_raw_problem(&raw, 408, "body-timeout");
}

/// A raw upstream that reads a request head, answers `413` at once (before the body) with
/// `Connection: close`, and closes its socket, as a size-limited backend does. It lingers
/// itself a little (64 KiB, at most 2 s) so that the gateway's upstream client reads the
/// answer before the reset: without that, the client's body write can hit the reset first
/// and the gateway answers `502` — the same race, one hop further.
async fn early_answering_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"error":"too large for this backend"}"#;
                let resp = format!(
                    "HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
                let mut drained = 0;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while drained < 64 * 1024 {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => drained += n,
                        }
                    }
                })
                .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_answer_before_the_body_reaches_a_client_still_sending() {
    let up = upstream().await;
    let early = early_answering_upstream().await;
    let route = format!(
        "[[routes]]\nname = \"files\"\nkind = \"proxy\"\nmethods = [\"PUT\"]\n\
         path = \"/files/{{*rest}}\"\nupstream = \"http://{early}\"\n"
    );
    let gw = Gateway::start(&config("", &route), &up.url()).await;
    let mut s = connect(gw.addr).await;
    let head = format!(
        "PUT /files/big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        64 << 20
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = write_then_read(&mut s, "proxied 413").await;
    let resp = RawResponse::parse(&raw)
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&raw)));
    assert_eq!(resp.status, 413, "{resp:?}");
    assert_eq!(resp.body, br#"{"error":"too large for this backend"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_stops_sending_is_cut_off_within_the_bounds() {
    let up = upstream().await;
    let gw = gateway(&up).await;
    let head = format!("{HEAD}Content-Length: {}\r\n\r\n", 1u64 << 40);

    // As fast as it can: the byte bound ends it.
    let mut s = connect(gw.addr).await;
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (written, err) = tokio::time::timeout(TIME_BOUND, upload(&mut s, None, Duration::ZERO))
        .await
        .expect("a fast endless upload was drained for 20 s");
    eprintln!(
        "fast: cut after {} KiB in {:?}: {err:?}",
        written / 1024,
        started.elapsed()
    );
    assert!(written < BYTES_BOUND, "drained {written} bytes");
    assert_raw_problem(&read_answer(&mut s).await, 413, "body-too-large");

    // 16 KiB every 100 ms (160 KiB/s, no gap near the idle limit): the time bound ends it.
    let mut s = connect(gw.addr).await;
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let slow = upload(&mut s, None, Duration::from_millis(100));
    let (written, err) = tokio::time::timeout(TIME_BOUND, slow)
        .await
        .expect("a slow endless upload was drained for 20 s");
    eprintln!(
        "slow: cut after {} KiB in {:?}: {err:?}",
        written / 1024,
        started.elapsed()
    );
    assert_raw_problem(&read_answer(&mut s).await, 413, "body-too-large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_413_is_readable_too() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let up = upstream().await;
    let tls = format!(
        "tls = {{ cert = {:?}, key = {:?} }}",
        fixture("tls-cert.pem"),
        fixture("tls-key.pem")
    );
    let gw = Gateway::start(&config(&tls, ""), &up.url()).await;
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(fixture("tls-ca.pem")).unwrap();
    for cert in rustls_pemfile_certs(&ca) {
        roots.add(cert).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector
        .connect(name, connect(gw.addr).await)
        .await
        .unwrap();
    let head = format!("{HEAD}Content-Length: {}\r\n\r\n", 64 << 20);
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = write_then_read(&mut s, "413 over TLS").await;
    assert_raw_problem(&raw, 413, "body-too-large");
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}
