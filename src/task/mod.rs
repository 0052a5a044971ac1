//! `task` routes: `Prefer` in front of an async-first upstream (behaviour §4).
//!
//! The submit is forwarded as is (minus the execution preferences, `mode` and a callback).
//! A non-202 answer goes back unchanged. ASYNC hands back the upstream's own 202. DEFAULT
//! and WAIT(N) read the operation id from the 202 and poll the status URL ([`poller`])
//! until the operation is terminal (→ `200` with the status body) or the deadline, counted
//! from the request's arrival, passes (→ the upstream's original 202, so the operation is
//! never lost). WAIT answers carry `Preference-Applied` on both; DEFAULT carries none.
//!
//! With a callback (behaviour §6), an answer that ends in the upstream's 202 also hands
//! the operation to a durable *watch* ([`watch`]) that delivers the final status body.

pub mod admit;
pub mod operation;
pub mod poller;
pub mod watch;

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::response::Parts;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::client::HttpClient;
use crate::config::TaskConfig;
use crate::intent::{self, Intent};
use crate::jobs::Engine;
use crate::mode::Mode;
use crate::problem::Problem;
use crate::proxy::{self, Upstream};

pub use operation::StatusUrl;
pub use poller::Registry;

/// What a task route needs besides its config.
pub struct TaskRoute<'a> {
    /// The route's config (its `task` section is present).
    pub cfg: &'a crate::config::RouteConfig,
    /// Its upstream.
    pub upstream: &'a Upstream,
    /// Its status URL template.
    pub status: &'a StatusUrl,
    /// The job engine, for watches (present when the route takes callbacks).
    pub jobs: Option<&'a Engine>,
    /// Becomes `true` when the gateway drains: a wait ends at once with the 202.
    pub drain: tokio::sync::watch::Receiver<bool>,
}

/// Handles one request on a `task` route.
pub async fn handle(
    client: &HttpClient,
    polls: &Registry,
    route: TaskRoute<'_>,
    req: Request<Body>,
    client_ip: IpAddr,
    arrived: Instant,
) -> Response<Body> {
    let (intent, req) = match intent::read(route.cfg, req).await {
        Ok(v) => v,
        Err((problem, extra)) => {
            let mut resp = problem.into_response();
            intent::decorate(&extra, resp.headers_mut());
            return resp;
        }
    };
    let mut admitted = None;
    let result = match watch::take(&route, req, intent.resolution.mode).await {
        Ok((callback, req)) => match admit::reserve(&route, &req).await {
            Ok(admit::Decision::Refused(resp)) => Ok(resp),
            Ok(decision) => {
                if let admit::Decision::Admitted(a) = decision {
                    admitted = Some(a);
                }
                let call = Call {
                    intent: &intent,
                    callback,
                    admitted: &mut admitted,
                    client_ip,
                    arrived,
                };
                run(client, polls, &route, req, call).await
            }
            Err(p) => Err(p),
        },
        Err(p) => Err(p),
    };
    // Admitted, but the outcome never became known or handed off: the submit failed.
    if let Some(a) = admitted.take() {
        let status = match &result {
            Ok(resp) => resp.status(),
            Err(p) => p.parts().0,
        };
        a.finished(false, status.as_u16().to_string());
    }
    let mut resp = result.unwrap_or_else(Problem::into_response);
    intent.decorate(resp.headers_mut());
    resp
}

/// One request's intent and context.
struct Call<'a, 'r> {
    intent: &'a Intent,
    callback: Option<watch::Callback>,
    /// Taken (settled, released or handed to a watch) once the outcome is known.
    admitted: &'a mut Option<admit::Admitted<'r>>,
    client_ip: IpAddr,
    arrived: Instant,
}

async fn run(
    client: &HttpClient,
    polls: &Registry,
    route: &TaskRoute<'_>,
    req: Request<Body>,
    call: Call<'_, '_>,
) -> Result<Response<Body>, Problem> {
    let settings = &route.cfg.settings;
    let up = proxy::upstream_request(route.upstream, req, call.client_ip)?;
    let poll_headers = poll_headers(up.headers());
    let submitted = proxy::send(client, up, settings.upstream_timeout).await?;
    let applied = call.intent.resolution.applied.clone();
    let wait = match call.intent.resolution.mode {
        _ if submitted.status() != StatusCode::ACCEPTED => {
            if let Some(a) = call.admitted.take() {
                let status = submitted.status();
                a.finished(status.is_success(), status.as_u16().to_string());
            }
            return Ok(proxy::into_client_response(submitted));
        }
        Mode::Async if call.callback.is_none() && call.admitted.is_none() => {
            let mut resp = proxy::into_client_response(submitted);
            set_applied(&mut resp, applied);
            return Ok(resp);
        }
        Mode::Async => None,
        Mode::Wait(secs) => Some(Duration::from_secs(secs)),
        Mode::Default => Some(settings.sync_wait),
    };
    let accepted_at = Instant::now();
    let submit_took = submitted
        .extensions()
        .get::<proxy::UpstreamElapsed>()
        .copied();
    let (mut parts, incoming) = submitted.into_parts();
    proxy::forward_response_headers(&mut parts.headers);
    // The 202's body carries the operation id, so it is read whole — within
    // `upstream_timeout`, as a job reads its result: a 202 head whose body never comes
    // must not hold the client past its wait (or forever, for DEFAULT and ASYNC+callback).
    let read = body::collect(incoming, settings.max_body.bytes());
    let accepted_body = tokio::time::timeout(settings.upstream_timeout, read)
        .await
        .map_err(|_| Problem::UpstreamTimeout)?
        .map_err(|e| Problem::UpstreamContract {
            id: None,
            detail: format!("202 body: {e}"),
        })?;
    let task = route
        .cfg
        .task
        .as_ref()
        .ok_or_else(|| Problem::UpstreamContract {
            id: None,
            detail: "route has no task settings".into(),
        })?;
    let (id, target) = operation_of(route, task, &parts, &accepted_body, poll_headers)?;
    let end = match wait {
        None => poller::WaitEnd::Deadline,
        Some(wait) => {
            let slot = polls.slot(&target);
            let _waiting = crate::metrics::Waiting::start();
            let deadline = call.arrived + wait;
            let interval = settings.poll_interval;
            tokio::select! {
                end = poller::wait(client, task, &slot, &target, accepted_at, interval, deadline) => end,
                // Shutting down: hand out the operation id rather than be cut mid-wait.
                () = crate::gateway::drained(route.drain.clone()) => poller::WaitEnd::Deadline,
            }
        }
    };
    let mut resp = match end {
        poller::WaitEnd::Terminal { body, content_type } => {
            if let Some(a) = call.admitted.take() {
                let state = poller::read_state(&body, &task.state).unwrap_or_default();
                a.finished(task.succeeded.contains(&state), state);
            }
            let mut resp = Response::new(Body::full(body));
            if let Some(ct) = content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp
        }
        poller::WaitEnd::Deadline => {
            let admission = call.admitted.take();
            if call.callback.is_some() || admission.is_some() {
                if let Some(engine) = route.jobs {
                    let watched = watch::Watched::new(call.callback, admission);
                    watch::register(engine, route.cfg, watched, &target, &mut parts.headers).await;
                }
            }
            Response::from_parts(parts, Body::full(accepted_body))
        }
        poller::WaitEnd::Broken(detail) => {
            return Err(Problem::UpstreamContract {
                id: Some(id),
                detail,
            })
        }
    };
    set_applied(&mut resp, applied);
    // The access log's upstream time is the submit's, also when the answer is a poll's.
    if let Some(took) = submit_took {
        resp.extensions_mut().insert(took);
    }
    Ok(resp)
}

/// The operation id in a 202 and the poll target for it.
fn operation_of(
    route: &TaskRoute<'_>,
    task: &TaskConfig,
    parts: &Parts,
    body: &Bytes,
    headers: HeaderMap,
) -> Result<(String, poller::Target), Problem> {
    let id = operation::extract_id(&task.id, &parts.headers, body)
        .map_err(|detail| Problem::UpstreamContract { id: None, detail })?;
    let uri =
        route
            .status
            .uri(route.upstream, &id)
            .map_err(|detail| Problem::UpstreamContract {
                id: Some(id.clone()),
                detail,
            })?;
    let settings = &route.cfg.settings;
    let target = poller::Target {
        uri,
        headers,
        timeout: settings.upstream_timeout,
        max_body: settings.max_body.bytes(),
    };
    Ok((id, target))
}

fn set_applied(resp: &mut Response<Body>, applied: Option<HeaderValue>) {
    if let Some(v) = applied {
        resp.headers_mut()
            .insert(crate::prefer::PREFERENCE_APPLIED, v);
    }
}

/// The headers a status poll carries: the forwarded submit's, minus the body's own.
fn poll_headers(forwarded: &HeaderMap) -> HeaderMap {
    let mut h = forwarded.clone();
    for name in [CONTENT_LENGTH, CONTENT_TYPE, CONTENT_ENCODING] {
        h.remove(name);
    }
    h
}
