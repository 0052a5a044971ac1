//! Running one claimed job: send the stored request upstream, store the answer.
//!
//! The job id goes upstream as `Idempotency-Key`, so an upstream that honours it makes a
//! re-run after a crash safe. The answer is read whole (up to the route's `max_body`; a
//! larger one fails the job with `result_too_large`) because it must be replayable. While
//! the call is in flight the lease is renewed every third of `[jobs].lease`; a cancel — local
//! (the job API of this process) or seen through a failed renewal — drops the call, and so
//! does the job's run deadline (`store::deadline`), which then cancels the job as
//! `deadline_exceeded`. A transient failure of the call (`routes[].retry`) is tried again
//! after a backoff, with the same `Idempotency-Key` (see `retry`). A successful run's wall
//! time feeds the route's run-time estimate (`super::pace`), which the `Retry-After` of
//! status reads is derived from.

use std::time::Duration;

use http::{HeaderValue, Method, Request};

use super::engine::Engine;
use super::retry::{self, Tried};
use crate::body::{self, Body};
use crate::config::RetryOn;
use crate::error::ErrorKind;
use crate::idempotency::IDEMPOTENCY_KEY;
use crate::routes::table::{Kind, Route};
use crate::store::model::{Job, JobError, JobKind, Outcome, RunNote, StoredResponse};
use crate::store::{deadline, headers, StoreError};
use crate::upstream::forward;
use crate::webhook::schedule::parse_retry_after;

/// Runs `job` to its end (or until canceled) and records the outcome.
pub async fn run(engine: &Engine, job: Job) {
    let stop = engine.register_run(&job.id);
    let limit = engine.route(&job.route).and_then(|r| r.cfg.max_run_time);
    let run_deadline = deadline::run_deadline(&job, engine.now(), limit);
    let started = tokio::time::Instant::now();
    // `Err(true)`: the run deadline passed; `Err(false)`: stopped by a cancel.
    let outcome = tokio::select! {
        outcome = call(engine, &job, run_deadline) => Ok(outcome),
        () = stop.notified() => Err(false),
        () = keep_lease(engine, &job.id) => Err(false),
        () = until(engine, run_deadline) => Err(true),
    };
    // The call future is gone here: its upstream connection is closed.
    engine.unregister_run(&job.id);
    if matches!(outcome, Err(true)) {
        let why = deadline::exceeded("while it ran");
        engine.cancel_for_deadline(&job.tenant, &job.id, why).await;
        return;
    }
    let outcome = outcome.ok();
    let Some(outcome) = outcome else {
        tracing::debug!(job = %job.id, "run stopped: the job was canceled");
        engine.finished(&job.id);
        return;
    };
    let took = started.elapsed();
    let state = match &outcome {
        Outcome::Answered(r) if (200..300).contains(&r.status) => "succeeded",
        _ => "failed",
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let write = engine.store.complete(
            &job.id,
            outcome.clone(),
            engine.retention_ms(),
            engine.now(),
        );
        // Bounded, so a write stuck on a dead connection is retried on a fresh one.
        let written = tokio::time::timeout(Duration::from_secs(10), write)
            .await
            .unwrap_or_else(|_| Err(StoreError("no answer within 10s".into())));
        match written {
            Ok(stored) => {
                if stored && state == "succeeded" {
                    // What the route's next `Retry-After`s are estimated from (`pace`).
                    engine.pace.record(&job.route, took);
                }
                if stored {
                    crate::metrics::get()
                        .jobs_finished
                        .get_or_create(&crate::metrics::RouteStateLabels {
                            route: job.route.clone(),
                            state,
                        })
                        .inc();
                }
                tracing::debug!(job = %job.id, stored, "run finished");
                break;
            }
            // The store is down: keep the result and try again — nothing accepted is lost.
            Err(e) => {
                crate::metrics::get().store_errors.inc();
                tracing::warn!(job = %job.id, error = %e, "cannot store the result; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    engine.finished(&job.id);
}

/// Sleeps until `at` (engine clock); forever without a deadline.
async fn until(engine: &Engine, at: Option<i64>) {
    match at {
        Some(at) => {
            let left = u64::try_from(at.saturating_sub(engine.now())).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(left)).await;
        }
        None => std::future::pending().await,
    }
}

/// Renews the lease until the store says the job is no longer running (then returns).
async fn keep_lease(engine: &Engine, id: &str) {
    loop {
        let lease = engine.cfg.lease;
        tokio::time::sleep(lease / 3).await;
        let until = engine.now() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        match engine.store.renew(id, until, engine.now()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                crate::metrics::get().store_errors.inc();
                tracing::warn!(job = %id, error = %e, "lease renewal failed");
            }
        }
    }
}

fn failed(code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed(JobError {
        code: code.into(),
        message: message.into(),
    })
}

async fn call(engine: &Engine, job: &Job, run_deadline: Option<i64>) -> Outcome {
    let Some(route) = engine.route(&job.route) else {
        return failed(
            "route_removed",
            format!("route {:?} is no longer configured", job.route),
        );
    };
    if job.kind == JobKind::Watch {
        return watch(engine, &route, job).await;
    }
    // The claim counted this run's first attempt; one re-claimed after a crash makes only
    // the attempts left (see `retry`).
    let mut made = job.attempts.max(1);
    loop {
        let tried = attempt(engine, &route, job).await;
        let left = run_deadline.map(|at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(engine.now())).unwrap_or(0))
        });
        let unit = crate::webhook::schedule::jitter_unit();
        let Some(wait) = retry::next_wait(&route.cfg.retry, made, &tried, unit, left) else {
            return tried.outcome;
        };
        let Some(error) = retry::last_error(&tried.outcome) else {
            return tried.outcome;
        };
        tracing::info!(job = %job.id, attempt = made, code = %error.code, ?wait, "retrying the upstream call");
        if !note(engine, &job.id, RunNote::Failed(error)).await {
            return tried.outcome;
        }
        tokio::time::sleep(wait).await;
        if !note(engine, &job.id, RunNote::Next).await {
            return tried.outcome;
        }
        made = made.saturating_add(1);
        engine.changed(&job.id);
    }
}

/// Records a retry step; `false` when the job is no longer running (the runner stops). A
/// store error is logged and the retry goes on: the count is then one behind, which the
/// next successful write or the final `complete` does not depend on.
async fn note(engine: &Engine, id: &str, note: RunNote) -> bool {
    match engine.store.note_attempt(id, &note, engine.now()).await {
        Ok(running) => running,
        Err(e) => {
            crate::metrics::get().store_errors.inc();
            tracing::warn!(job = %id, error = %e, "cannot record a retry");
            true
        }
    }
}

/// One upstream attempt of a call job, classified for `retry`.
async fn attempt(engine: &Engine, route: &Route, job: &Job) -> Tried {
    let settings = &route.cfg.settings;
    let req = match build(route, job) {
        Ok(r) => r,
        Err(why) => return Tried::done(failed("bad_request", why)),
    };
    let resp = match forward::send(engine.client(), req, settings.upstream_timeout).await {
        Ok(r) => r,
        Err(e) => {
            let transient = match e.kind {
                ErrorKind::Connect => Some(RetryOn::Connect),
                ErrorKind::Timeout => Some(RetryOn::Timeout),
                _ => None,
            };
            return Tried {
                transient,
                ..Tried::done(failed(e.job_code(), e.detail))
            };
        }
    };
    let (mut parts, incoming) = resp.into_parts();
    forward::strip_hop_by_hop(&mut parts.headers);
    let limit = settings.max_body.bytes();
    let read = tokio::time::timeout(settings.upstream_timeout, body::collect(incoming, limit));
    let body = match read.await {
        Err(_) => {
            return Tried {
                transient: Some(RetryOn::Timeout),
                ..Tried::done(failed(
                    "upstream_timeout",
                    "the upstream's body did not arrive in time",
                ))
            }
        }
        Ok(Err(body::CollectError::TooLarge(n))) => {
            return Tried::done(failed(
                "result_too_large",
                format!("the upstream's answer exceeds {n} bytes"),
            ))
        }
        Ok(Err(e)) => return Tried::done(failed("upstream_unreachable", e.to_string())),
        Ok(Ok(b)) => b,
    };
    let status = parts.status.as_u16();
    let retry_after = parts
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                bytes::Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect();
    Tried {
        outcome: Outcome::Answered(StoredResponse {
            status,
            headers,
            body,
        }),
        transient: Some(RetryOn::Status(status)),
        retry_after,
    }
}

fn build(route: &Route, job: &Job) -> Result<Request<Body>, String> {
    let r = &job.request;
    let method = Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
    let uri = route
        .upstream
        .uri(&r.target)
        .map_err(|_| format!("bad target {:?}", r.target))?;
    let mut req = Request::new(Body::full(r.body.clone()));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    headers::append_to(&r.headers, h);
    h.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(r.body.len()),
    );
    if let Ok(v) = HeaderValue::from_str(&job.id) {
        h.insert(&IDEMPOTENCY_KEY, v);
    }
    Ok(req)
}

/// A watch: poll the task's status URL every `poll_interval` (`fallback_poll_interval` on
/// a callback-driven route) until it is terminal (the final status response becomes the
/// job's result), broken, or `watch_limit` has passed since the job was created. A
/// callback that completes the job first stops this loop: locally at once
/// (`Engine::abort_run`), on another replica through the finished feed or the next lease
/// renewal.
async fn watch(engine: &Engine, route: &Route, job: &Job) -> Outcome {
    use crate::upstream::poller::{poll_once, PollOutcome, Target};
    let Kind::Task(task) = &route.kind else {
        return failed("route_removed", "the route is no longer a task route");
    };
    let Ok(uri) = job.request.target.parse::<http::Uri>() else {
        return failed(
            "bad_request",
            format!("bad status URL {:?}", job.request.target),
        );
    };
    let mut poll_headers = http::HeaderMap::new();
    headers::append_to(&job.request.headers, &mut poll_headers);
    let settings = &route.cfg.settings;
    let target = Target {
        uri,
        headers: poll_headers,
        timeout: settings.upstream_timeout,
        max_body: settings.max_body.bytes(),
    };
    let limit_ms = i64::try_from(engine.watch_limit.as_millis()).unwrap_or(i64::MAX);
    let give_up_at = job.created_at.saturating_add(limit_ms);
    // A callback-driven watch (its token hash is kept in `fingerprint`) mostly waits for
    // the upstream's `POST`; polling is only the slow fallback (`crate::task::callback`).
    let interval = match &task.cfg.callback {
        Some(cb) if !job.fingerprint.is_empty() => cb.fallback_poll_interval,
        _ => settings.poll_interval,
    };
    loop {
        tokio::time::sleep(interval).await;
        match poll_once(engine.client(), &task.cfg, &target).await {
            PollOutcome::Terminal { body, content_type } => {
                let headers = content_type
                    .map(|ct| {
                        vec![(
                            "content-type".to_owned(),
                            bytes::Bytes::copy_from_slice(ct.as_bytes()),
                        )]
                    })
                    .unwrap_or_default();
                return Outcome::Answered(StoredResponse {
                    status: 200,
                    headers,
                    body,
                });
            }
            PollOutcome::Broken(why) => return failed("upstream_contract", why),
            PollOutcome::Pending | PollOutcome::Transient(_) => {}
        }
        if engine.now() >= give_up_at {
            return failed(
                "watch_expired",
                "the task did not finish within the watch limit",
            );
        }
    }
}
