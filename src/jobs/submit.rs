//! Requests on `sync` routes: DEFAULT streams through; ASYNC and WAIT become jobs.
//!
//! ASYNC buffers the body (over `max_body` → `413`), stores the job, and only then answers
//! the `202` handle — a job id is never handed out before the job is durable. WAIT(N)
//! stores the job the same way, wakes the dispatcher, and waits for completion until N
//! seconds after the request arrived: finished → the upstream's response as it is (with
//! `Preference-Applied`); not yet → the `202` handle; the job goes on either way. A job
//! that ended without an upstream response (unreachable, canceled) is answered with its
//! status document. A WAIT that repeats an idempotency key waits on the original job.
//!
//! Tenancy: with `tenant_header` configured, a request that would create a job must carry
//! it (`401` otherwise); DEFAULT requests are plain proxying and don't need it.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_LENGTH, HOST};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::document;
use super::engine::{Engine, JobRoute};
use super::idempotency::{self, IDEMPOTENCY_KEY};
use super::model::{new_id, now_millis, JobKind, NewAdmission, NewJob, StoredRequest};
use super::store::{Created, Lookup, StoreError};
use crate::admission::notice::Action;
use crate::admission::{self, worker};
use crate::body::{self, Body};
use crate::intent::{self, Intent};
use crate::mode::Mode;
use crate::problem::Problem;
use crate::proxy;
use crate::webhook::intake;

/// Handles one request on a `sync` route.
pub async fn handle(
    engine: &Engine,
    route: &JobRoute,
    req: Request<Body>,
    client_ip: IpAddr,
    arrived: Instant,
    drain: tokio::sync::watch::Receiver<bool>,
) -> Response<Body> {
    let (intent, req) = match intent::read(&route.cfg, req).await {
        Ok(v) => v,
        Err((problem, extra)) => {
            let mut resp = problem.into_response();
            intent::decorate(&extra, resp.headers_mut());
            return resp;
        }
    };
    let mode = intent.resolution.mode;
    let mut resp = match take_callback(engine, route, req, mode).await {
        Err(p) => Err(p),
        Ok((_, req)) if mode == Mode::Default => forward(engine, route, req, client_ip).await,
        Ok((callback, req)) => {
            let deadline = match mode {
                Mode::Wait(secs) => Some(arrived + Duration::from_secs(secs)),
                _ => None,
            };
            let job = Submission {
                intent: &intent,
                callback,
                client_ip,
                deadline,
                drain,
            };
            submit(engine, route, req, job).await
        }
    }
    .unwrap_or_else(Problem::into_response);
    intent.decorate(resp.headers_mut());
    resp
}

/// DEFAULT: a streaming forward — admitted first when the route has an admission endpoint,
/// and settled (2xx) or released (anything else) once the upstream has answered.
async fn forward(
    engine: &Engine,
    route: &JobRoute,
    req: Request<Body>,
    client_ip: IpAddr,
) -> Result<Response<Body>, Problem> {
    let timeout = route.cfg.settings.upstream_timeout;
    let Some(adm) = &route.cfg.admission else {
        return proxy::forward(&engine.client, &route.upstream, req, client_ip, timeout).await;
    };
    // Plain proxying needs no tenant; the endpoint gets it when the request has one.
    let tenant = tenant(engine, req.headers()).unwrap_or_default();
    let ask = admission::Ask {
        tenant: &tenant,
        route: &route.cfg.name,
        method: req.method().as_str(),
        path: req.uri().path(),
        body_size: admission::declared_size(req.headers()),
    };
    let reservation = match admission::reserve(&engine.admission, adm, &ask).await? {
        admission::Verdict::Refused(resp) => return Ok(resp),
        admission::Verdict::Admitted { reservation } => reservation,
    };
    let id = req
        .headers()
        .get(crate::gateway::X_REQUEST_ID.clone())
        .and_then(|v| v.to_str().ok())
        .map_or_else(new_id, str::to_owned);
    let answer = proxy::forward(&engine.client, &route.upstream, req, client_ip, timeout).await;
    let status = match &answer {
        Ok(resp) => resp.status(),
        Err(p) => p.parts().0,
    };
    let action = if status.is_success() {
        Action::Settle
    } else {
        Action::Release
    };
    let owned = worker::Owned {
        action,
        reservation,
        id,
        tenant,
        route: route.cfg.name.clone(),
        status: status.as_u16().to_string(),
    };
    worker::send_soon(engine.admission.clone(), adm.clone(), owned);
    answer
}

/// The tenant of a request: the configured header's value, or `""` when single-tenant.
pub fn tenant(engine: &Engine, headers: &HeaderMap) -> Result<String, Problem> {
    let Some(name) = &engine.cfg.tenant_header else {
        return Ok(String::new());
    };
    match headers.get(name).map(|v| v.as_bytes().trim_ascii()) {
        Some(v) if !v.is_empty() => Ok(String::from_utf8_lossy(v).into_owned()),
        _ => Err(Problem::TenantRequired(name.to_string())),
    }
}

/// Takes the callback off the request; refuses one without ASYNC/WAIT or that the guard
/// refuses (`422`).
pub async fn take_callback(
    engine: &Engine,
    route: &JobRoute,
    req: Request<Body>,
    mode: Mode,
) -> Result<(Option<String>, Request<Body>), Problem> {
    let (mut parts, body) = req.into_parts();
    let (callback, body) = intake::take(&route.cfg, &mut parts, body).await?;
    if let Some(url) = &callback {
        if mode == Mode::Default {
            return Err(Problem::CallbackWithoutAsync);
        }
        intake::check(engine.deliverer.as_ref(), url).await?;
    }
    Ok((callback, Request::from_parts(parts, body)))
}

/// What a job submission carries besides the request.
struct Submission<'a> {
    intent: &'a Intent,
    callback: Option<String>,
    client_ip: IpAddr,
    deadline: Option<Instant>,
    /// `true` once the gateway drains: a wait answers its 202 at once.
    drain: tokio::sync::watch::Receiver<bool>,
}

async fn submit(
    engine: &Engine,
    route: &JobRoute,
    req: Request<Body>,
    sub: Submission<'_>,
) -> Result<Response<Body>, Problem> {
    let Submission {
        intent,
        callback,
        client_ip,
        deadline,
        drain,
    } = sub;
    let tenant = tenant(engine, req.headers())?;
    let mut key =
        idempotency::from_header(req.headers()).map_err(Problem::InvalidIdempotencyKey)?;
    let host = proxy::original_host(&req);
    let (mut parts, body) = req.into_parts();
    let body = body::collect(body, route.cfg.settings.max_body.bytes())
        .await
        .map_err(|e| match e {
            body::CollectError::TooLarge(n) => Problem::BodyTooLarge(n),
            body::CollectError::Read(e) => Problem::BadRequestBody(e.to_string()),
            body::CollectError::Idle(d) => Problem::BodyTimeout(d),
        })?;
    if let (None, Some(crate::config::FieldSource::Json(ptr))) = (&key, &route.cfg.idempotency) {
        key = idempotency::from_json(&body, ptr).map_err(Problem::InvalidIdempotencyKey)?;
    }
    proxy::forward_request_headers(&mut parts.headers, parts.version, client_ip, host);
    parts.headers.remove(&IDEMPOTENCY_KEY);
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(HOST);
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let method = parts.method.as_str().to_owned();
    let admitted = match &route.cfg.admission {
        None => None,
        Some(adm) => {
            let ask = admission::Ask {
                tenant: &tenant,
                route: &route.cfg.name,
                method: &method,
                path: parts.uri.path(),
                body_size: u64::try_from(body.len()).ok(),
            };
            match admission::reserve(&engine.admission, adm, &ask).await? {
                admission::Verdict::Refused(resp) => return Ok(resp),
                admission::Verdict::Admitted { reservation } => Some((adm, reservation)),
            }
        }
    };
    let id = new_id();
    let job = NewJob {
        id: id.clone(),
        tenant: tenant.clone(),
        route: route.cfg.name.clone(),
        idempotency_key: key,
        fingerprint: idempotency::fingerprint(&method, &target, &body),
        request: StoredRequest {
            method,
            target,
            headers: header_list(&parts.headers),
            body,
        },
        kind: JobKind::Call,
        callback,
        admission: admitted.as_ref().map(|(adm, reservation)| NewAdmission {
            url: adm.url.to_string(),
            reservation: reservation.clone(),
        }),
    };
    let max = engine.cfg.max_queued_per_tenant;
    let created = engine.store.create(job, max, now_millis()).await;
    // A reservation made for a job that was not created (an idempotent repeat, a refusal,
    // a store failure) goes back at once: the client is never charged twice.
    let unused = |why: &str| {
        if let Some((adm, reservation)) = &admitted {
            let owned = worker::Owned {
                action: Action::Release,
                reservation: reservation.clone(),
                id: id.clone(),
                tenant: tenant.clone(),
                route: route.cfg.name.clone(),
                status: why.to_owned(),
            };
            worker::send_soon(engine.admission.clone(), (*adm).clone(), owned);
        }
    };
    let created = created.map_err(|e| {
        unused("not-created");
        crate::metrics::get().store_errors.inc();
        tracing::error!(error = %e, "job store unavailable");
        Problem::StoreUnavailable
    })?;
    let job = match created {
        Created::New(job) => {
            engine.wake();
            job
        }
        Created::Existing(job) => {
            unused("duplicate");
            job
        }
        Created::KeyConflict => {
            unused("not-created");
            return Err(Problem::IdempotencyConflict);
        }
        Created::QueueFull => {
            unused("not-created");
            return Err(Problem::QueueFull(max));
        }
    };
    let prefix = &engine.cfg.path;
    let mut resp = match deadline {
        None => document::accepted(prefix, &job),
        Some(deadline) => match waiting(engine, &tenant, &job.id, deadline, drain).await {
            Ok(Lookup::Found(done)) if done.status.is_terminal() => match &done.response {
                Some(stored) => document::replay(stored),
                None => document::status_response(engine.links(&done), &done, StatusCode::OK),
            },
            Ok(Lookup::Found(pending)) => document::accepted(prefix, &pending),
            // Swept or unreadable meanwhile: the handle is still the truthful answer.
            Ok(_) | Err(_) => document::accepted(prefix, &job),
        },
    };
    if let Some(applied) = &intent.resolution.applied {
        resp.headers_mut()
            .insert(crate::prefer::PREFERENCE_APPLIED, applied.clone());
    }
    Ok(resp)
}

fn header_list(headers: &HeaderMap) -> Vec<(String, Bytes)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

/// Waits for the job to finish until `deadline`, counted in
/// `prefer_gateway_waiting_requests`; when the gateway starts draining, reads the job as it
/// is now instead (so the client gets its 202 handle, not a cut connection).
async fn waiting(
    engine: &Engine,
    tenant: &str,
    id: &str,
    deadline: Instant,
    drain: tokio::sync::watch::Receiver<bool>,
) -> Result<Lookup, StoreError> {
    let _waiting = crate::metrics::Waiting::start();
    tokio::select! {
        found = engine.wait_terminal(tenant, id, deadline) => found,
        () = crate::gateway::drained(drain) => engine.wait_terminal(tenant, id, Instant::now()).await,
    }
}
