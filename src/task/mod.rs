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
//! A `Cancel-After` (checked before the submit: malformed → `400`) ends that watch at its
//! time, as does the route's `max_run_time` counted from the watch's start: the watch is
//! canceled as `deadline_exceeded` (see [`crate::store::deadline`]); with `task.cancel`
//! the upstream is then asked to cancel the operation ([`crate::jobs::task_cancel`]).
//!
//! A callback-driven route (`task.callback`, [`callback`]) puts a one-time URL into the
//! submit, makes every 202 a watch at once, and has DEFAULT and WAIT wait on that watch —
//! completed by the upstream's `POST` to the URL, or by the slow fallback poll — instead
//! of polling in-process.

pub mod callback;
pub mod watch;

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::response::Parts;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use crate::admission::reservation::Reservation;
use crate::body::{self, Body};
use crate::drain::{self, Drain};
use crate::jobs::Engine;
use crate::mode::Mode;
use crate::prepare::Prepared;
use crate::problem::Problem;
use crate::routes::table::{Route, Task};
use crate::store::deadline;
use crate::upstream::client::HttpClient;
use crate::upstream::forward;
use crate::upstream::origin::Origin;
use crate::upstream::poller::{self, Registry};

/// What a `task` request needs besides its route and intent.
pub struct Call<'a> {
    /// The upstream client.
    pub client: &'a HttpClient,
    /// Polls shared by waiters of one operation.
    pub polls: &'a Registry,
    /// The job engine, for watches (present when a route takes callbacks or admits).
    pub jobs: Option<&'a Engine>,
    /// Who sent the request, over what.
    pub origin: &'a Origin,
    /// When the request arrived (a wait's deadline counts from it).
    pub arrived: Instant,
    /// Becomes `true` when the gateway drains: a wait ends at once with the 202.
    pub drain: Drain,
    /// The public base of the URLs in the answer (see `pipeline::public`); may be empty
    /// when the submit [`passes_through`], whose answer names nothing of the gateway.
    pub base: String,
}

/// Handles one prepared request on a `task` route; the answer, and whether it honours the
/// client's preference (`Preference-Applied`).
pub async fn handle(
    call: Call<'_>,
    route: &Route,
    task: &Task,
    mut prepared: Prepared,
    req: Request<Body>,
) -> Result<(Response<Body>, bool), Problem> {
    if passes_through(task, &prepared, call.jobs.is_some()) {
        return pass_through(&call, route, req).await;
    }
    let mut reservation = prepared.reservation.take();
    let result = run(&call, route, task, &prepared, &mut reservation, req).await;
    // Admitted, but the outcome never became known or handed off: the submit failed.
    if let Some(r) = reservation.take() {
        let status = match &result {
            Ok((resp, _)) => resp.status(),
            Err(p) => p.parts().0,
        };
        r.finish(false, status.as_str());
    }
    result
}

/// Whether the submit's answer is the upstream's own, passed back as it came: a plain
/// `respond-async` — no callback URL, no admission grant, not a callback-driven route.
/// Nothing is read from the 202 then and nothing names the gateway, so the poll headers
/// and the public base (`Call::base`, which the caller may leave empty) are not built: a
/// fifth of what the gateway itself spent on this, the most frequent task submit.
pub fn passes_through(task: &Task, prepared: &Prepared, jobs: bool) -> bool {
    prepared.intent.resolution.mode == Mode::Async
        && prepared.callback.is_none()
        && prepared.reservation.is_none()
        && !(jobs && task.cfg.callback.is_some())
}

/// A [`passes_through`] submit: forwarded, and the upstream's answer handed back; a 202
/// honours the preference (`Preference-Applied: respond-async`), anything else does not.
async fn pass_through(
    call: &Call<'_>,
    route: &Route,
    req: Request<Body>,
) -> Result<(Response<Body>, bool), Problem> {
    // Checked as on every submit, though nothing here would watch until it: a malformed
    // `Cancel-After` is the client's error whichever path its request takes.
    deadline::cancel_after_of(req.headers()).map_err(Problem::InvalidCancelAfter)?;
    let up = forward::upstream_request(&route.upstream, req, call.origin)?;
    let submitted = forward::send(call.client, up, route.cfg.settings.upstream_timeout).await?;
    let honoured = submitted.status() == StatusCode::ACCEPTED;
    Ok((forward::into_client_response(submitted), honoured))
}

async fn run(
    call: &Call<'_>,
    route: &Route,
    task: &Task,
    prepared: &Prepared,
    reservation: &mut Option<Reservation>,
    req: Request<Body>,
) -> Result<(Response<Body>, bool), Problem> {
    let settings = &route.cfg.settings;
    // Checked before anything is submitted; it bounds the gateway's watch (if any).
    let cancel_after =
        deadline::cancel_after_of(req.headers()).map_err(Problem::InvalidCancelAfter)?;
    let watch_deadline = call
        .jobs
        .zip(cancel_after)
        .map(|(e, d)| deadline::after(e.now(), d));
    // A callback-driven route: the one-time URL goes into the submit (see `callback`).
    let driven = task.cfg.callback.as_deref().zip(call.jobs);
    let (armed, req) = match driven {
        Some((cb, engine)) => {
            let max = settings.max_body.bytes();
            let (armed, req) = callback::arm(cb, &engine.cfg.path, &call.base, max, req).await?;
            (Some(armed), req)
        }
        None => (None, req),
    };
    let up = forward::upstream_request(&route.upstream, req, call.origin)?;
    let poll_headers = poll_headers(up.headers());
    let submitted = forward::send(call.client, up, settings.upstream_timeout).await?;
    let wait = match prepared.intent.resolution.mode {
        _ if submitted.status() != StatusCode::ACCEPTED => {
            if let Some(r) = reservation.take() {
                let status = submitted.status();
                r.finish(status.is_success(), status.as_str());
            }
            return Ok((forward::into_client_response(submitted), false));
        }
        // A plain ASYNC never gets here (`pass_through`): this one has a callback, a grant
        // or a callback-driven route, so its 202 becomes a watch below.
        Mode::Async => None,
        Mode::Wait(secs) => Some(Duration::from_secs(secs)),
        Mode::Default => Some(settings.sync_wait),
    };
    let accepted_at = Instant::now();
    let submit_took = submitted
        .extensions()
        .get::<forward::UpstreamElapsed>()
        .copied();
    let (mut parts, incoming) = submitted.into_parts();
    forward::forward_response_headers(&mut parts.headers);
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
    let (id, target) = operation_of(route, task, &parts, &accepted_body, poll_headers)?;
    let tenant = prepared.tenant.clone().unwrap_or_default();
    // Callback-driven: the watch is stored now, before any wait, so that the upstream's
    // `POST` finds it on whichever replica it reaches.
    let mut watching = None;
    if let (Some(armed), Some(engine)) = (armed, call.jobs) {
        let watched = watch::Watched {
            id: armed.id,
            token_hash: armed.token_hash,
            tenant: tenant.clone(),
            callback: prepared.callback.clone(),
            notify_started: prepared.notify_started,
            reservation: reservation.take(),
            deadline: watch_deadline,
        };
        let job_id = watched.id.clone();
        let headers = &mut parts.headers;
        if watch::register(engine, &route.cfg, watched, &target, headers, &call.base).await {
            watching = Some((engine, job_id));
        }
    }
    let end = match (wait, &watching) {
        (None, _) => poller::WaitEnd::Deadline,
        (Some(wait), Some((engine, job_id))) => {
            let _waiting = crate::metrics::Waiting::start();
            tokio::select! {
                end = watch::wait(engine, &tenant, job_id, call.arrived + wait) => end,
                () = drain::drained(call.drain.clone()) => poller::WaitEnd::Deadline,
            }
        }
        (Some(wait), None) => {
            let slot = call.polls.slot(&target);
            let _waiting = crate::metrics::Waiting::start();
            let deadline = call.arrived + wait;
            let interval = settings.poll_interval;
            let client = call.client;
            tokio::select! {
                end = poller::wait(client, &task.cfg, &slot, &target, accepted_at, interval, deadline) => end,
                // Shutting down: hand out the operation id rather than be cut mid-wait.
                () = drain::drained(call.drain.clone()) => poller::WaitEnd::Deadline,
            }
        }
    };
    let mut resp = match end {
        poller::WaitEnd::Terminal { body, content_type } => {
            if let Some(r) = reservation.take() {
                let state = poller::read_state(&body, &task.cfg.state).unwrap_or_default();
                r.finish(task.cfg.succeeded.contains(&state), &state);
            }
            let mut resp = Response::new(Body::full(body));
            if let Some(ct) = content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp
        }
        poller::WaitEnd::Deadline => {
            let reservation = reservation.take();
            let watched_already = watching.is_some();
            if !watched_already && (prepared.callback.is_some() || reservation.is_some()) {
                if let Some(engine) = call.jobs {
                    let watched = watch::Watched {
                        id: crate::store::model::new_id(),
                        token_hash: String::new(),
                        tenant,
                        callback: prepared.callback.clone(),
                        notify_started: prepared.notify_started,
                        reservation,
                        deadline: watch_deadline,
                    };
                    let headers = &mut parts.headers;
                    let _stored =
                        watch::register(engine, &route.cfg, watched, &target, headers, &call.base)
                            .await;
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
    // The access log's upstream time is the submit's, also when the answer is a poll's.
    if let Some(took) = submit_took {
        resp.extensions_mut().insert(took);
    }
    // DEFAULT carries no preference to confirm; WAIT does on both answers, ASYNC on its 202.
    Ok((resp, true))
}

/// The operation id in a 202 and the poll target for it.
fn operation_of(
    route: &Route,
    task: &Task,
    parts: &Parts,
    body: &Bytes,
    headers: HeaderMap,
) -> Result<(String, poller::Target), Problem> {
    let id = crate::upstream::operation::extract_id(&task.cfg.id, &parts.headers, body)
        .map_err(|detail| Problem::UpstreamContract { id: None, detail })?;
    let uri =
        task.status
            .uri(&route.upstream, &id)
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

/// The headers a status poll carries: the forwarded submit's, minus the body's own.
fn poll_headers(forwarded: &HeaderMap) -> HeaderMap {
    let mut h = forwarded.clone();
    for name in [CONTENT_LENGTH, CONTENT_TYPE, CONTENT_ENCODING] {
        h.remove(name);
    }
    h
}
