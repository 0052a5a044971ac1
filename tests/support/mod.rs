//! Test support: a real gateway on `127.0.0.1:0` and small programmable upstreams.
//!
//! Everything runs over real loopback sockets: [`Gateway::start`] loads a TOML config (with
//! `{up}` replaced by the upstream's address), binds port 0 and serves in the test's
//! runtime; [`Upstream::start`] serves any async closure over HTTP/1.1 and counts requests
//! per path so tests can assert how often the gateway called it.
//! [`wire`] speaks raw bytes over TCP where reqwest would normalise the request;
//! [`python`] provides the virtualenv that real Python clients run in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod process;
pub mod python;
pub mod redis;
pub mod relay;
pub mod store;
pub mod wire;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

pub type Reply = Response<Full<Bytes>>;
type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// A programmable HTTP/1.1 upstream on a free loopback port.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: oneshot::Sender<()>,
}

impl Upstream {
    /// Serves `f` (which gets each buffered request) until dropped.
    pub async fn start<F, Fut>(f: F) -> Upstream
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |s| Box::pin(f(s)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = &mut stopped => return,
                };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let handler = Arc::clone(&handler);
                        let log = Arc::clone(&log);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let s = Seen {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                            };
                            log.lock().unwrap().push(s.clone());
                            Ok::<_, Infallible>(handler(s).await)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            seen,
            _stop: stop,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.uri.starts_with(prefix))
            .count()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A reply with a status, JSON body and extra headers.
pub fn reply(status: u16, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    /// The admin listener, when the config has `admin_listen`.
    pub admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Loads `toml` (`{up}` → `upstream_url`), binds `127.0.0.1:0` and serves.
    pub async fn start(toml: &str, upstream_url: &str) -> Gateway {
        let text = toml.replace("{up}", upstream_url);
        let mut cfg = prefer_gateway::config::load_str(&text, "test.toml").unwrap();
        cfg.server.listen = "127.0.0.1:0".parse().unwrap();
        let running = prefer_gateway::Running::bind(&cfg).await.unwrap();
        let addr = running.local_addr().unwrap();
        let admin = running.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(running.serve(async move {
            let _ = stopped.await;
        }));
        Gateway {
            addr,
            admin,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// `path` on this gateway; an absolute URL (as the gateway hands them out) as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        format!("http://{}{path}", self.addr)
    }

    /// Triggers graceful shutdown and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            let _ = d.await;
        }
    }
}

/// A reqwest client that never reuses state between tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Headers as a lowercase-name map of joined values (for terse assertions).
pub fn header_map(h: &reqwest::header::HeaderMap) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = HashMap::new();
    for (k, v) in h {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        m.entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v)
            })
            .or_insert(v);
    }
    m
}

/// A fake async-first task API: `POST /v1/edit` → `202 {"taskId": "t-N"}` (plus
/// `Location`); `GET /v1/tasks/t-N` → `{"status": "running"}` until `finish_after` has
/// passed since the submit, then `{"status": "succeeded", "result": …}`.
pub async fn task_upstream(finish_after: std::time::Duration) -> Upstream {
    let started: Arc<Mutex<HashMap<String, std::time::Instant>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Upstream::start(move |s: Seen| {
        let started = Arc::clone(&started);
        let next = Arc::clone(&next);
        async move {
            let path = s.uri.split('?').next().unwrap_or("").to_owned();
            if s.method == "POST" {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let id = format!("t-{n}");
                started
                    .lock()
                    .unwrap()
                    .insert(id.clone(), std::time::Instant::now());
                let loc = format!("/v1/tasks/{id}");
                return reply(
                    202,
                    &format!(r#"{{"taskId":"{id}","status":"pending"}}"#),
                    &[("location", &loc)],
                );
            }
            let id = path.rsplit('/').next().unwrap_or("").to_owned();
            let at = started.lock().unwrap().get(&id).copied();
            match at {
                None => reply(404, r#"{"error":"unknown"}"#, &[]),
                Some(at) if at.elapsed() < finish_after => reply(
                    200,
                    &format!(r#"{{"taskId":"{id}","status":"running"}}"#),
                    &[],
                ),
                Some(_) => reply(
                    200,
                    &format!(
                        r#"{{"taskId":"{id}","status":"succeeded","result":{{"url":"u/{id}"}}}}"#
                    ),
                    &[],
                ),
            }
        }
    })
    .await
}

/// A config with one task route `/v1/edit` on `{up}` (+ `extra` appended to the route).
pub fn task_config(defaults: &str, route_extra: &str) -> String {
    let poll = if defaults.contains("poll_interval") {
        ""
    } else {
        "poll_interval = \"100ms\""
    };
    format!(
        r#"
[defaults]
{poll}
{defaults}

[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "{{up}}"
{route_extra}

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{{id}}"
state = "/status"
succeeded = ["succeeded"]
failed = ["failed"]
"#
    )
}

/// A config with one `sync` route `/v1/render` on `{up}`, the given store and `[jobs]`
/// extras, and `route_extra` appended to the route.
pub fn sync_config(store: &str, jobs_extra: &str, route_extra: &str) -> String {
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"
{jobs_extra}

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
{route_extra}
"#
    )
}

/// A sync upstream: every request sleeps `took`, then answers 200 echoing the body as
/// `{"rendered": <body>}` with `x-upstream: yes`; a body containing `"fail"` gets a 500.
pub async fn sync_upstream(took: std::time::Duration) -> Upstream {
    Upstream::start(move |s: Seen| async move {
        tokio::time::sleep(took).await;
        let body = String::from_utf8_lossy(&s.body).into_owned();
        if body.contains("\"fail\"") {
            return reply(
                500,
                r#"{"error":"render failed"}"#,
                &[("x-upstream", "yes")],
            );
        }
        reply(
            200,
            &format!(
                r#"{{"rendered":{}}}"#,
                if body.is_empty() { "null".into() } else { body }
            ),
            &[("x-upstream", "yes")],
        )
    })
    .await
}
