//! The one-time URL's endpoint: `POST {jobs.path}/{id}/upstream-callback/{token}`.
//!
//! Checked in this order, each answer final (the table of answers is in [`super`]):
//! method → the watch job by id (held briefly while its id is young and it is not stored
//! yet) → a callback-driven watch whose token hash matches, compared in constant time →
//! not already ended → the body, read only now (so a forger never makes the gateway read
//! a large body) up to the route's `max_body` → its state at `task.state`. A terminal
//! state completes the watch job through the same atomic `complete` a poll uses, so a
//! callback racing the fallback poll (or a second callback) lands at most once; the loser
//! reads the job again and gets `410`. The job must be running (claimed) to complete: a
//! watch stored a moment ago may still be pending, so that is retried for a few seconds,
//! then answered `503` for the upstream to retry.

use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use super::{token_hash, EARLY_GRACE, SEGMENT};
use crate::body::{self, Body};
use crate::jobs::Engine;
use crate::problem::Problem;
use crate::routes::table::Kind;
use crate::store::model::{Job, JobKind, Outcome, StoredResponse};
use crate::store::Lookup;
use crate::upstream::poller::read_state;

/// How long a callback waits for a just-stored watch to be claimed before `503`.
const CLAIM_WAIT: Duration = Duration::from_secs(10);

/// The id and token of a path under `prefix` (`[jobs].path`) that names a task callback.
pub fn parse<'a>(prefix: &str, path: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    let (id, rest) = rest.split_once('/')?;
    let token = rest.strip_prefix(SEGMENT)?.strip_prefix('/')?;
    if id.is_empty() || token.is_empty() || token.contains('/') {
        return None;
    }
    Some((id, token))
}

/// Answers a `POST` (or anything else) to a task callback URL.
pub async fn handle(engine: &Engine, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let Some((id, token)) = parse(&engine.cfg.path, &path) else {
        return Problem::TaskCallbackUnknown.into_response();
    };
    let answer = receive(engine, id, token, req).await;
    let outcome = match &answer {
        Ok(r) if r.status() == StatusCode::OK => "completed",
        Ok(_) => "progress",
        Err(Problem::TaskCallbackUnknown) => "unknown",
        Err(Problem::TaskCallbackUsed(_)) => "repeated",
        Err(_) => "refused",
    };
    crate::metrics::get().task_callback(outcome);
    answer.unwrap_or_else(Problem::into_response)
}

async fn receive(
    engine: &Engine,
    id: &str,
    token: &str,
    req: Request<Body>,
) -> Result<Response<Body>, Problem> {
    if req.method() != Method::POST {
        return Err(Problem::MethodNotAllowed(HeaderValue::from_static("POST")));
    }
    let job = find(engine, id).await?;
    let genuine = job.kind == JobKind::Watch
        && !job.fingerprint.is_empty()
        && same(job.fingerprint.as_bytes(), token_hash(token).as_bytes());
    if !genuine {
        return Err(Problem::TaskCallbackUnknown);
    }
    if job.status.is_terminal() {
        return Err(Problem::TaskCallbackUsed(job.status.as_str()));
    }
    // The route as configured now: its state pointer and body limit.
    let route = engine
        .route(&job.route)
        .ok_or(Problem::TaskCallbackUnknown)?;
    let Kind::Task(task) = &route.kind else {
        return Err(Problem::TaskCallbackUnknown);
    };
    let content_type = req.headers().get(CONTENT_TYPE).cloned();
    let max_body = route.cfg.settings.max_body.bytes();
    let bytes = body::collect(req.into_body(), max_body).await?;
    let state = read_state(&bytes, &task.cfg.state).map_err(Problem::TaskCallbackBody)?;
    if !task.cfg.succeeded.contains(&state) && !task.cfg.failed.contains(&state) {
        return Ok(ack(StatusCode::ACCEPTED, false, &state));
    }
    let headers = content_type
        .map(|ct| {
            vec![(
                "content-type".to_owned(),
                bytes::Bytes::copy_from_slice(ct.as_bytes()),
            )]
        })
        .unwrap_or_default();
    let outcome = Outcome::Answered(StoredResponse {
        status: 200,
        headers,
        body: bytes,
    });
    complete(engine, &job, outcome).await?;
    Ok(ack(StatusCode::OK, true, &state))
}

/// The watch job `id`, waiting a little for one minted moments ago (see the module doc of
/// [`super`]). Unknown, expired or unverifiable → `404`.
async fn find(engine: &Engine, id: &str) -> Result<Job, Problem> {
    let minted = minted_at(id);
    let now = engine.now();
    // Held only for an id minted within the grace (and not from the future).
    let hold = match minted {
        Some(t) if t <= now.saturating_add(5_000) => {
            let grace = i64::try_from(EARLY_GRACE.as_millis()).unwrap_or(i64::MAX);
            let left = grace.saturating_sub(now.saturating_sub(t)).clamp(0, grace);
            Duration::from_millis(u64::try_from(left).unwrap_or(0))
        }
        _ => Duration::ZERO,
    };
    let until = Instant::now() + hold;
    loop {
        match engine.store.get_unscoped(id, engine.now()).await {
            Ok(Lookup::Found(job)) => return Ok(job),
            Ok(Lookup::Missing) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Lookup::Missing | Lookup::Expired) => return Err(Problem::TaskCallbackUnknown),
            Err(e) => {
                crate::metrics::get().store_errors.inc();
                tracing::warn!(job = %id, error = %e, "task callback: store unavailable");
                return Err(Problem::StoreUnavailable);
            }
        }
    }
}

/// Completes the watch job with the callback's status document (see the module doc).
async fn complete(engine: &Engine, job: &Job, outcome: Outcome) -> Result<(), Problem> {
    let give_up = Instant::now() + CLAIM_WAIT;
    let unavailable = |e: crate::store::StoreError| {
        crate::metrics::get().store_errors.inc();
        tracing::warn!(job = %job.id, error = %e, "task callback: store unavailable");
        Problem::StoreUnavailable
    };
    loop {
        let done = engine
            .store
            .complete(
                &job.id,
                outcome.clone(),
                engine.retention_ms(),
                engine.now(),
            )
            .await
            .map_err(unavailable)?;
        if done {
            crate::metrics::get()
                .jobs_finished
                .get_or_create(&crate::metrics::RouteStateLabels {
                    route: job.route.clone(),
                    state: "succeeded",
                })
                .inc();
            // The local fallback poller (if this replica runs the watch) stops now.
            engine.abort_run(&job.id);
            engine.finished(&job.id);
            return Ok(());
        }
        // Not running: ended meanwhile (→ 410), or stored but not claimed yet (→ wait).
        match engine
            .store
            .get_unscoped(&job.id, engine.now())
            .await
            .map_err(unavailable)?
        {
            Lookup::Found(j) if j.status.is_terminal() => {
                return Err(Problem::TaskCallbackUsed(j.status.as_str()))
            }
            Lookup::Found(_) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Lookup::Found(_) => return Err(Problem::StoreUnavailable),
            Lookup::Missing | Lookup::Expired => return Err(Problem::TaskCallbackUsed("gone")),
        }
    }
}

/// The upstream's answer: whether the operation is now complete, and the state read.
fn ack(status: StatusCode, completed: bool, state: &str) -> Response<Body> {
    let doc = serde_json::json!({ "completed": completed, "state": state });
    let mut resp = Response::new(Body::full(doc.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// When a UUIDv7 id was minted, in milliseconds since the epoch.
fn minted_at(id: &str) -> Option<i64> {
    let (secs, nanos) = uuid::Uuid::parse_str(id).ok()?.get_timestamp()?.to_unix();
    i64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))
}

/// Equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{minted_at, parse, same};

    #[test]
    fn paths() {
        let p = "/jobs";
        assert_eq!(
            parse(p, "/jobs/abc/upstream-callback/tok"),
            Some(("abc", "tok"))
        );
        for miss in [
            "/jobs/abc",
            "/jobs/abc/upstream-callback",
            "/jobs/abc/upstream-callback/",
            "/jobs//upstream-callback/tok",
            "/jobs/abc/upstream-callback/tok/x",
            "/jobs/abc/callback/tok",
            "/other/abc/upstream-callback/tok",
        ] {
            assert_eq!(parse(p, miss), None, "{miss:?}");
        }
    }

    #[test]
    fn v7_ids_tell_their_minting_time() {
        let id = crate::store::model::new_id();
        let t = minted_at(&id).unwrap();
        assert!((crate::store::model::now_millis() - t).abs() < 5_000);
        assert_eq!(minted_at("not-a-uuid"), None);
        assert_eq!(minted_at(&uuid::Uuid::new_v4().to_string()), None);
    }

    #[test]
    fn same_compares_fully() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
