//! The job API under `[jobs].path`: `GET` (the list), `GET {id}`, `GET {id}/result`,
//! `DELETE {id}`.
//!
//! - `GET` on `[jobs].path` itself → a page of the caller's jobs, newest first, with a
//!   cursor for the next; `DELETE {id}?purge=true` → deletes a finished job at once
//!   (`204`). Both are in [`super::listing`].
//! - `GET {id}` → `200` status document; while not terminal with `Retry-After` and, when
//!   pending, `queue_position` (see [`super::pace`]; the canceled job a `DELETE` answers
//!   and a redelivered finished job carry neither). With
//!   `Prefer: wait=N` it long-polls until the job is terminal or N seconds pass
//!   (`Preference-Applied: wait=N`; N is capped by `[defaults].max_wait`). With
//!   `Accept: text/event-stream` it streams the job's state changes instead
//!   ([`super::events`]). `Vary: Prefer, Accept`.
//! - `GET {id}/result` → the stored upstream response replayed verbatim; `202` with the
//!   status document while not terminal; `409` when the job ended without a response.
//! - `DELETE {id}` → cancel (pending: never sent; running: upstream call dropped) → `200`
//!   with the status document; `409` once terminal.
//!
//! - `POST {id}/callback` → schedules the callback again (fresh schedule, same
//!   `webhook-id`) → `202` with the status document; `409` while unfinished or without a
//!   callback.
//! - `GET /webhook-secret` (outside the prefix) → the tenant's own signing secret.
//!
//! An unknown id and another tenant's id give byte-identical `404`s (the problem document
//! does not echo the id); past retention → `410`.
//!
//! A `GET {id}/result` whose query has a `sig` parameter is a signed result URL (the
//! status document's `download_url`, see [`crate::signed_url`]) and is never authenticated
//! by the tenant header instead. Its checks run in this order, each answer final:
//!
//! 1. malformed, altered, or no key configured → `403 signature-invalid`;
//! 2. genuine, but the job is past retention, swept or purged (also once its tombstone is
//!    gone, and a purge leaves none: only this gateway's key could have signed the id, so
//!    the job did exist) → `410`, the same problem as the tenant-authenticated endpoint's
//!    for an expired job;
//! 3. the job's route no longer has `signed_results` → `403 signature-invalid` (turning
//!    the setting off revokes the links, not only stops new ones);
//! 4. genuine, the job exists, but `expires` has passed → `403 signature-expired`;
//! 5. otherwise exactly what the tenant-authenticated `GET {id}/result` answers.
//!
//! Retention comes before expiry so that a link that ran out together with its job says
//! what a tenant would be told (`410`), and a link signed for less than the job's life
//! (not one this gateway makes, but a valid signature all the same) says `403`.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, ALLOW};
use http::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use super::engine::Engine;
use super::events;
use super::listing;
use crate::body::Body;
use crate::config::Defaults;
use crate::drain::Drain;
use crate::prefer::{Preferences, PREFERENCE_APPLIED};
use crate::problem::Problem;
use crate::signed_url::{LinkError, LinkParams};
use crate::store::document::{self, Progress};
use crate::store::model::Job;
use crate::store::{Canceled, Lookup, Redeliver};
use crate::webhook::deliver::Deliverer;

mod path;

pub use path::{parse_path, JobPath};

/// The caller's tenant under the one rule (`401` when the gateway is multi-tenant and the
/// request names none).
pub(super) fn tenant(engine: &Engine, headers: &http::HeaderMap) -> Result<String, Problem> {
    crate::tenant::required(headers, engine.cfg.tenant_header.as_ref())
        .map_err(Problem::TenantRequired)
}

/// Answers a request the router sent to the job API (a path under `[jobs].path`).
/// `base` is the public base of the URLs in the answers (see `pipeline::public`); `drain`
/// ends live status streams when the gateway shuts down.
pub async fn handle<B>(
    engine: &Arc<Engine>,
    defaults: &Defaults,
    req: &Request<B>,
    base: &str,
    drain: Drain,
) -> Response<Body> {
    let path = match parse_path(&engine.cfg.path, req.uri().path()) {
        Some(JobPath::List) => return list(engine, req, base).await,
        Some(path) => path,
        None => return Problem::NoRoute.into_response(),
    };
    let allowed = path.allowed();
    let resp = match (req.method(), path) {
        (&Method::GET, JobPath::Status(id)) if events::wanted(req.headers()) => {
            stream(engine, req, id, base, drain).await
        }
        (&Method::GET | &Method::HEAD, JobPath::Status(id)) => {
            status(engine, defaults, req, id, base).await
        }
        (&Method::GET | &Method::HEAD, JobPath::Result(id)) => {
            match LinkParams::from_query(req.uri().query()) {
                Some(link) => signed_result(engine, link, id, base).await,
                None => fetch_result(engine, req, id, base).await,
            }
        }
        // Tenant first (401 before 400), as everywhere in the job API.
        (&Method::DELETE, JobPath::Status(id)) => match tenant(engine, req.headers())
            .and_then(|_| listing::wants_purge(req.uri().query()))
        {
            Ok(true) => listing::purge(engine, req, id).await,
            Ok(false) => cancel(engine, req, id, base).await,
            Err(p) => Err(p),
        },
        (&Method::POST, JobPath::Callback(id)) => redeliver(engine, req, id, base).await,
        _ => Err(Problem::MethodNotAllowed(HeaderValue::from_static(allowed))),
    };
    resp.unwrap_or_else(|p| {
        let mut r = p.into_response();
        if r.status() == StatusCode::METHOD_NOT_ALLOWED {
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allowed));
        }
        r
    })
}

/// `GET {jobs.path}` (and `HEAD`): the list; any other method is `405`.
async fn list<B>(engine: &Engine, req: &Request<B>, base: &str) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let allowed = HeaderValue::from_static(JobPath::List.allowed());
        return Problem::MethodNotAllowed(allowed).into_response();
    }
    listing::list(engine, req, base)
        .await
        .unwrap_or_else(Problem::into_response)
}

pub(super) fn store_down(e: crate::store::StoreError) -> Problem {
    crate::metrics::get().store_errors.inc();
    tracing::error!(error = %e, "job store unavailable");
    Problem::StoreUnavailable
}

async fn status<B>(
    engine: &Engine,
    defaults: &Defaults,
    req: &Request<B>,
    id: &str,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    let prefs = Preferences::from_headers(req.headers());
    let wait = prefs
        .wait()
        .filter(|&n| n >= defaults.min_wait.as_secs().max(1))
        .map(|n| n.min(defaults.max_wait.as_secs()));
    let found = match wait {
        Some(n) => {
            let deadline = Instant::now() + Duration::from_secs(n);
            engine.wait_terminal(&tenant, id, deadline).await
        }
        None => engine.store.get(&tenant, id, engine.now()).await,
    }
    .map_err(store_down)?;
    let mut resp = match found {
        Lookup::Found(job) => {
            let progress = engine.progress(&job).await;
            document::status_response(&engine.links(&job, base), &job, StatusCode::OK, &progress)
        }
        Lookup::Expired => return Err(Problem::JobExpired),
        Lookup::Missing => return Err(Problem::JobNotFound),
    };
    if let Some(n) = wait {
        if let Ok(v) = HeaderValue::from_str(&format!("wait={n}")) {
            resp.headers_mut().insert(PREFERENCE_APPLIED, v);
        }
    }
    events::vary_accept(resp.headers_mut());
    Ok(resp)
}

/// `GET {id}` with `Accept: text/event-stream`: the same lookup (and so the same `401`,
/// `404`, `410`, `503`), then the live stream.
async fn stream<B>(
    engine: &Arc<Engine>,
    req: &Request<B>,
    id: &str,
    base: &str,
    drain: Drain,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    let found = engine
        .store
        .get(&tenant, id, engine.now())
        .await
        .map_err(store_down)?;
    match found {
        Lookup::Found(job) => {
            let last = events::last_event_id(req.headers());
            let position = if events::event_id(&job) > last {
                engine.progress(&job).await.queue_position
            } else {
                None
            };
            Ok(events::respond(
                engine,
                &job,
                position,
                tenant,
                base.to_owned(),
                last,
                drain,
            ))
        }
        Lookup::Expired => Err(Problem::JobExpired),
        Lookup::Missing => Err(Problem::JobNotFound),
    }
}

async fn fetch_result<B>(
    engine: &Engine,
    req: &Request<B>,
    id: &str,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    match engine
        .store
        .get(&tenant, id, engine.now())
        .await
        .map_err(store_down)?
    {
        Lookup::Found(job) => result_of(engine, &job, base).await,
        Lookup::Expired => Err(Problem::JobExpired),
        Lookup::Missing => Err(Problem::JobNotFound),
    }
}

/// `GET {id}/result?expires=…&sig=…`: the checks in the module doc, in that order.
async fn signed_result(
    engine: &Engine,
    link: Result<LinkParams, LinkError>,
    id: &str,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let key = engine
        .cfg
        .signing_key
        .as_ref()
        .ok_or(Problem::SignatureInvalid)?;
    let link = link.map_err(|_| Problem::SignatureInvalid)?;
    link.verify(key, id)
        .map_err(|_| Problem::SignatureInvalid)?;
    let now = engine.now();
    let job = match engine
        .store
        .get_unscoped(id, now)
        .await
        .map_err(store_down)?
    {
        Lookup::Found(job) => job,
        Lookup::Expired | Lookup::Missing => return Err(Problem::JobExpired),
    };
    if engine.links(&job, base).signer.is_none() {
        return Err(Problem::SignatureInvalid);
    }
    link.check_expiry(now)
        .map_err(|_| Problem::SignatureExpired)?;
    result_of(engine, &job, base).await
}

/// The result of a job the caller may read: the stored response replayed verbatim; `202`
/// with the status document while unfinished; `409` when it ended without a response.
async fn result_of(engine: &Engine, job: &Job, base: &str) -> Result<Response<Body>, Problem> {
    if !job.status.is_terminal() {
        let progress = engine.progress(job).await;
        return Ok(document::result_pending(
            &engine.links(job, base),
            job,
            &progress,
        ));
    }
    match &job.response {
        Some(stored) => Ok(document::replay(stored)),
        None => Err(Problem::NoResult(job.status.as_str())),
    }
}

async fn cancel<B>(
    engine: &Engine,
    req: &Request<B>,
    id: &str,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    let now = engine.now();
    match engine
        .store
        .cancel(&tenant, id, engine.retention_ms(), now)
        .await
        .map_err(store_down)?
    {
        Canceled::Done(job) => {
            engine.abort_run(id);
            engine.finished(id);
            super::task_cancel::cancel_upstream(engine, &job);
            Ok(document::status_response(
                &engine.links(&job, base),
                &job,
                StatusCode::OK,
                &Progress::default(),
            ))
        }
        Canceled::AlreadyTerminal(job) => Err(Problem::JobFinished(job.status.as_str())),
        Canceled::Expired => Err(Problem::JobExpired),
        Canceled::Missing => Err(Problem::JobNotFound),
    }
}

async fn redeliver<B>(
    engine: &Engine,
    req: &Request<B>,
    id: &str,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    match engine
        .store
        .redeliver(&tenant, id, engine.now())
        .await
        .map_err(store_down)?
    {
        Redeliver::Scheduled(job) => {
            engine.wake_deliveries();
            Ok(document::status_response(
                &engine.links(&job, base),
                &job,
                StatusCode::ACCEPTED,
                &Progress::default(),
            ))
        }
        Redeliver::NotFinished(_) => Err(Problem::CannotRedeliver(
            "the job has not finished; its callback is delivered when it does",
        )),
        Redeliver::NoCallback(_) => Err(Problem::CannotRedeliver("the job has no callback")),
        Redeliver::Expired => Err(Problem::JobExpired),
        Redeliver::Missing => Err(Problem::JobNotFound),
    }
}

/// `GET /webhook-secret`: the caller's own signing secret (`{"secret": "whsec_…"}`).
pub fn webhook_secret<B>(
    engine: &Engine,
    deliverer: &Deliverer,
    req: &Request<B>,
) -> Response<Body> {
    let answer = || -> Result<Response<Body>, Problem> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(Problem::MethodNotAllowed(HeaderValue::from_static(
                "GET, HEAD",
            )));
        }
        let tenant = tenant(engine, req.headers())?;
        let doc = serde_json::json!({"secret": deliverer.tenant_secret(&tenant).render()});
        let mut resp = Response::new(Body::full(serde_json::to_vec(&doc).unwrap_or_default()));
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        Ok(resp)
    };
    answer().unwrap_or_else(Problem::into_response)
}
