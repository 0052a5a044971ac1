//! The gateway as a value: routes, the shared upstream client, and the per-request entry.
//!
//! [`Gateway::handle`] is the whole request path (listener → router → route handler →
//! response) without a socket, so tests and the server drive the same code. Every answer
//! carries `X-Request-Id`: the client's own when it sent a sane one (1–200 visible ASCII
//! bytes), otherwise a fresh one; the same id is forwarded upstream and logged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use http::header::HeaderName;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log;
use crate::body::Body;
use crate::client::{self, HttpClient, StaticResolver};
use crate::config::{Config, RouteKind};
use crate::jobs::{self, Engine};
use crate::limits::RateLimiter;
use crate::metrics::{self, RouteLabel};
use crate::prefer;
use crate::problem::Problem;
use crate::proxy::{self, UpstreamElapsed};
use crate::request_id::{sane_request_id, RequestIds};
use crate::router::Miss;
use crate::table::{self, Route, Table};
use crate::task::{self, TaskRoute};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where a tenant reads its webhook signing secret.
pub const WEBHOOK_SECRET_PATH: &str = "/webhook-secret";

/// Most request header lines the gateway accepts (more → `431`).
pub const MAX_HEADERS: usize = 100;
/// Most request header bytes (names + values) the gateway accepts (more → `431`).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The running gateway's shared state.
pub struct Gateway {
    /// Routes and defaults; replaced whole by [`Gateway::reload`].
    table: ArcSwap<Table>,
    /// The TLS server config, when the listener speaks TLS; replaced on reload.
    tls: arc_swap::ArcSwapOption<rustls::ServerConfig>,
    /// One reload at a time (a second SIGHUP waits for the first to finish).
    reloading: tokio::sync::Mutex<()>,
    client: HttpClient,
    polls: task::Registry,
    jobs: Option<Arc<Engine>>,
    draining: AtomicBool,
    unready: AtomicBool,
    /// Flips to `true` when the listener closes: waiting requests answer with their 202.
    drain: tokio::sync::watch::Sender<bool>,
    ids: RequestIds,
    tenant_header: Option<HeaderName>,
    body_idle: std::time::Duration,
    rate: Option<RateLimiter>,
}

impl Gateway {
    /// Builds routes and the client; resolves every upstream host once.
    pub async fn new(cfg: &Config) -> Result<Arc<Gateway>, String> {
        let resolver = StaticResolver::resolve_all(&table::upstream_hosts(cfg)?).await?;
        let client = client::build(resolver);
        let jobs = Engine::start(cfg, client.clone()).await?;
        let job_routes = jobs.as_ref().map(|e| e.routes());
        let table = table::build(cfg, job_routes.as_deref())?;
        let tls = cfg.server.tls.as_ref().map(crate::tls::load).transpose()?;
        Ok(Arc::new(Gateway {
            table: ArcSwap::from_pointee(table),
            tls: arc_swap::ArcSwapOption::new(tls),
            reloading: tokio::sync::Mutex::new(()),
            client,
            polls: task::Registry::default(),
            jobs,
            draining: AtomicBool::new(false),
            unready: AtomicBool::new(false),
            drain: tokio::sync::watch::Sender::new(false),
            ids: RequestIds::new(),
            tenant_header: cfg.jobs.tenant_header.clone(),
            body_idle: cfg.server.body_idle_timeout,
            rate: cfg.server.tenant_rate.map(RateLimiter::new),
        }))
    }

    /// Replaces the routes (and `[defaults]`) with `cfg`'s, all at once, or changes nothing
    /// and says why. Every new upstream host must resolve, as at start. A config whose
    /// routes run jobs when the gateway started without a job engine is refused: the store
    /// is opened at start (restart to add the first `sync` route).
    pub async fn reload(&self, cfg: &Config) -> Result<(), String> {
        let _one_at_a_time = self.reloading.lock().await;
        let resolver = StaticResolver::resolve_all(&table::upstream_hosts(cfg)?).await?;
        let job_routes = match &self.jobs {
            Some(engine) => {
                // The key is bound at start with the rest of [jobs]: a route cannot start
                // handing out links the running gateway could not verify.
                let signed = cfg.routes.iter().find(|r| r.signed_results);
                if let (None, Some(r)) = (&engine.cfg.signing_key, signed) {
                    return Err(format!(
                        "route {:?} has signed_results, but the gateway started without \
                         [jobs].signing_secret: restart to add it",
                        r.name
                    ));
                }
                Some(jobs::engine::job_routes(cfg, Some(&engine.routes()))?)
            }
            None => {
                let wanted = jobs::engine::job_routes(cfg, None)?;
                if let Some(name) = wanted.keys().min() {
                    return Err(format!(
                        "route {name:?} runs jobs, but the gateway started without any such \
                         route, so it has no job store open: restart to add it"
                    ));
                }
                None
            }
        };
        let table = table::build(cfg, job_routes.as_ref())?;
        // TLS stays on or off as started (the listener decides that); its files are re-read.
        let tls = match (&cfg.server.tls, self.tls.load().is_some()) {
            (Some(files), true) => Some(crate::tls::load(files)?),
            _ => None,
        };
        if let Some(tls) = tls {
            self.tls.store(Some(tls));
        }
        // Installed last with the table: the hosts the new routes name are in it.
        self.client.set_resolver(resolver);
        if let (Some(engine), Some(routes)) = (&self.jobs, job_routes) {
            engine.set_routes(routes);
        }
        self.table.store(Arc::new(table));
        Ok(())
    }

    /// The TLS config new connections use, when the listener speaks TLS.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.load_full()
    }

    /// Whether the gateway takes new work: not draining, and the job store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        if self.unready.load(Ordering::Relaxed) || self.draining.load(Ordering::Relaxed) {
            return Err("draining".into());
        }
        if let Some(engine) = &self.jobs {
            match tokio::time::timeout(std::time::Duration::from_secs(1), engine.store.ping()).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("job store: no answer within 1s".into()),
            }
        }
        Ok(())
    }

    /// Reads the job store's queue depths into the metrics (a no-op without a store; a
    /// failure or a store slower than a second leaves the last reading and counts an error).
    pub async fn refresh_store_gauges(&self) {
        let Some(engine) = &self.jobs else {
            return;
        };
        let read = tokio::time::timeout(std::time::Duration::from_secs(1), engine.store.depths());
        match read.await {
            Ok(Ok(depths)) => metrics::get()
                .set_depths(depths.into_iter().map(|d| (d.route, d.pending, d.running))),
            Ok(Err(e)) => {
                metrics::get().store_errors.inc();
                tracing::warn!(error = %e, "reading queue depths failed");
            }
            Err(_) => {
                metrics::get().store_errors.inc();
                tracing::warn!("reading queue depths: no answer within 1s");
            }
        }
    }

    /// Shutdown, step 1: `/readyz` answers `503` while requests are still served.
    pub fn set_unready(&self) {
        self.unready.store(true, Ordering::Relaxed);
    }

    /// Shutdown, step 2 (the listener is closing): new requests get `503`, and requests
    /// waiting on a task or job answer now with their `202` handle instead of being cut
    /// when the drain times out.
    pub fn start_draining(&self) {
        self.unready.store(true, Ordering::Relaxed);
        self.draining.store(true, Ordering::Relaxed);
        self.drain.send_replace(true);
    }

    /// Serves one request from `remote`.
    pub async fn handle(&self, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
        let arrived = Instant::now();
        let (mut parts, body) = req.into_parts();
        let request_id = match parts.headers.get(&X_REQUEST_ID) {
            Some(v) if sane_request_id(v) => v.clone(),
            _ => {
                let id = self.ids.next();
                parts.headers.insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        // What the access line needs from the request, taken only when it is wanted.
        let logged = access_log::enabled().then(|| {
            let tenant = access_log::tenant(&parts.headers, self.tenant_header.as_ref()).cloned();
            (parts.method.clone(), parts.uri.clone(), tenant)
        });
        let req = Request::from_parts(parts, Body::idle_limited(body, self.body_idle));
        let (mut resp, label) = self.route(req, remote, arrived).await;
        let elapsed = arrived.elapsed();
        let status = resp.status().as_u16();
        let applied = resp.headers().get(&prefer::PREFERENCE_APPLIED);
        let preference = metrics::preference_label(applied);
        let upstream = resp.extensions().get::<UpstreamElapsed>().map(|u| u.0);
        let m = metrics::get();
        m.request(&label, status, preference, elapsed);
        if let Some(took) = upstream {
            m.upstream(&label, took);
        }
        if let Some((method, uri, tenant)) = &logged {
            access_log::write(&access_log::Entry {
                request_id: &request_id,
                method,
                path: uri.path(),
                route: label.as_str(),
                status,
                preference,
                applied,
                upstream,
                elapsed,
                tenant: tenant.as_ref(),
            });
        }
        resp.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
        resp
    }

    /// The answer, and the route it is counted under.
    async fn route(
        &self,
        req: Request<Body>,
        remote: SocketAddr,
        arrived: Instant,
    ) -> (Response<Body>, RouteLabel) {
        let unmatched = |p: Problem| (p.into_response(), RouteLabel::unmatched());
        if self.draining.load(Ordering::Relaxed) {
            return unmatched(Problem::Draining);
        }
        let h = req.headers();
        let head_bytes: usize = h.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        if h.len() > MAX_HEADERS || head_bytes > MAX_HEADER_BYTES {
            return unmatched(Problem::HeadersTooLarge);
        }
        if let Some(limiter) = &self.rate {
            let ip;
            let tenant = match self.tenant_header.as_ref().and_then(|n| h.get(n)) {
                Some(v) => v.as_bytes(),
                None => {
                    ip = remote.ip().to_string();
                    ip.as_bytes()
                }
            };
            if let Err(retry) = limiter.check(tenant, Instant::now()) {
                return unmatched(Problem::RateLimited(retry.as_secs()));
            }
        }
        if let Some(engine) = &self.jobs {
            let defaults = self.table.load().defaults;
            if let Some(resp) = jobs::api::handle(engine, &defaults, &req).await {
                return (resp, RouteLabel::jobs_api());
            }
            if engine.deliverer.is_some() && req.uri().path() == WEBHOOK_SECRET_PATH {
                return (
                    jobs::api::webhook_secret(engine, &req),
                    RouteLabel::jobs_api(),
                );
            }
        }
        let found = self
            .table
            .load()
            .router
            .lookup(req.method(), req.uri().path())
            .cloned();
        let route = match found {
            Ok(r) => r,
            Err(Miss::NotFound) => return unmatched(Problem::NoRoute),
            Err(Miss::MethodNotAllowed(allow)) => {
                return unmatched(Problem::MethodNotAllowed(allow))
            }
        };
        let resp = self.serve_route(&route, req, remote, arrived).await;
        (resp, route.label.clone())
    }

    async fn serve_route(
        &self,
        route: &Route,
        req: Request<Body>,
        remote: SocketAddr,
        arrived: Instant,
    ) -> Response<Body> {
        let ip = remote.ip();
        let settings = &route.cfg.settings;
        match (route.cfg.kind, &route.status) {
            (RouteKind::Task, Some(status)) => {
                let tr = TaskRoute {
                    cfg: &route.cfg,
                    upstream: &route.upstream,
                    status,
                    jobs: self.jobs.as_deref(),
                    drain: self.drain.subscribe(),
                };
                task::handle(&self.client, &self.polls, tr, req, ip, arrived).await
            }
            (RouteKind::Sync, _) => match (&self.jobs, &route.job) {
                (Some(engine), Some(jr)) => {
                    let drain = self.drain.subscribe();
                    jobs::submit::handle(engine, jr, req, ip, arrived, drain).await
                }
                _ => Problem::StoreUnavailable.into_response(),
            },
            _ => proxy::forward(
                &self.client,
                &route.upstream,
                req,
                ip,
                settings.upstream_timeout,
            )
            .await
            .unwrap_or_else(Problem::into_response),
        }
    }
}

/// Resolves when the gateway starts draining (never, if the gateway is gone first).
pub async fn drained(mut drain: tokio::sync::watch::Receiver<bool>) {
    let draining = drain.wait_for(|d| *d).await.is_ok();
    if !draining {
        std::future::pending::<()>().await;
    }
}
