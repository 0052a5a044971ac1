//! A fast, stateless task-API upstream for load tests of `task` routes
//! (`bench/waiters.sh`).
//!
//! The demo task API (`prefer-gateway demo`) keeps every task in a locked map; at 18,000
//! polls per second that map, not the gateway, would be what a benchmark measures. This
//! stub keeps no per-task state at all: the task id *is* its completion instant.
//!
//! - `POST /v1/tasks` → `202 {"taskId":"<finish-epoch-ms>-<n>","status":"pending"}`. The
//!   task finishes `--finish-after` seconds (default 30) after creation; a request header
//!   `x-finish-after-ms` overrides that per task (the benchmark's warm-up uses it).
//! - `GET /v1/tasks/{id}` → `200 {"taskId":…,"status":"running"}` before the completion
//!   instant, `{"taskId":…,"status":"succeeded","result":{"ok":true},"finished_at_ms":…}`
//!   from it on (`finished_at_ms` = the completion instant in Unix epoch milliseconds, so a
//!   client on the same machine can time completion → response). Unparsable id → `404`.
//! - `GET /stats` → JSON: total `polls` (task GETs) and `creates`, the stub's clock
//!   (`now_s`, seconds since start, and `start_epoch_ms`), `per_second` poll counts (index
//!   = whole seconds since start) and the connections the stub accepted (`conns_open`,
//!   `conns_peak`, `conns_total`), which is how many upstream connections the gateway used.
//!
//! Counters are atomics; nothing is locked. The first line on stdout is the bound address.
//!
//! ```sh
//! cargo run --release --example task_stub -- [--listen 127.0.0.1:0] [--finish-after 30] [--threads 1]
//! ```
//!
//! `--threads 1` (the default) runs a current-thread runtime: on a 2-core box shared with
//! the gateway and the load client, one thread costs the least and serves ~50k polls/s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Seconds of per-second poll counts kept (a later second counts into the last slot).
const SECONDS_KEPT: usize = 36_000;

struct Args {
    listen: SocketAddr,
    finish_after: Duration,
    threads: usize,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        finish_after: Duration::from_secs(30),
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse()?,
            "--finish-after" => args.finish_after = Duration::try_from_secs_f64(value()?.parse()?)?,
            "--threads" => args.threads = value()?.parse::<usize>()?.max(1),
            "-h" | "--help" => {
                println!("task_stub [--listen ADDR] [--finish-after SECS] [--threads N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(args)
}

struct Stats {
    started: Instant,
    start_epoch_ms: u64,
    finish_after_ms: u64,
    next_id: AtomicU64,
    polls: AtomicU64,
    creates: AtomicU64,
    per_second: Vec<AtomicU64>,
    conns_open: AtomicU64,
    conns_peak: AtomicU64,
    conns_total: AtomicU64,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

async fn handle(stats: Arc<Stats>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if req.method() == Method::GET {
        if let Some(id) = path.strip_prefix("/v1/tasks/") {
            return poll(&stats, id);
        }
        if path == "/stats" {
            return json(StatusCode::OK, stats_json(&stats));
        }
    } else if req.method() == Method::POST && path == "/v1/tasks" {
        let after = req
            .headers()
            .get("x-finish-after-ms")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(stats.finish_after_ms);
        // Read the submit body so the keep-alive connection stays usable.
        let _ = req.into_body().collect().await;
        let n = stats.next_id.fetch_add(1, Relaxed);
        stats.creates.fetch_add(1, Relaxed);
        let id = format!("{}-{n}", epoch_ms() + after);
        return json(
            StatusCode::ACCEPTED,
            format!(r#"{{"taskId":"{id}","status":"pending"}}"#),
        );
    }
    json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into())
}

fn poll(stats: &Stats, id: &str) -> Response<Full<Bytes>> {
    stats.polls.fetch_add(1, Relaxed);
    let sec = (stats.started.elapsed().as_secs() as usize).min(SECONDS_KEPT - 1);
    if let Some(slot) = stats.per_second.get(sec) {
        slot.fetch_add(1, Relaxed);
    }
    let finish = id.split_once('-').and_then(|(ms, n)| {
        let valid = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        ms.parse::<u64>().ok().filter(|_| valid)
    });
    let Some(finish) = finish else {
        return json(StatusCode::NOT_FOUND, r#"{"error":"no such task"}"#.into());
    };
    let body = if epoch_ms() >= finish {
        format!(
            r#"{{"taskId":"{id}","status":"succeeded","result":{{"ok":true}},"finished_at_ms":{finish}}}"#
        )
    } else {
        format!(r#"{{"taskId":"{id}","status":"running"}}"#)
    };
    json(StatusCode::OK, body)
}

fn stats_json(s: &Stats) -> String {
    let now = s.started.elapsed();
    let upto = (now.as_secs() as usize + 1).min(SECONDS_KEPT);
    let per_second: Vec<String> = s.per_second[..upto]
        .iter()
        .map(|c| c.load(Relaxed).to_string())
        .collect();
    format!(
        concat!(
            r#"{{"polls":{},"creates":{},"now_s":{:.3},"start_epoch_ms":{},"#,
            r#""conns_open":{},"conns_peak":{},"conns_total":{},"per_second":[{}]}}"#
        ),
        s.polls.load(Relaxed),
        s.creates.load(Relaxed),
        now.as_secs_f64(),
        s.start_epoch_ms,
        s.conns_open.load(Relaxed),
        s.conns_peak.load(Relaxed),
        s.conns_total.load(Relaxed),
        per_second.join(",")
    )
}

async fn serve(args: Args) -> Result<(), BoxError> {
    let socket = match args.listen {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(args.listen)?;
    // A larger accept queue than tokio's default 1024 (the kernel caps it at somaxconn).
    let listener = socket.listen(8192)?;
    println!("{}", listener.local_addr()?);
    let stats = Arc::new(Stats {
        started: Instant::now(),
        start_epoch_ms: epoch_ms(),
        finish_after_ms: args.finish_after.as_millis() as u64,
        next_id: AtomicU64::new(0),
        polls: AtomicU64::new(0),
        creates: AtomicU64::new(0),
        per_second: (0..SECONDS_KEPT).map(|_| AtomicU64::new(0)).collect(),
        conns_open: AtomicU64::new(0),
        conns_peak: AtomicU64::new(0),
        conns_total: AtomicU64::new(0),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("task_stub: accept failed: {e}; pausing 50ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let open = stats.conns_open.fetch_add(1, Relaxed) + 1;
        stats.conns_peak.fetch_max(open, Relaxed);
        stats.conns_total.fetch_add(1, Relaxed);
        let conn_stats = Arc::clone(&stats);
        let svc = hyper::service::service_fn(move |req| {
            let stats = Arc::clone(&conn_stats);
            async move { Ok::<_, Infallible>(handle(stats, req).await) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            // A peer that resets its connection is normal under load; nothing to report.
            let _ = conn.await;
            stats.conns_open.fetch_sub(1, Relaxed);
        });
    }
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args))
}
