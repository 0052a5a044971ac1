//! The gateway as a value: routes, the shared upstream client, and the per-request entry.
//!
//! [`Gateway::handle`] is the whole request path (listener → router → route handler →
//! response) without a socket, so tests and the server drive the same code. Every answer
//! carries `X-Request-Id`: the client's own when it sent a sane one (1–200 visible ASCII
//! bytes), otherwise a fresh one; the same id is forwarded upstream and logged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::body::Body;
use crate::client::{self, HttpClient, StaticResolver};
use crate::config::{Config, RouteConfig, RouteKind};
use crate::jobs::{self, Engine};
use crate::problem::Problem;
use crate::proxy::{self, Upstream};
use crate::router::{Miss, Router};
use crate::task::{self, StatusUrl, TaskRoute};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where a tenant reads its webhook signing secret.
pub const WEBHOOK_SECRET_PATH: &str = "/webhook-secret";

/// Most request header lines the gateway accepts (more → `431`).
pub const MAX_HEADERS: usize = 100;
/// Most request header bytes (names + values) the gateway accepts (more → `431`).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One configured route, ready to serve.
pub struct Route {
    /// Its config.
    pub cfg: RouteConfig,
    /// Where it forwards.
    pub upstream: Upstream,
    /// Status URL template (task routes).
    pub status: Option<StatusUrl>,
}

/// The running gateway's shared state.
pub struct Gateway {
    router: Router<Arc<Route>>,
    client: HttpClient,
    polls: task::Registry,
    jobs: Option<Arc<Engine>>,
    defaults: crate::config::Defaults,
    draining: AtomicBool,
    ids: RequestIds,
}

impl Gateway {
    /// Builds routes and the client; resolves every upstream host once.
    pub async fn new(cfg: &Config) -> Result<Arc<Gateway>, String> {
        let mut routes = Vec::with_capacity(cfg.routes.len());
        let mut hosts = Vec::new();
        for rc in &cfg.routes {
            let upstream = Upstream::from_url(&rc.upstream)?;
            hosts.push(upstream.host_port());
            let status = rc.task.as_ref().map(|t| StatusUrl::new(&t.status_url));
            if let Some(abs) = rc
                .task
                .as_ref()
                .and_then(|t| url::Url::parse(&t.status_url).ok())
            {
                if let (Some(h), Some(p)) = (abs.host_str(), abs.port_or_known_default()) {
                    hosts.push((h.trim_matches(['[', ']']).to_owned(), p));
                }
            }
            let route = Route {
                cfg: rc.clone(),
                upstream,
                status,
            };
            routes.push((rc.path.clone(), rc.methods.clone(), Arc::new(route)));
        }
        let router = Router::new(routes)?;
        let resolver = StaticResolver::resolve_all(&hosts).await?;
        let client = client::build(resolver);
        let jobs = Engine::start(cfg, client.clone()).await?;
        Ok(Arc::new(Gateway {
            router,
            client,
            polls: task::Registry::default(),
            jobs,
            defaults: cfg.defaults,
            draining: AtomicBool::new(false),
            ids: RequestIds::new(),
        }))
    }

    /// Whether the gateway takes new work: not draining, and the job store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Relaxed) {
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

    /// From now on, new requests get `503` (the listener is closing).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
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
        let method = parts.method.clone();
        let req = Request::from_parts(parts, Body::Incoming(body));
        let mut resp = self.route(req, remote, arrived).await;
        resp.headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        tracing::debug!(
            request_id = ?request_id,
            %method,
            status = resp.status().as_u16(),
            elapsed_us = arrived.elapsed().as_micros() as u64,
            "request"
        );
        resp
    }

    async fn route(
        &self,
        req: Request<Body>,
        remote: SocketAddr,
        arrived: Instant,
    ) -> Response<Body> {
        if self.draining.load(Ordering::Relaxed) {
            return Problem::Draining.into_response();
        }
        let h = req.headers();
        let head_bytes: usize = h.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        if h.len() > MAX_HEADERS || head_bytes > MAX_HEADER_BYTES {
            return Problem::HeadersTooLarge.into_response();
        }
        if let Some(engine) = &self.jobs {
            if let Some(resp) = jobs::api::handle(engine, &self.defaults, &req).await {
                return resp;
            }
            if engine.deliverer.is_some() && req.uri().path() == WEBHOOK_SECRET_PATH {
                return jobs::api::webhook_secret(engine, &req);
            }
        }
        let route = match self.router.lookup(req.method(), req.uri().path()) {
            Ok(r) => Arc::clone(r),
            Err(Miss::NotFound) => return Problem::NoRoute.into_response(),
            Err(Miss::MethodNotAllowed(allow)) => {
                return Problem::MethodNotAllowed(allow).into_response()
            }
        };
        let ip = remote.ip();
        let settings = &route.cfg.settings;
        match (route.cfg.kind, &route.status) {
            (RouteKind::Task, Some(status)) => {
                let tr = TaskRoute {
                    cfg: &route.cfg,
                    upstream: &route.upstream,
                    status,
                    jobs: self.jobs.as_deref(),
                };
                task::handle(&self.client, &self.polls, tr, req, ip, arrived).await
            }
            (RouteKind::Sync, _) => match self
                .jobs
                .as_ref()
                .and_then(|e| e.routes.get(&route.cfg.name).map(|r| (e, r)))
            {
                Some((engine, jr)) => jobs::submit::handle(engine, jr, req, ip, arrived).await,
                None => Problem::StoreUnavailable.into_response(),
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

fn sane_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic())
}

/// Cheap unique request ids: a random per-process prefix and a counter.
struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let r = uuid::Uuid::new_v4().simple().to_string();
        RequestIds {
            prefix: r[..12].to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    /// `{prefix}-{counter as at least 8 hex digits}`, built by hand: this runs once per
    /// request and `format!` costs more than the rest of the id handling together.
    fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let digits = (16 - (n.leading_zeros() as usize) / 4).max(8);
        let mut out = Vec::with_capacity(self.prefix.len() + 1 + digits);
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'-');
        for i in (0..digits).rev() {
            out.push(HEX[((n >> (i * 4)) & 0xf) as usize]);
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_prefix_dash_hex_counter() {
        let ids = RequestIds::new();
        let first = ids.next();
        let first = first.to_str().unwrap();
        assert_eq!(first, format!("{}-00000000", ids.prefix));
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-00000001", ids.prefix)
        );
        ids.counter.store(0x1_2345_6789, Ordering::Relaxed);
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-{:08x}", ids.prefix, 0x1_2345_6789u64)
        );
        ids.counter.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-{:08x}", ids.prefix, u64::MAX)
        );
    }
}
