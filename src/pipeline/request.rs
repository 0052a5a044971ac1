//! One path for every request: request id → gateway-wide checks (draining, head limits,
//! the tenant's rate) → route lookup (configured routes and the built-in endpoints, one
//! router) → a typed route, one arm per kind → for task and sync routes the shared step
//! ([`crate::prepare`]) → the handler → the one place that writes the response headers
//! ([`super::respond`]) → metrics and the access line.
//!
//! Every answer carries `X-Request-Id`: the client's own when it sent a sane one (1–200
//! visible ASCII bytes), otherwise a fresh one; the same id is forwarded upstream and
//! logged.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::respond::{self, Intended};
use super::{access_log, Gateway};
use crate::body::Body;
use crate::limits::{MAX_HEADERS, MAX_HEADER_BYTES};
use crate::metrics::{self, RouteMetrics};
use crate::prefer;
use crate::prepare::{self, For, Stop};
use crate::problem::Problem;
use crate::request_id::{sane_request_id, X_REQUEST_ID};
use crate::routes::router::Miss;
use crate::routes::table::{Kind, Route, Target};
use crate::upstream::forward::UpstreamElapsed;
use crate::upstream::origin::Origin;

impl Gateway {
    /// Serves one request from `origin`.
    pub async fn handle(&self, req: Request<Incoming>, origin: &Origin) -> Response<Body> {
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
            let tenant = crate::tenant::bytes_of(&parts.headers, self.tenant_header.as_ref());
            (
                parts.method.clone(),
                parts.uri.clone(),
                tenant.map(<[u8]>::to_vec),
            )
        });
        let req = Request::from_parts(parts, Body::idle_limited(body, self.body_idle));
        let (mut resp, counted) = self.route(req, origin, arrived).await;
        let elapsed = arrived.elapsed();
        let status = resp.status().as_u16();
        let applied = resp.headers().get(&prefer::PREFERENCE_APPLIED);
        let preference = metrics::preference_label(applied);
        let upstream = resp.extensions().get::<UpstreamElapsed>().map(|u| u.0);
        counted.request(status, preference, elapsed);
        if let Some(took) = upstream {
            counted.upstream(took);
        }
        if let Some((method, uri, tenant)) = &logged {
            access_log::write(&access_log::Entry {
                request_id: &request_id,
                method,
                path: uri.path(),
                route: counted.label().as_str(),
                status,
                preference,
                applied,
                upstream,
                elapsed,
                tenant: tenant.as_deref(),
            });
        }
        respond::request_id(&mut resp, request_id);
        resp
    }

    /// The answer, and what it is counted under.
    async fn route(
        &self,
        req: Request<Body>,
        origin: &Origin,
        arrived: Instant,
    ) -> (Response<Body>, Arc<RouteMetrics>) {
        let unmatched = |p: Problem| (p.into_response(), RouteMetrics::unmatched());
        if self.draining.load(Ordering::Relaxed) {
            return unmatched(Problem::Draining);
        }
        let h = req.headers();
        // One pass over the head: its size, and whether it names a transfer coding (checked
        // only then, so the common request pays no lookup for it).
        let (mut head_bytes, mut coded) = (0usize, false);
        for (n, v) in h {
            head_bytes += n.as_str().len() + v.len();
            coded |= n == http::header::TRANSFER_ENCODING;
        }
        if h.len() > MAX_HEADERS || head_bytes > MAX_HEADER_BYTES {
            return unmatched(Problem::HeadersTooLarge);
        }
        if let Some(why) = coded.then(|| odd_transfer_coding(h)).flatten() {
            let mut resp = Problem::BadRequestBody(why).into_response();
            // The body was never read and its framing is in doubt: the connection ends here.
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return (resp, RouteMetrics::unmatched());
        }
        if let Some(limiter) = &self.rate {
            // Namespaced, so a tenant key that reads like an address shares nobody's bucket.
            let key = match crate::tenant::bytes_of(h, self.tenant_header.as_ref()) {
                Some(t) => [&b"t:"[..], t].concat(),
                None => format!("ip:{}", origin.ip).into_bytes(),
            };
            if let Err(retry) = limiter.check(&key, Instant::now()) {
                return unmatched(Problem::RateLimited(retry.as_secs()));
            }
        }
        let table = self.table.load();
        let target = match table.router.lookup(req.method(), req.uri().path()) {
            Ok(t) => t.clone(),
            Err(Miss::NotFound) => return unmatched(Problem::NoRoute),
            Err(Miss::MethodNotAllowed(allow)) => {
                return unmatched(Problem::MethodNotAllowed(allow))
            }
        };
        let route = match target {
            Target::Route(route) => route,
            Target::Jobs => {
                let defaults = table.defaults;
                drop(table);
                let resp = match &self.jobs {
                    // A task callback URL: the upstream calls, so no tenant is asked for
                    // (the token authenticates it), and its body is read.
                    Some(engine)
                        if crate::task::callback::receive::parse(
                            &engine.cfg.path,
                            req.uri().path(),
                        )
                        .is_some() =>
                    {
                        crate::task::callback::receive::handle(engine, req).await
                    }
                    Some(engine) => {
                        let base = self.public_base(&req, origin);
                        let drain = self.drain.subscribe();
                        crate::jobs::api::handle(engine, &defaults, &req, &base, drain).await
                    }
                    None => Problem::NoRoute.into_response(),
                };
                return (resp, RouteMetrics::jobs_api());
            }
            Target::WebhookSecret => {
                let resp = match (&self.jobs, &self.deliverer) {
                    (Some(engine), Some(d)) => crate::jobs::api::webhook_secret(engine, d, &req),
                    _ => Problem::NoRoute.into_response(),
                };
                return (resp, RouteMetrics::jobs_api());
            }
        };
        drop(table);
        let resp = self.serve(&route, req, origin, arrived).await;
        (resp, Arc::clone(&route.metrics))
    }

    /// A configured route's answer: one arm per route kind.
    async fn serve(
        &self,
        route: &Route,
        req: Request<Body>,
        origin: &Origin,
        arrived: Instant,
    ) -> Response<Body> {
        let (step, task) = match &route.kind {
            Kind::Proxy => return crate::proxy::handle(&self.client, route, req, origin).await,
            Kind::Task(task) => (For::Task, Some(task)),
            Kind::Sync => (For::Sync, None),
        };
        let ctx = prepare::Context {
            tenant_header: self.tenant_header.as_ref(),
            admission: &self.admission,
            deliverer: self.deliverer.as_deref(),
        };
        let (prepared, req) = match prepare::prepare(ctx, &route.cfg, step, req).await {
            Ok(v) => v,
            Err(Stop::Refused(resp)) => return resp,
            Err(Stop::Problem(p, extra)) => {
                let mut resp = p.into_response();
                respond::intent_headers(&mut resp, Intended::Partial(&extra));
                return resp;
            }
        };
        let intent = prepared.intent.clone();
        let answered = match task {
            Some(task) => {
                let jobs = self.jobs.is_some();
                let base = match crate::task::passes_through(task, &prepared, jobs) {
                    true => String::new(),
                    false => self.public_base(&req, origin),
                };
                let call = crate::task::Call {
                    client: &self.client,
                    polls: &self.polls,
                    jobs: self.jobs.as_deref(),
                    origin,
                    arrived,
                    drain: self.drain.subscribe(),
                    base,
                };
                crate::task::handle(call, route, task, prepared, req).await
            }
            None => match &self.jobs {
                Some(engine) => {
                    let base = self.public_base(&req, origin);
                    let call = crate::jobs::submit::Call {
                        engine,
                        client: &self.client,
                        origin,
                        arrived,
                        drain: self.drain.subscribe(),
                        base,
                    };
                    crate::jobs::submit::handle(call, route, prepared, req).await
                }
                None => Err(Problem::StoreUnavailable),
            },
        };
        let (mut resp, honoured) = answered.unwrap_or_else(|p| (p.into_response(), false));
        let intended = Intended::Read {
            intent: &intent,
            honoured,
        };
        respond::intent_headers(&mut resp, intended);
        resp
    }

    /// The public base of the URLs in this request's answer (see [`super::public`]).
    fn public_base<B>(&self, req: &Request<B>, origin: &Origin) -> String {
        super::public::for_request(&self.server, origin, req.uri(), req.headers())
    }
}

/// Why a request's `Transfer-Encoding` is refused, if it is anything but one `chunked`.
///
/// Request smuggling (`tests/smuggling.rs`): hyper frames a body as chunked when the *last*
/// coding is `chunked` and ignores the others, and the upstream client re-frames the body
/// with its own chunking while `Transfer-Encoding` is dropped as hop-by-hop. So
/// `gzip, chunked` would reach the upstream as gzip bytes with nothing saying so, and
/// `identity, chunked` or `chunked` twice (RFC 9112 §6.1: chunked at most once) are the
/// disguised-`Transfer-Encoding` shapes other hops read differently. All are refused
/// before anything goes up, rather than forwarded in a form the client did not send.
fn odd_transfer_coding(h: &http::HeaderMap) -> Option<String> {
    let mut codings = 0usize;
    for v in h.get_all(http::header::TRANSFER_ENCODING) {
        for coding in v.as_bytes().split(|b| *b == b',') {
            codings += 1;
            if !coding.trim_ascii().eq_ignore_ascii_case(b"chunked") || codings > 1 {
                return Some(format!(
                    "Transfer-Encoding {:?}: only a single \"chunked\" is accepted",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
        }
    }
    None
}
