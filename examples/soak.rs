//! Soak run (issue 18, bullet 5): a fixed rate of mixed work against one gateway for an
//! hour, with a config reload every five minutes; prints a per-minute table of RSS, open
//! files and answers, and exits non-zero on any answer outside the contract.
//!
//! Everything the gateway talks to lives in this process, on loopback ports it picked:
//!
//! - a **proxy upstream** `GET /items/{n}` → `200` with a 512-byte JSON body;
//! - a **sync upstream** `POST /render` → `200 {"rendered":true}` after 50 ms, run as jobs;
//! - a stateless **task upstream** `POST /tasks` → `202 {"taskId":"<finish-ms>"}`, finished
//!   2 s later (`GET /tasks/{id}` → `running` / `succeeded`), for waiters;
//! - a **callback receiver** `POST /hook` counting each job's terminal callback once.
//!
//! The gateway (the binary given with `--gateway`) runs on a SQLite store in a temp dir,
//! with `retention = "1m"`: finished jobs are swept after a minute and their tombstones
//! after seven, so the store reaches its steady size by minute 10, where the flatness
//! check starts (with the default retention the file would grow all hour).
//! Load is open-loop (a request starts on its tick whether or not earlier ones ended):
//! `--proxy` GETs/s, `--waiters` `Prefer: wait=10` task submits/s (each parked ~2 s),
//! `--jobs` `Prefer: respond-async` job submits/s with a callback (and one status read per
//! job once its callback arrived), `--sync` job submits/s without `Prefer` (held to the
//! end). Expected answers: 200 / 200 / 202 then 200 `succeeded` / 200. Anything else,
//! including a transport error, is an error outside the contract.
//!
//! Every `--reload-every` the config is rewritten (the task route's poll interval flips
//! between 1 s and 900 ms) and the gateway gets SIGHUP; the reloads counter on `/metrics`
//! must show them all applied. At the end the load stops, callbacks get 30 s to arrive, and
//! every accepted job must have had its callback (lost = accepted − called back).
//!
//! ```sh
//! cargo run --release --example soak -- --gateway target/release/prefer-gateway --minutes 60
//! ```

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[path = "soak/load.rs"]
mod load;
#[path = "soak/report.rs"]
mod report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Run settings from the command line.
pub(crate) struct Args {
    gateway: PathBuf,
    minutes: u64,
    reload_every: Duration,
    /// Requests per second of each kind.
    pub(crate) proxy: u64,
    pub(crate) waiters: u64,
    pub(crate) jobs: u64,
    pub(crate) sync: u64,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut a = Args {
        gateway: PathBuf::from("target/release/prefer-gateway"),
        minutes: 60,
        reload_every: Duration::from_secs(300),
        proxy: 200,
        waiters: 20,
        jobs: 20,
        sync: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--gateway" => a.gateway = PathBuf::from(value()?),
            "--minutes" => a.minutes = value()?.parse()?,
            "--reload-every" => a.reload_every = Duration::from_secs(value()?.parse()?),
            "--proxy" => a.proxy = value()?.parse()?,
            "--waiters" => a.waiters = value()?.parse()?,
            "--jobs" => a.jobs = value()?.parse()?,
            "--sync" => a.sync = value()?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(a)
}

/// Callbacks received, by job id (a redelivery counts once, and is counted apart).
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) seen: Mutex<HashSet<String>>,
    pub(crate) repeats: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// The upstreams and the callback receiver: one hyper service on one port.
async fn upstream(
    req: Request<Incoming>,
    hooks: Arc<Hooks>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(match (method, path.as_str()) {
        (Method::GET, p) if p.starts_with("/items/") => json(
            StatusCode::OK,
            format!(
                "{{\"item\":\"{}\",\"pad\":\"{}\"}}",
                &p[7..],
                "x".repeat(480)
            ),
        ),
        (Method::POST, "/render") => {
            tokio::time::sleep(Duration::from_millis(50)).await;
            json(StatusCode::OK, "{\"rendered\":true}".into())
        }
        (Method::POST, "/tasks") => {
            let id = now_ms() + 2_000;
            json(
                StatusCode::ACCEPTED,
                format!("{{\"taskId\":\"{id}\",\"status\":\"pending\"}}"),
            )
        }
        (Method::GET, p) if p.starts_with("/tasks/") => match p[7..].parse::<u64>() {
            Ok(done) if now_ms() >= done => json(
                StatusCode::OK,
                format!(
                    "{{\"taskId\":\"{done}\",\"status\":\"succeeded\",\"result\":{{\"ok\":true}}}}"
                ),
            ),
            Ok(done) => json(
                StatusCode::OK,
                format!("{{\"taskId\":\"{done}\",\"status\":\"running\"}}"),
            ),
            Err(_) => json(StatusCode::NOT_FOUND, "{}".into()),
        },
        (Method::POST, "/hook") => {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer("/data/id")
                        .or(v.pointer("/id"))
                        .and_then(|i| i.as_str().map(str::to_owned))
                });
            if let Some(id) = id {
                let fresh = hooks.seen.lock().map(|mut s| s.insert(id)).unwrap_or(false);
                if !fresh {
                    hooks.repeats.fetch_add(1, Relaxed);
                }
            }
            json(StatusCode::OK, "{}".into())
        }
        _ => json(StatusCode::NOT_FOUND, "{}".into()),
    })
}

async fn serve_upstream(hooks: Arc<Hooks>) -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let hooks = hooks.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |r| upstream(r, hooks.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The gateway config; `flip` changes the task route's poll interval (what a reload swaps).
fn config(dir: &Path, up: SocketAddr, listen: u16, admin: u16, flip: bool) -> String {
    let poll = if flip { "900ms" } else { "1s" };
    format!(
        r#"[server]
listen = "127.0.0.1:{listen}"
admin_listen = "127.0.0.1:{admin}"

[defaults]
poll_interval = "1s"
sync_wait = "60s"
upstream_timeout = "30s"

[jobs]
store = "sqlite:{db}"
retention = "1m"

[webhooks]
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
retry_schedule = ["0s", "2s", "4s"]
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]

[[routes]]
name = "items"
kind = "proxy"
methods = ["GET"]
path = "/items/{{n}}"
upstream = "http://{up}"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/render"
upstream = "http://{up}"
callback = {{ json = "/callback_url" }}

[[routes]]
name = "tasks"
kind = "task"
methods = ["POST"]
path = "/tasks"
upstream = "http://{up}"
poll_interval = "{poll}"

[routes.task]
id = "/taskId"
status_url = "/tasks/{{id}}"
state = "/status"
succeeded = ["succeeded"]
failed = ["failed"]
"#,
        db = dir.join("jobs.db").display(),
    )
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let hooks = Arc::new(Hooks::default());
    let up = serve_upstream(hooks.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (port, admin) = (free_port()?, free_port()?);
    let cfg_path = dir.path().join("gateway.toml");
    std::fs::write(&cfg_path, config(dir.path(), up, port, admin, false))?;
    let mut child = std::process::Command::new(&args.gateway)
        .args(["run", "--config"])
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .spawn()?;
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let admin_url = format!("http://127.0.0.1:{admin}");
    let client = reqwest::Client::builder()
        // Below the gateway's idle close (`header_read_timeout`, 10 s): a pooled connection
        // reused just as the server closes it fails the request that was on it (the
        // client-side keep-alive race every HTTP client has; RFC 9112 §9.3.1), which is not
        // a gateway error.
        .pool_idle_timeout(Duration::from_secs(4))
        .timeout(Duration::from_secs(60))
        .build()?;
    let ready = Instant::now();
    while client
        .get(format!("{admin_url}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        if ready.elapsed() > Duration::from_secs(20) {
            return Err("gateway not ready after 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hook_url = format!("http://{up}/hook");
    let counts = Arc::new(load::Counts::default());
    let stop = load::start(
        &args,
        &client,
        &base,
        &hook_url,
        counts.clone(),
        hooks.clone(),
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut reloads = 0u64;
    let mut next_reload = args.reload_every;
    for minute in 1..=args.minutes {
        let until = Duration::from_secs(60 * minute);
        let mut readings = Vec::with_capacity(60);
        let mut next_probe = started.elapsed();
        while started.elapsed() < until {
            if started.elapsed() >= next_probe {
                readings.push(report::probe(pid));
                next_probe += Duration::from_secs(1);
            }
            if started.elapsed() >= next_reload {
                reloads += 1;
                std::fs::write(
                    &cfg_path,
                    config(dir.path(), up, port, admin, reloads % 2 == 1),
                )?;
                std::process::Command::new("kill")
                    .args(["-HUP", &pid.to_string()])
                    .status()?;
                next_reload += args.reload_every;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let row = report::sample(minute, &readings, &counts, &hooks);
        eprintln!("{}", report::line(&row));
        rows.push(row);
    }
    stop.store(true, Relaxed);
    // Let in-flight work and the last callbacks finish.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let metrics = client
        .get(format!("{admin_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let applied = report::reloads_applied(&metrics);
    let verdict = report::finish(&rows, &counts, &hooks, reloads, applied);
    println!("{}", verdict.markdown);
    let _ = child.kill();
    let _ = child.wait();
    if verdict.ok {
        Ok(())
    } else {
        Err("soak failed: see the table".into())
    }
}
