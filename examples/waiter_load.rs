//! Load client for the "waiter scenario" (`bench/waiters.sh`): N concurrent
//! `Prefer: wait=60` requests parked on a gateway `task` route.
//!
//! Every waiter POSTs `{}` with `Prefer: wait=<--wait>` to the target URL and records the
//! status, `Preference-Applied` and the instant its answer arrived. The upstream is
//! `examples/task_stub.rs`, whose final status body carries `finished_at_ms` (the task's
//! completion instant, Unix epoch ms); the gateway returns that body verbatim on a `200`
//! (`src/task/mod.rs`, `WaitEnd::Terminal`), so *completion → response* is the client's
//! receipt time minus `finished_at_ms` — same machine, same clock.
//!
//! Transport: hyper's connection API straight over tokio `TcpStream`s, on a current-thread
//! runtime, so 18,000 parked connections cost little. HTTP/1.1 uses one connection per
//! waiter; `--h2` opens `--connections` prior-knowledge h2c connections first and spreads
//! the streams over them round-robin.
//!
//! Ramp: waiter i starts at `ramp × i / N`. The gateway polls each operation on a grid
//! anchored at its own 202 (`accepted + k × poll_interval`), so the start times decide
//! when the polls fire; a ramp of whole poll intervals (default 5 s at a 1 s interval)
//! spreads the polls evenly over every second instead of firing N polls in one
//! millisecond, and keeps the connect rate modest (18,000 over 5 s = 3,600/s).
//!
//! Output: one JSON line on stdout — n, ok, errors by kind (any non-200, transport error,
//! timeout, a `Preference-Applied` other than `respond-async, wait=<wait>`, or a 200 body
//! without `finished_at_ms`), the first error's detail per kind (e.g. the 502's problem
//! body), completion → response p50/p99/max ms, request → response p50/max s, and the
//! slowest HTTP/1.1 connect (connects ≥ 1 s mean SYN retransmits). Progress goes to stderr.
//!
//! ```sh
//! waiter_load http://127.0.0.1:8080/v1/tasks --waiters 18000 [--ramp 5] [--wait 60]
//! waiter_load http://127.0.0.1:8080/v1/tasks --waiters 50000 --h2 --connections 100
//! ```
//!
//! `--finish-after-ms MS` sends `x-finish-after-ms: MS`, which the stub honours (warm-ups).
//!
//! `--sources K` (HTTP/1.1, loopback target) binds connection i to `127.0.0.{1 + i % K}`.
//! Every connection to one `ip:port` needs its own local port, and Linux hands `connect()`
//! the even half of `ip_local_port_range` first (14,116 ports with the default 32768–60999);
//! past that each `connect()` scans the used ports in the kernel, the current-thread client
//! stalls in those syscalls, connects take seconds and requests written late are cut by the
//! gateway's header timeout. More source addresses keep each 4-tuple space small.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Slowest HTTP/1.1 TCP connect (ms) and how many took ≥ 1 s (SYN retransmits: the
/// gateway's listen queue was full).
static CONNECT_MS_MAX: AtomicU64 = AtomicU64::new(0);
static SLOW_CONNECTS: AtomicU64 = AtomicU64::new(0);

struct Args {
    url: Uri,
    waiters: usize,
    h2: bool,
    connections: usize,
    sources: u8,
    ramp: Duration,
    wait: u64,
    finish_after_ms: Option<u64>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut url = None;
    let mut args = Args {
        url: Uri::from_static("http://127.0.0.1:8080/v1/tasks"),
        waiters: 1000,
        h2: false,
        connections: 100,
        sources: 1,
        ramp: Duration::from_secs(5),
        wait: 60,
        finish_after_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--waiters" => args.waiters = value()?.parse()?,
            "--h2" => args.h2 = true,
            "--connections" => args.connections = value()?.parse::<usize>()?.max(1),
            "--sources" => args.sources = value()?.parse::<u8>()?.clamp(1, 254),
            "--ramp" => args.ramp = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--wait" => args.wait = value()?.parse()?,
            "--finish-after-ms" => args.finish_after_ms = Some(value()?.parse()?),
            "-h" | "--help" => {
                println!("waiter_load URL [--waiters N] [--h2 [--connections C]] [--sources K] [--ramp SECS] [--wait SECS] [--finish-after-ms MS]");
                std::process::exit(0);
            }
            other if !other.starts_with('-') && url.is_none() => url = Some(other.parse()?),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    args.url = url.ok_or("missing target URL (e.g. http://127.0.0.1:8080/v1/tasks)")?;
    if args.url.scheme_str() != Some("http") || args.url.authority().is_none() {
        return Err("the target URL must be http://host:port/path".into());
    }
    Ok(args)
}

/// How one waiter ended: completion → response in ms, or `kind|detail` (the detail of the
/// first error of each kind is printed in the summary).
type Outcome = Result<f64, String>;

/// An error kind with its detail, cut to 160 characters.
fn err(kind: &str, detail: impl std::fmt::Display) -> String {
    let detail: String = detail.to_string().chars().take(160).collect();
    format!("{kind}|{detail}")
}

/// A short error kind for a failed request: `request_incomplete` (the gateway closed the
/// connection before answering), `request_io_<kind>` (e.g. `ConnectionReset`), ….
fn request_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        return err("request_incomplete", e);
    }
    if e.is_canceled() {
        return err("request_canceled", e);
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return err(&format!("request_io_{:?}", io.kind()), io);
        }
        src = s.source();
    }
    err("request_other", e)
}

fn epoch_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn request(args: &Args) -> Result<Request<Full<Bytes>>, BoxError> {
    let authority = args.url.authority().map_or("", |a| a.as_str()).to_owned();
    // HTTP/2 takes :scheme and :authority from an absolute URI; HTTP/1.1 wants origin form.
    let uri = if args.h2 {
        args.url.clone()
    } else {
        args.url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()?
    };
    let mut b = Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .header("prefer", format!("wait={}", args.wait));
    if !args.h2 {
        b = b.header(HOST, authority);
    }
    if let Some(ms) = args.finish_after_ms {
        b = b.header("x-finish-after-ms", ms.to_string());
    }
    Ok(b.body(Full::new(Bytes::from_static(b"{}")))?)
}

/// Classifies the gateway's answer (see the module doc).
async fn judge(resp: Response<Incoming>, expect_applied: &str) -> Outcome {
    let status = resp.status();
    let applied = resp
        .headers()
        .get("preference-applied")
        .map(|v| v.to_str().unwrap_or("<non-ascii>").to_owned());
    let body = resp.into_body().collect().await;
    let received = epoch_ms_f64();
    let body = body.map_err(|e| err("body", e))?.to_bytes();
    if status != 200 {
        let kind = format!("status_{}", status.as_u16());
        return Err(err(&kind, String::from_utf8_lossy(&body)));
    }
    if applied.as_deref() != Some(expect_applied) {
        return Err(err("applied_mismatch", applied.unwrap_or_default()));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| "body_not_json".to_owned())?;
    let finished = doc
        .get("finished_at_ms")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| "no_finished_at_ms".to_owned())?;
    Ok(received - finished)
}

/// Connects from `127.0.0.{1 + i % sources}` (loopback targets), or lets the kernel pick.
async fn connect(args: &Args, i: usize) -> std::io::Result<TcpStream> {
    let host = args.url.host().unwrap_or("127.0.0.1");
    let port = args.url.port_u16().unwrap_or(80);
    let target = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("target has no address"))?;
    if args.sources <= 1 || !target.ip().is_loopback() || !target.is_ipv4() {
        return TcpStream::connect(target).await;
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    let last = 1 + (i % usize::from(args.sources)) as u8;
    socket.bind(SocketAddr::from(([127, 0, 0, last], 0)))?;
    socket.connect(target).await
}

async fn one_h1(args: &Args, i: usize, req: Request<Full<Bytes>>, expect: &str) -> Outcome {
    let t0 = Instant::now();
    let stream = connect(args, i)
        .await
        .map_err(|e| err(&format!("connect_{:?}", e.kind()), &e))?;
    let ms = t0.elapsed().as_millis() as u64;
    CONNECT_MS_MAX.fetch_max(ms, Relaxed);
    if ms >= 1000 {
        SLOW_CONNECTS.fetch_add(1, Relaxed);
    }
    let _ = stream.set_nodelay(true);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| err("handshake", e))?;
    tokio::spawn(conn);
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| request_error(&e))?;
    judge(resp, expect).await
    // `send` drops here: the connection closes once the answer is read.
}

async fn one_h2(
    mut send: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    expect: &str,
) -> Outcome {
    send.ready().await.map_err(|e| err("h2_closed", e))?;
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| request_error(&e))?;
    judge(resp, expect).await
}

async fn h2_connections(
    args: &Args,
) -> Result<Vec<hyper::client::conn::http2::SendRequest<Full<Bytes>>>, BoxError> {
    let host = args.url.host().unwrap_or("127.0.0.1");
    let port = args.url.port_u16().unwrap_or(80);
    let per_conn = args.waiters.div_ceil(args.connections).max(100);
    let mut senders = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let stream = TcpStream::connect((host, port)).await?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            // Streams allowed before the server's SETTINGS arrive (it allows 100,000).
            .initial_max_send_streams(per_conn)
            .max_concurrent_streams(u32::try_from(per_conn).unwrap_or(u32::MAX))
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(conn);
        senders.push(send);
    }
    Ok(senders)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "null".into()
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let args = std::sync::Arc::new(args);
    let expect = std::sync::Arc::new(format!("respond-async, wait={}", args.wait));
    let senders = if args.h2 {
        h2_connections(&args).await?
    } else {
        Vec::new()
    };
    let start = Instant::now() + Duration::from_millis(50);
    let step = args.ramp.as_secs_f64() / args.waiters.max(1) as f64;
    let budget = Duration::from_secs(args.wait + 30);
    let mut handles = Vec::with_capacity(args.waiters);
    for i in 0..args.waiters {
        let (args, expect) = (args.clone(), expect.clone());
        let sender = senders.get(i % senders.len().max(1)).cloned();
        let at = start + Duration::from_secs_f64(step * i as f64);
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let sent = Instant::now();
            let req = request(&args).map_err(|e| err("build_request", e))?;
            let work = async {
                match sender {
                    Some(s) => one_h2(s, req, &expect).await,
                    None => one_h1(&args, i, req, &expect).await,
                }
            };
            let out = tokio::time::timeout(budget, work)
                .await
                .map_err(|_| "timeout".to_owned())?;
            out.map(|ms| (ms, sent.elapsed().as_secs_f64()))
        }));
    }
    let (h2, connections, ramp_s) = (args.h2, args.connections, args.ramp.as_secs_f64());
    tokio::spawn(async move {
        tokio::time::sleep_until(start + args.ramp).await;
        eprintln!("waiter_load: all {} waiters started", args.waiters);
    });
    let mut latencies = Vec::with_capacity(handles.len());
    let mut totals = Vec::with_capacity(handles.len());
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for h in handles {
        match h.await {
            Ok(Ok((ms, total))) => {
                latencies.push(ms);
                totals.push(total);
            }
            Ok(Err(e)) => {
                let (kind, detail) = e.split_once('|').unwrap_or((&e, ""));
                *errors.entry(kind.to_owned()).or_default() += 1;
                first
                    .entry(kind.to_owned())
                    .or_insert_with(|| detail.to_owned());
            }
            Err(_) => *errors.entry("panic".into()).or_default() += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    let js = |s: &str| serde_json::Value::from(s).to_string();
    let errs: Vec<String> = errors
        .iter()
        .map(|(k, v)| format!("{}:{v}", js(k)))
        .collect();
    let firsts: Vec<String> = first
        .iter()
        .map(|(k, v)| format!("{}:{}", js(k), js(v)))
        .collect();
    let n_err: usize = errors.values().sum();
    let n = latencies.len() + n_err;
    println!(
        concat!(
            r#"{{"n":{},"ok":{},"errors_total":{},"errors":{{{}}},"h2":{},"connections":{},"#,
            r#""ramp_s":{},"completion_to_response_ms":{{"p50":{},"p99":{},"max":{},"min":{}}},"#,
            r#""request_to_response_s":{{"p50":{},"max":{}}},"connect_ms_max":{},"#,
            r#""connects_over_1s":{},"first_error":{{{}}}}}"#
        ),
        n,
        latencies.len(),
        n_err,
        errs.join(","),
        h2,
        if h2 { connections } else { n },
        ramp_s,
        num(percentile(&latencies, 0.50)),
        num(percentile(&latencies, 0.99)),
        num(latencies.last().copied().unwrap_or(f64::NAN)),
        num(latencies.first().copied().unwrap_or(f64::NAN)),
        num(percentile(&totals, 0.50)),
        num(totals.last().copied().unwrap_or(f64::NAN)),
        CONNECT_MS_MAX.load(Relaxed),
        SLOW_CONNECTS.load(Relaxed),
        firsts.join(","),
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}
