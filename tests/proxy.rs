//! `proxy` routes (and `sync` routes without an execution preference, which are plain
//! streaming proxies too) over real sockets: what reaches the upstream and what comes back,
//! hop-by-hop hygiene in both directions, `X-Forwarded-*` / `Via`, request ids, 100 MiB
//! uploads and downloads in flat memory, pooled keep-alive, 502 / 504, upstream path
//! prefixes, the router's 404 / 405 and catch-all patterns, h2c, and that every
//! gateway-made error is `application/problem+json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use support::wire::{self, assert_problem, FixedUpstream, RawResponse};
use support::{client, header_map, reply, Gateway, Seen, Upstream};

const MIB: usize = 1024 * 1024;
/// Chunks of 1 MiB in each streaming transfer (100 MiB in all).
const CHUNKS: usize = 100;
/// Largest RSS growth a 100 MiB transfer may cause: buffering it would cost ≥ 100 MiB.
const FLAT_MEMORY_MIB: u64 = 64;

/// One route of `kind` on `path` for `methods` (TOML array body), to `upstream`.
fn route(name: &str, kind: &str, methods: &str, path: &str, upstream: &str) -> String {
    format!(
        r#"
[[routes]]
name = "{name}"
kind = "{kind}"
methods = [{methods}]
path = "{path}"
upstream = "{upstream}"
"#
    )
}

const ALL: &str = r#""GET", "POST", "PUT", "PATCH", "DELETE""#;

/// A gateway with one catch-all route of `kind` in front of `up`.
async fn catch_all(kind: &str, up: &str) -> Gateway {
    let config = format!(
        "{IN_MEMORY_JOBS}{}",
        route("all", kind, ALL, "/{*rest}", "{up}")
    );
    Gateway::start(&config, up).await
}

/// Keeps `sync` routes off the default on-disk job store.
const IN_MEMORY_JOBS: &str = "[jobs]\nstore = \"memory\"\n";

/// An upstream that answers 200 `{"ok":true}` to everything.
async fn ok_upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, r#"{"ok":true}"#, &[]) }).await
}

// === what goes up, what comes back ===

/// `prefer` is sent; `forwarded` is what the upstream must get; `vary` whether the answer
/// carries `Vary: Prefer` (routes where `Prefer` can change the answer, behaviour §3).
async fn end_to_end_through(kind: &str, prefer: &str, forwarded: &str, vary: bool) {
    let up = Upstream::start(|_s: Seen| async {
        reply(
            201,
            r#"{"created":true}"#,
            &[
                ("x-up", "yes"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
        )
    })
    .await;
    let gw = catch_all(kind, &up.url()).await;
    let resp = client()
        .post(gw.url("/v1/things/42?a=1&b=two%20words"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer t0k3n")
        .header("x-custom", "value")
        .header("x-multi", "one")
        .header("x-multi", "two")
        .header("prefer", prefer)
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), 201, "{kind}");
    let h = header_map(resp.headers());
    assert_eq!(h["x-up"], "yes", "{kind}");
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies,
        ["a=1", "b=2"],
        "{kind}: repeated response headers survive"
    );
    assert!(
        !h.contains_key("preference-applied"),
        "{kind}: nothing was applied: {h:?}"
    );
    let varies = h
        .get("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("prefer"));
    assert_eq!(varies, vary, "{kind}: Vary: Prefer: {h:?}");
    assert_eq!(resp.text().await.unwrap(), r#"{"created":true}"#, "{kind}");

    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{kind}");
    let s = &seen[0];
    assert_eq!(s.method, "POST", "{kind}");
    assert_eq!(s.uri, "/v1/things/42?a=1&b=two%20words", "{kind}");
    assert_eq!(s.body, r#"{"hello":"world"}"#, "{kind}");
    assert_eq!(s.headers["content-type"], "application/json", "{kind}");
    assert_eq!(s.headers["authorization"], "Bearer t0k3n", "{kind}");
    assert_eq!(s.headers["x-custom"], "value", "{kind}");
    let multi: Vec<_> = s.headers.get_all("x-multi").iter().collect();
    assert_eq!(
        multi,
        ["one", "two"],
        "{kind}: repeated request headers survive"
    );
    assert_eq!(s.headers["prefer"], forwarded, "{kind}: forwarded Prefer");
    assert_eq!(
        s.headers["host"],
        up.addr.to_string(),
        "{kind}: Host is the upstream's"
    );
}

#[tokio::test]
async fn a_proxy_route_forwards_everything_and_returns_the_answer_as_it_is() {
    let prefer = "respond-async, wait=5, return=minimal";
    end_to_end_through("proxy", prefer, prefer, false).await;
}

#[tokio::test]
async fn a_sync_route_without_an_execution_preference_is_a_plain_proxy() {
    // DEFAULT on a `sync` route streams through (behaviour §5); other preferences are
    // forwarded unchanged and nothing is applied, but the answer varies on Prefer.
    end_to_end_through("sync", "return=minimal", "return=minimal", true).await;
}

#[tokio::test]
async fn every_method_reaches_the_upstream_with_its_own_method() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let resp = client().request(method, gw.url("/m")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{m}");
    }
    let methods: Vec<String> = up.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "POST", "PUT", "PATCH", "DELETE"]);
}

#[tokio::test]
async fn upstream_error_statuses_are_passed_through_not_turned_into_problems() {
    let up = Upstream::start(|_s: Seen| async {
        reply(503, r#"{"upstream":"down"}"#, &[("retry-after", "7")])
    })
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let resp = client().get(gw.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let h = header_map(resp.headers());
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["retry-after"], "7");
    assert_eq!(resp.text().await.unwrap(), r#"{"upstream":"down"}"#);
}

// === hop-by-hop headers ===

#[tokio::test]
async fn hop_by_hop_headers_are_removed_in_both_directions() {
    let up = Upstream::start(|_s: Seen| async {
        reply(
            200,
            r#"{"ok":true}"#,
            &[
                ("connection", "x-up-secret"),
                ("x-up-secret", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-authenticate", "Basic realm=up"),
                ("x-up-kept", "yes"),
            ],
        )
    })
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let request = "GET /hop HTTP/1.1\r\n\
        Host: client.example\r\n\
        Connection: close, X-Secret\r\n\
        X-Secret: 1\r\n\
        Keep-Alive: timeout=5\r\n\
        TE: trailers\r\n\
        Proxy-Authorization: Basic c2VjcmV0\r\n\
        Proxy-Connection: keep-alive\r\n\
        X-Kept: yes\r\n\
        \r\n";
    let raw = wire::exchange(gw.addr, request.as_bytes()).await;
    let resp = RawResponse::parse(&raw).unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&raw));

    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the upstream: {h:?}");
    }
    if let Some(c) = h.get("connection") {
        let c = c.to_str().unwrap().to_ascii_lowercase();
        assert!(
            !c.contains("x-secret") && !c.contains("close"),
            "client Connection leaked: {c}"
        );
    }
    assert_eq!(h["x-kept"], "yes");

    for gone in ["x-up-secret", "keep-alive", "proxy-authenticate"] {
        assert!(
            !resp.has(gone),
            "{gone} reached the client: {:?}",
            resp.headers
        );
    }
    if let Some(c) = resp.header("connection") {
        assert!(
            !c.to_ascii_lowercase().contains("x-up-secret"),
            "upstream Connection leaked: {c}"
        );
    }
    assert_eq!(resp.header("x-up-kept"), Some("yes"));
    assert_eq!(resp.body, br#"{"ok":true}"#);
}

#[tokio::test]
async fn every_connection_header_line_counts_for_hop_by_hop_removal() {
    // Raw on both sides: hyper would fold several `Connection` lines into one.
    let up = FixedUpstream::start(
        b"HTTP/1.1 200 OK\r\n\
          Connection: x-up-a\r\n\
          Connection: x-up-b\r\n\
          X-Up-A: 1\r\n\
          X-Up-B: 1\r\n\
          Content-Length: 2\r\n\
          \r\n{}",
    )
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let request = "GET /two-lines HTTP/1.1\r\n\
        Host: x\r\n\
        Connection: close\r\n\
        Connection: X-Secret-A\r\n\
        Connection: X-Secret-B\r\n\
        X-Secret-A: 1\r\n\
        X-Secret-B: 1\r\n\
        \r\n";
    let raw = wire::exchange(gw.addr, request.as_bytes()).await;
    let resp = RawResponse::parse(&raw).unwrap();
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&raw));
    let sent_up = up.heads().concat().to_ascii_lowercase();
    let mut leaks = Vec::new();
    for gone in ["x-secret-a", "x-secret-b"] {
        if sent_up.contains(&format!("\r\n{gone}:")) {
            leaks.push(format!("{gone} reached the upstream"));
        }
    }
    for gone in ["x-up-a", "x-up-b"] {
        if resp.has(gone) {
            leaks.push(format!("{gone} reached the client"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{leaks:?}\nupstream got:\n{sent_up}\nclient got {:?}",
        resp.headers
    );
}

#[tokio::test]
async fn expect_100_continue_is_answered_by_the_gateway_and_not_forwarded() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start(|s: Seen| async move {
        reply(
            200,
            &format!(r#"{{"got":"{}"}}"#, String::from_utf8_lossy(&s.body)),
            &[],
        )
    })
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut interim = Vec::new();
    let mut buf = [0u8; 1024];
    while !interim.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        .expect("no 100 Continue from the gateway")
        .unwrap();
        assert!(
            n > 0,
            "closed before 100 Continue: {}",
            String::from_utf8_lossy(&interim)
        );
        interim.extend_from_slice(&buf[..n]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    s.write_all(b"hello").await.unwrap();
    let (rest, _) = wire::read_until_closed(&mut s, Duration::from_secs(10)).await;
    let all = [interim, rest].concat();
    let start = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let resp = RawResponse::parse(&all[start..]).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, br#"{"got":"hello"}"#);
    let seen = up.seen();
    assert!(
        !seen[0].headers.contains_key("expect"),
        "Expect is hop-level: {:?}",
        seen[0].headers
    );
}

// === X-Forwarded-*, Via ===

#[tokio::test]
async fn forwarded_headers_are_appended_or_overwritten_and_via_is_added_both_ways() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let resp = client()
        .get(gw.url("/fwd"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "spoofed.example")
        .header("via", "1.0 edge")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let via = header_map(resp.headers())["via"].clone();
    assert!(via.contains("1.1 prefer-gateway"), "response Via: {via}");

    let resp = client().get(gw.url("/fwd2")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let seen = up.seen();
    let h = &seen[0].headers;
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(
        h["x-forwarded-proto"], "http",
        "a client cannot spoof the scheme"
    );
    assert_eq!(
        h["x-forwarded-host"],
        gw.addr.to_string(),
        "the client's own Host"
    );
    let via = h["via"].to_str().unwrap();
    assert!(via.starts_with("1.0 edge"), "the chain is kept: {via}");
    assert!(via.contains("1.1 prefer-gateway"), "request Via: {via}");

    let h = &seen[1].headers;
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.addr.to_string());
    assert!(h["via"].to_str().unwrap().contains("1.1 prefer-gateway"));
}

#[tokio::test]
async fn x_forwarded_host_is_the_host_the_client_sent() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let raw = wire::exchange(
        gw.addr,
        b"GET /h HTTP/1.1\r\nHost: api.example:8443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(RawResponse::parse(&raw).unwrap().status, 200);
    let seen = up.seen();
    assert_eq!(seen[0].headers["x-forwarded-host"], "api.example:8443");
    assert_eq!(seen[0].headers["host"], up.addr.to_string());
}

#[tokio::test]
async fn repeated_x_forwarded_for_and_via_lines_are_all_kept() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let request = "GET /chain HTTP/1.1\r\n\
        Host: x\r\n\
        X-Forwarded-For: 198.51.100.1\r\n\
        X-Forwarded-For: 203.0.113.2\r\n\
        Via: 1.1 first\r\n\
        Via: 1.1 second\r\n\
        Connection: close\r\n\
        \r\n";
    let raw = wire::exchange(gw.addr, request.as_bytes()).await;
    assert_eq!(RawResponse::parse(&raw).unwrap().status, 200);
    let h = &up.seen()[0].headers;
    let join = |name: &str| {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let got = (join("x-forwarded-for"), join("via"));
    let want = (
        "198.51.100.1, 203.0.113.2, 127.0.0.1".to_owned(),
        "1.1 first, 1.1 second, 1.1 prefer-gateway".to_owned(),
    );
    assert_eq!(got, want, "(X-Forwarded-For, Via) the upstream saw");
}

#[tokio::test]
async fn head_requests_get_the_upstream_head_without_a_body() {
    let up =
        Upstream::start(|_s: Seen| async { reply(200, r#"{"some":"body"}"#, &[("x-up", "yes")]) })
            .await;
    let gw = Gateway::start(
        &route("head", "proxy", r#""HEAD", "GET""#, "/{*rest}", "{up}"),
        &up.url(),
    )
    .await;
    let resp = client().head(gw.url("/h")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    assert_eq!(h["x-up"], "yes");
    assert_eq!(resp.bytes().await.unwrap().len(), 0);
    assert_eq!(up.seen()[0].method, "HEAD");
    // The connection is still usable after a HEAD (no stray body bytes on it).
    let raw = wire::exchange(
        gw.addr,
        b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.ends_with(r#"{"some":"body"}"#), "{text}");
}

// === X-Request-Id ===

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_sane_client_request_id_is_kept_forwarded_and_echoed() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let resp = client()
        .get(gw.url("/id"))
        .header("x-request-id", "client-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&resp), "client-id-123");
    assert_eq!(up.seen()[0].headers["x-request-id"], "client-id-123");
}

#[tokio::test]
async fn a_missing_request_id_is_generated_forwarded_and_echoed() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let first = client().get(gw.url("/id")).send().await.unwrap();
    let second = client().get(gw.url("/id")).send().await.unwrap();
    let (a, b) = (request_id(&first), request_id(&second));
    assert!(!a.is_empty());
    assert_ne!(a, b, "every request gets its own id");
    let seen = up.seen();
    assert_eq!(seen[0].headers["x-request-id"], a.as_str());
    assert_eq!(seen[1].headers["x-request-id"], b.as_str());
}

#[tokio::test]
async fn a_garbage_request_id_is_replaced() {
    let up = ok_upstream().await;
    let gw = catch_all("proxy", &up.url()).await;
    let garbage = "a".repeat(300);
    let resp = client()
        .get(gw.url("/id"))
        .header("x-request-id", &garbage)
        .send()
        .await
        .unwrap();
    let id = request_id(&resp);
    assert_ne!(id, garbage);
    assert!(!id.is_empty() && id.len() <= 200, "{id}");
    let seen = up.seen();
    let forwarded: Vec<_> = seen[0].headers.get_all("x-request-id").iter().collect();
    assert_eq!(
        forwarded,
        [id.as_str()],
        "only the replacement goes upstream"
    );
}

// === a dedicated upstream that streams and counts connections ===

type RespBody = BoxBody<Bytes, std::io::Error>;

fn full_body(s: String) -> RespBody {
    Full::new(Bytes::from(s))
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A hyper HTTP/1.1 upstream that hands the raw streaming request to `f` and counts
/// accepted TCP connections.
struct RawUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    async fn start<F, Fut>(f: F) -> RawUpstream
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<RespBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let f = f.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let f = f.clone();
                        async move { Ok::<_, Infallible>(f(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RawUpstream {
            addr,
            connections,
            task,
        }
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

// === flat memory ===

/// Serialises the two 100 MiB tests: RSS is per process and tests share the process.
static BIG_TRANSFER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// Watches the process RSS during a transfer: the peak (VmHWM after a reset, and a 10 ms
/// VmRSS sampler in case the reset is not permitted) minus the RSS at the start.
struct MemoryWatch {
    baseline_kib: u64,
    hwm_reset: bool,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl MemoryWatch {
    fn start() -> MemoryWatch {
        // "5" resets the peak RSS (VmHWM) to the current RSS (proc(5), clear_refs).
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let baseline_kib = status_kib("VmRSS");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(status_kib("VmRSS"));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        MemoryWatch {
            baseline_kib,
            hwm_reset,
            stop,
            sampler,
        }
    }

    fn growth_mib(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.sampler.join().unwrap().max(status_kib("VmRSS"));
        let peak = if self.hwm_reset {
            sampled.max(status_kib("VmHWM"))
        } else {
            sampled
        };
        peak.saturating_sub(self.baseline_kib) / 1024
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_upload_streams_through_proxy_and_sync_routes_in_flat_memory() {
    let _one_at_a_time = BIG_TRANSFER.lock().await;
    let up = RawUpstream::start(|req: Request<Incoming>| async move {
        let mut body = req.into_body();
        let (mut bytes, mut frames) = (0usize, 0usize);
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        bytes += d.len();
                        frames += 1;
                    }
                }
                Err(_) => break,
            }
        }
        Response::new(full_body(format!(
            r#"{{"bytes":{bytes},"frames":{frames}}}"#
        )))
    })
    .await;
    for kind in ["proxy", "sync"] {
        let gw = catch_all(kind, &up.url()).await;

        let watch = MemoryWatch::start();
        let chunks = futures_util::stream::iter(0..CHUNKS)
            .map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![(i % 251) as u8; MIB])));
        let resp = client()
            .put(gw.url("/upload"))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let counted: serde_json::Value = resp.json().await.unwrap();
        let growth = watch.growth_mib();

        assert_eq!(
            counted["bytes"],
            CHUNKS * MIB,
            "{kind}: every byte reached the upstream"
        );
        assert!(
            counted["frames"].as_u64().unwrap() > 1,
            "{kind}: the upstream got it in pieces"
        );
        assert!(
            growth < FLAT_MEMORY_MIB,
            "{kind}: RSS grew by {growth} MiB during a 100 MiB upload"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_download_streams_through_proxy_and_sync_routes_in_flat_memory() {
    let _one_at_a_time = BIG_TRANSFER.lock().await;
    let up = RawUpstream::start(|_req: Request<Incoming>| async move {
        let frames = futures_util::stream::iter(0..CHUNKS)
            .map(|i| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![(i % 251) as u8; MIB]))));
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
        r.headers_mut()
            .insert("content-type", "application/octet-stream".parse().unwrap());
        r
    })
    .await;
    for kind in ["proxy", "sync"] {
        let gw = catch_all(kind, &up.url()).await;

        let watch = MemoryWatch::start();
        let mut resp = client().get(gw.url("/download")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let (mut bytes, mut chunks) = (0usize, 0usize);
        while let Some(chunk) = resp.chunk().await.unwrap() {
            bytes += chunk.len();
            chunks += 1;
        }
        let growth = watch.growth_mib();

        assert_eq!(bytes, CHUNKS * MIB, "{kind}: every byte reached the client");
        assert!(chunks > 1, "{kind}: the client got it in pieces");
        assert!(
            growth < FLAT_MEMORY_MIB,
            "{kind}: RSS grew by {growth} MiB during a 100 MiB download"
        );
    }
}

// === pooled keep-alive ===

#[tokio::test]
async fn sequential_requests_reuse_pooled_upstream_connections() {
    let up = RawUpstream::start(|req: Request<Incoming>| async move {
        let _ = req.into_body().collect().await;
        Response::new(full_body("pong".into()))
    })
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let c = client();
    for i in 0..50 {
        let resp = c.get(gw.url(&format!("/ping/{i}"))).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "pong");
    }
    let conns = up.connections.load(Ordering::SeqCst);
    assert!(
        conns <= 2,
        "50 sequential requests opened {conns} upstream connections"
    );
}

// === upstream failures ===

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_problem() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let gw = catch_all("proxy", &format!("http://{dead}")).await;
    let resp = client().get(gw.url("/x")).send().await.unwrap();
    assert!(
        resp.headers().contains_key("x-request-id"),
        "problems carry the request id too"
    );
    assert_problem(resp, 502, "upstream-unreachable").await;
}

#[tokio::test]
async fn an_upstream_slower_than_upstream_timeout_is_a_504_problem() {
    let up = Upstream::start(|_s: Seen| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        reply(200, "{}", &[])
    })
    .await;
    for kind in ["proxy", "sync"] {
        let config = format!(
            "{IN_MEMORY_JOBS}[defaults]\nupstream_timeout = \"300ms\"\n{}",
            route("slow", kind, ALL, "/{*rest}", "{up}")
        );
        let gw = Gateway::start(&config, &up.url()).await;
        let resp = client().get(gw.url("/slow")).send().await.unwrap();
        assert_problem(resp, 504, "upstream-timeout").await;
    }
}

#[tokio::test]
async fn a_body_that_streams_past_upstream_timeout_is_not_cut() {
    let up = RawUpstream::start(|_req: Request<Incoming>| async move {
        let frames = futures_util::stream::iter(0..6).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(format!("part{i};"))))
        });
        Response::new(BodyExt::boxed(StreamBody::new(frames)))
    })
    .await;
    let config = format!(
        "[defaults]\nupstream_timeout = \"300ms\"\n{}",
        route("slow-body", "proxy", ALL, "/{*rest}", "{up}")
    );
    let gw = Gateway::start(&config, &up.url()).await;
    let resp = client().get(gw.url("/trickle")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the head came at once");
    assert_eq!(
        resp.text().await.unwrap(),
        "part0;part1;part2;part3;part4;part5;"
    );
}

// === upstream path prefix ===

#[tokio::test]
async fn an_upstream_path_prefix_is_put_in_front_of_the_request_path() {
    let up = ok_upstream().await;
    let config = route("p", "proxy", r#""GET""#, "/the/{*rest}", "{up}/base");
    let gw = Gateway::start(&config, &up.url()).await;
    let resp = client().get(gw.url("/the/path?q=1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.seen()[0].uri, "/base/the/path?q=1");
}

// === router ===

async fn router_gateway(up: &Upstream) -> Gateway {
    let config = [
        route("item-get", "proxy", r#""GET""#, "/items/{id}", "{up}"),
        route("item-delete", "proxy", r#""DELETE""#, "/items/{id}", "{up}"),
        route("files", "proxy", r#""GET""#, "/files/{*rest}", "{up}"),
    ]
    .concat();
    Gateway::start(&config, &up.url()).await
}

#[tokio::test]
async fn an_unknown_path_is_a_404_problem() {
    let up = ok_upstream().await;
    let gw = router_gateway(&up).await;
    for path in ["/nope", "/items", "/items/1/extra", "/"] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_problem(resp, 404, "no-route").await;
    }
    assert!(up.seen().is_empty(), "nothing was forwarded");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_listing_every_method_of_the_path() {
    let up = ok_upstream().await;
    let gw = router_gateway(&up).await;
    for method in [
        reqwest::Method::PATCH,
        reqwest::Method::POST,
        reqwest::Method::PUT,
    ] {
        let resp = client()
            .request(method.clone(), gw.url("/items/7"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            header_map(resp.headers())["allow"],
            "DELETE, GET",
            "{method}"
        );
        assert_problem(resp, 405, "method-not-allowed").await;
    }
    assert!(up.seen().is_empty(), "nothing was forwarded");

    let get = client().get(gw.url("/items/7")).send().await.unwrap();
    let delete = client().delete(gw.url("/items/7")).send().await.unwrap();
    assert_eq!(
        (get.status().as_u16(), delete.status().as_u16()),
        (200, 200)
    );
    let seen: Vec<(String, String)> = up.seen().into_iter().map(|s| (s.method, s.uri)).collect();
    assert_eq!(
        seen,
        [
            ("GET".into(), "/items/7".into()),
            ("DELETE".into(), "/items/7".into())
        ]
    );
}

#[tokio::test]
async fn a_catch_all_pattern_matches_any_depth() {
    let up = ok_upstream().await;
    let gw = router_gateway(&up).await;
    for path in ["/files/a", "/files/a/b/c.txt", "/files/x/y?z=1"] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let uris: Vec<String> = up.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(uris, ["/files/a", "/files/a/b/c.txt", "/files/x/y?z=1"]);
}

// === HTTP/2 cleartext ===

#[tokio::test]
async fn h2c_prior_knowledge_requests_are_proxied() {
    let up = Upstream::start(|s: Seen| async move {
        reply(
            200,
            &format!(r#"{{"got":{}}}"#, s.body.len()),
            &[("x-up", "yes")],
        )
    })
    .await;
    let gw = catch_all("proxy", &up.url()).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    let resp = h2
        .get(gw.url("/h2/get?x=1"))
        .header("x-custom", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    assert_eq!(h["x-up"], "yes");
    assert!(h["via"].contains("prefer-gateway"), "{h:?}");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(resp.text().await.unwrap(), r#"{"got":0}"#);

    let resp = h2
        .post(gw.url("/h2/post"))
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), r#"{"got":100000}"#);

    let resp = h2.get(gw.url("/h2/third")).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", "/h2/get?x=1")
    );
    assert_eq!(seen[0].headers["x-custom"], "v");
    assert_eq!(seen[0].headers["host"], up.addr.to_string());
    assert_eq!(
        seen[0].headers["x-forwarded-host"],
        gw.addr.to_string(),
        ":authority"
    );
    assert!(seen[0].headers["via"]
        .to_str()
        .unwrap()
        .contains("prefer-gateway"));
    assert_eq!(
        (seen[1].method.as_str(), seen[1].body.len()),
        ("POST", 100_000)
    );
}

#[tokio::test]
async fn h2c_errors_are_problems_too() {
    let up = ok_upstream().await;
    let gw = router_gateway(&up).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2.get(gw.url("/nope")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_problem(resp, 404, "no-route").await;
    let resp = h2.patch(gw.url("/items/1")).send().await.unwrap();
    assert_problem(resp, 405, "method-not-allowed").await;
}
