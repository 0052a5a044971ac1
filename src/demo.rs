//! `prefer-gateway demo`: two small upstreams on loopback and a gateway in front of them.
//!
//! - a **task API** (async-first): `POST /v1/edit` with `{"duration": seconds}` answers
//!   `202 {"taskId": …, "status": "pending"}`; `GET /v1/tasks/{id}` answers
//!   `{"taskId", "status": "running" | "succeeded", "result"?}`;
//!   `POST /v1/edit-hooked` is the same task, callback-capable: it takes a `webhook_url`
//!   from the body and `POST`s the final status there when the task is done (the gateway's
//!   callback-driven route puts its one-time URL there);
//! - a **sync API**: `POST /v1/render` with `{"duration": seconds}` holds the connection
//!   that long, then answers `200 {"rendered": true, …}`; with `Prefer` the gateway runs
//!   it as a job (in-memory store: the demo keeps nothing across restarts).
//!
//! The gateway runs `config/demo.toml` (compiled in, so the demo works from any directory)
//! with the upstream addresses replaced by the ports the demo APIs got. The printed curl
//! lines walk through every row of the execution-mode table; the expected status is in the
//! comment above each one (the demo smoke test runs them and checks).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::body::Body;

/// The signing secret in `config/demo.toml` (the receiver verifies with it).
const DEMO_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The demo config, as shipped in `config/demo.toml`.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

#[derive(Default)]
struct Tasks {
    next: u64,
    all: HashMap<String, (Instant, Duration)>,
}

mod balance;
mod tour;

pub use tour::tour;

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn duration_of(req: Request<Incoming>) -> Duration {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let secs = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("duration").and_then(serde_json::Value::as_f64))
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs.clamp(0.0, 600.0))
}

async fn task_api(tasks: Arc<Mutex<Tasks>>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::POST && path == "/v1/edit" {
        let d = duration_of(req).await;
        let id = {
            let mut t = tasks.lock().unwrap_or_else(|p| p.into_inner());
            t.next += 1;
            let id = format!("task-{}", t.next);
            t.all.insert(id.clone(), (Instant::now(), d));
            id
        };
        let mut r = json(
            StatusCode::ACCEPTED,
            serde_json::json!({"taskId": id, "status": "pending"}),
        );
        if let Ok(loc) = http::HeaderValue::from_str(&format!("/v1/tasks/{id}")) {
            r.headers_mut().insert(http::header::LOCATION, loc);
        }
        return r;
    }
    if req.method() == Method::POST && path == "/v1/edit-hooked" {
        return hooked_submit(tasks, req).await;
    }
    if let (&Method::GET, Some(id)) = (req.method(), path.strip_prefix("/v1/tasks/")) {
        let found = tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .all
            .get(id)
            .copied();
        return match found {
            None => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "no such task"}),
            ),
            Some((at, d)) if at.elapsed() < d => json(
                StatusCode::OK,
                serde_json::json!({"taskId": id, "status": "running"}),
            ),
            Some(_) => json(
                StatusCode::OK,
                serde_json::json!({"taskId": id, "status": "succeeded",
                    "result": {"url": format!("https://cdn.example/{id}.png")}}),
            ),
        };
    }
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": "not found"}),
    )
}

/// A callback-capable submit: the task is registered as usual (its status URL works too),
/// and when it is done its final status is `POST`ed to the body's `webhook_url`.
async fn hooked_submit(tasks: Arc<Mutex<Tasks>>, req: Request<Incoming>) -> Response<Body> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let doc = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    let secs = doc.get("duration").and_then(serde_json::Value::as_f64);
    let d = Duration::from_secs_f64(secs.unwrap_or(1.0).clamp(0.0, 600.0));
    let hook = doc
        .get("webhook_url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let id = {
        let mut t = tasks.lock().unwrap_or_else(|p| p.into_inner());
        t.next += 1;
        let id = format!("task-{}", t.next);
        t.all.insert(id.clone(), (Instant::now(), d));
        id
    };
    if let Some(url) = hook {
        let done = serde_json::json!({"taskId": id, "status": "succeeded",
            "result": {"url": format!("https://cdn.example/{id}.png")}});
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            let sent = reqwest::Client::new()
                .post(&url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(done.to_string())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match sent {
                Ok(r) => println!(
                    "task callback sent: {id}, the gateway answered {}",
                    r.status()
                ),
                Err(e) => println!("task callback for {id} failed: {e}"),
            }
        });
    }
    json(
        StatusCode::ACCEPTED,
        serde_json::json!({"taskId": id, "status": "pending"}),
    )
}

async fn sync_api(balance: Arc<Mutex<balance::Balance>>, req: Request<Incoming>) -> Response<Body> {
    if req.method() == Method::POST && req.uri().path() == "/hooks" {
        return receive_callback(req).await;
    }
    if req.method() == Method::POST && req.uri().path() == "/balance" {
        return balance::handle(balance, req).await;
    }
    // `/v1/render` and the paid route's `/v1/paid/render` render alike.
    if req.method() == Method::POST && req.uri().path().ends_with("/render") {
        let d = duration_of(req).await;
        tokio::time::sleep(d).await;
        return json(
            StatusCode::OK,
            serde_json::json!({"rendered": true, "seconds": d.as_secs_f64()}),
        );
    }
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": "not found"}),
    )
}

/// The demo's webhook receiver: checks the Standard Webhooks signature with the demo's
/// signing secret and prints what arrived, so the delivery is visible in the demo output.
async fn receive_callback(req: Request<Incoming>) -> Response<Body> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let valid = crate::sign::Secret::parse(DEMO_SECRET)
        .ok()
        .zip(ts.parse::<i64>().ok())
        .is_some_and(|(secret, ts)| {
            crate::sign::standard_webhooks_signature(&secret, &id, ts, &body) == sig
        });
    let doc = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    let field = |name: &str| doc.get(name).and_then(|s| s.as_str()).unwrap_or_default();
    let (status, event) = (field("status"), field("event"));
    // `event` is there only when the client asked for events (`Callback-Events`).
    let event = if event.is_empty() {
        String::new()
    } else {
        format!(" event={event}")
    };
    println!(
        "callback received: webhook-id={id} status={status}{event} signature {}",
        if valid { "valid" } else { "INVALID" }
    );
    json(StatusCode::OK, serde_json::json!({"received": true}))
}

/// Serves `handler` on `listener` (HTTP/1.1) until the task is dropped.
async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let h = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(h(req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Addresses of the running demo upstreams.
#[derive(Debug, Clone, Copy)]
pub struct Upstreams {
    /// The task API.
    pub tasks: SocketAddr,
    /// The sync API.
    pub sync: SocketAddr,
}

/// Starts both demo APIs on loopback ports; they live as long as the runtime.
pub async fn start_upstreams() -> Result<Upstreams, String> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    start_upstreams_on(any, any).await
}

/// Starts both demo APIs on the given addresses (`prefer-gateway demo-upstreams`, used by
/// `docker/compose.yml`).
pub async fn start_upstreams_on(tasks: SocketAddr, sync: SocketAddr) -> Result<Upstreams, String> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("demo upstream on {addr}: {e}"))
    };
    let (tl, sl) = (bind(tasks).await?, bind(sync).await?);
    let ups = Upstreams {
        tasks: tl.local_addr().map_err(|e| e.to_string())?,
        sync: sl.local_addr().map_err(|e| e.to_string())?,
    };
    let tasks = Arc::new(Mutex::new(Tasks::default()));
    tokio::spawn(serve(tl, move |req| task_api(Arc::clone(&tasks), req)));
    let balance = Arc::new(Mutex::new(balance::Balance::default()));
    tokio::spawn(serve(sl, move |req| sync_api(Arc::clone(&balance), req)));
    Ok(ups)
}

/// The demo config with the upstreams' real addresses.
pub fn config(ups: Upstreams, listen: SocketAddr) -> Result<crate::config::Config, String> {
    let text = DEMO_CONFIG
        .replace("http://127.0.0.1:9000", &format!("http://{}", ups.tasks))
        .replace("http://127.0.0.1:9001", &format!("http://{}", ups.sync));
    // (The balance service's URL, `http://127.0.0.1:9001/balance`, is replaced by the line
    // above too: it lives on the sync API's port.)
    let mut cfg = crate::config::load_str(&text, "config/demo.toml").map_err(|e| e.to_string())?;
    cfg.server.listen = listen;
    Ok(cfg)
}

/// The base URL the printed lines name: `public_url` when given (the port a container
/// publishes, say), else the bound address, with an unspecified IP (`0.0.0.0`, `[::]`)
/// shown as `localhost` — the address a curl on the same host (or through `docker run -p`)
/// reaches.
pub fn shown_base(bound: SocketAddr, public_url: Option<&str>) -> String {
    match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if bound.ip().is_unspecified() => format!("http://localhost:{}", bound.port()),
        None => format!("http://{bound}"),
    }
}

/// Where the demo's gateway is reached.
pub struct Listen {
    /// The gateway's listen address (`--listen`).
    pub gateway: SocketAddr,
    /// The URL clients reach the gateway by when it differs from the listen address — in a
    /// container, the host's published port (`--public-url`, `PREFER_GATEWAY_PUBLIC_URL`):
    /// the printed lines and every URL the gateway hands out name it.
    pub public_url: Option<String>,
    /// The admin listener (`/readyz`, `/metrics`), off unless given: the container image
    /// turns it on so its health check works for the demo too.
    pub admin: Option<SocketAddr>,
}

/// Runs the demo until `shutdown` resolves.
pub async fn run(listen: Listen, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let ups = start_upstreams().await?;
    let mut cfg = config(ups, listen.gateway)?;
    cfg.server.admin_listen = listen.admin;
    if let Some(url) = &listen.public_url {
        cfg.server.public_url =
            Some(crate::config::public_url_value(url).map_err(|e| format!("--public-url: {e}"))?);
    }
    let running = crate::Running::bind(&cfg).await?;
    let gw = running.local_addr()?;
    let base = shown_base(gw, cfg.server.public_url.as_deref());
    println!("prefer-gateway demo");
    println!("  gateway   {base} (listening on {gw})");
    println!(
        "  task API  http://{} (POST /v1/edit, GET /v1/tasks/{{id}})",
        ups.tasks
    );
    println!("  sync API  http://{} (POST /v1/render)\n", ups.sync);
    println!("Try these (each comment says what comes back):\n");
    println!("{}", tour(&base, ups.sync));
    println!("Ctrl-C stops everything.");
    running.serve(shutdown).await;
    Ok(())
}
