//! Requests on `sync` routes, after the shared step ([`crate::prepare`]): DEFAULT streams
//! through (or, on a `default = "job"` route, is a job answered like `wait = sync_wait`
//! without `Preference-Applied`); ASYNC and WAIT become jobs.
//!
//! Every answer that came from a job names it: `X-Job-Id` always, `Content-Location` on a
//! final answer, `Operation-Location` on the `202` handle and on a `default = "job"`
//! route's final answer — not on a `Prefer: wait` answered in time, which a standard LRO
//! client would otherwise poll (see `document::name_job`). A client that
//! disconnects while waiting does not cancel the job; the same `Idempotency-Key` sent
//! again attaches to it.
//!
//! ASYNC stores the job (its body was read whole by the shared step), and only then
//! answers the `202` handle — a job id is never handed out before the job is durable.
//! WAIT(N) stores the job the same way, wakes the dispatcher, and waits for completion
//! until N seconds after the request arrived: finished → the upstream's response as it is;
//! not yet → the `202` handle; the job goes on either way. A job that ended without an
//! upstream response (unreachable, canceled) is answered with its status document. A WAIT
//! that repeats an idempotency key waits on the original job.
//!
//! Admission: DEFAULT settles (`2xx`) or releases (anything else) once the upstream has
//! answered; a created job carries the reservation from then on; a reservation made for a
//! job that was not created (an idempotent repeat, a refusal, a store failure) is released
//! at once, so a client is never charged twice.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;

use super::engine::Engine;
use crate::body::Body;
use crate::drain::{self, Drain};
use crate::idempotency::{self, IDEMPOTENCY_KEY};
use crate::mode::Mode;
use crate::prepare::Prepared;
use crate::problem::Problem;
use crate::routes::table::Route;
use crate::store::document::{self, Progress, Shown};
use crate::store::model::{new_id, Job, JobKind, NewJob, StoredRequest};
use crate::store::{deadline, headers};
use crate::store::{Created, Lookup, StoreError};
use crate::upstream::client::HttpClient;
use crate::upstream::forward;
use crate::upstream::origin::Origin;

/// What a `sync` request needs besides its route and intent.
pub struct Call<'a> {
    /// The job engine.
    pub engine: &'a Engine,
    /// The upstream client (DEFAULT forwards with it).
    pub client: &'a HttpClient,
    /// Who sent the request, over what.
    pub origin: &'a Origin,
    /// When the request arrived (a WAIT's deadline counts from it).
    pub arrived: Instant,
    /// `true` once the gateway drains: a wait answers its 202 at once.
    pub drain: Drain,
    /// The public base of the URLs in the answer (see `pipeline::public`).
    pub base: String,
}

/// Handles one prepared request on a `sync` route; the answer, and whether it honours the
/// client's preference (`Preference-Applied`).
pub async fn handle(
    call: Call<'_>,
    route: &Route,
    prepared: Prepared,
    req: Request<Body>,
) -> Result<(Response<Body>, bool), Problem> {
    let mode = prepared.intent.resolution.mode;
    let deadline = match mode {
        Mode::Default if !route.cfg.default_job => {
            return Ok((forward(&call, route, prepared, req).await?, false));
        }
        Mode::Default => Some(call.arrived + route.cfg.settings.sync_wait),
        Mode::Wait(secs) => Some(call.arrived + Duration::from_secs(secs)),
        Mode::Async => None,
    };
    // DEFAULT carries no preference to confirm (a `default = "job"` route's answer says so
    // by `Operation-Location`, not by `Preference-Applied`).
    let honoured = mode != Mode::Default;
    // A final answer to a plain call (`default = "job"`) names its monitor; one to
    // `Prefer: wait` does not (see `document::name_job`).
    let monitor = mode == Mode::Default;
    let resp = submit(&call, route, prepared, req, deadline, monitor).await?;
    Ok((resp, honoured))
}

/// DEFAULT: a streaming forward, settled or released by the upstream's status.
async fn forward(
    call: &Call<'_>,
    route: &Route,
    prepared: Prepared,
    req: Request<Body>,
) -> Result<Response<Body>, Problem> {
    let timeout = route.cfg.settings.upstream_timeout;
    let answer = forward::forward(call.client, &route.upstream, req, call.origin, timeout)
        .await
        .map_err(Problem::from);
    if let Some(reservation) = prepared.reservation {
        let status = match &answer {
            Ok(resp) => resp.status(),
            Err(p) => p.parts().0,
        };
        reservation.finish(status.is_success(), status.as_str());
    }
    answer
}

async fn submit(
    call: &Call<'_>,
    route: &Route,
    prepared: Prepared,
    req: Request<Body>,
    deadline: Option<Instant>,
    monitor: bool,
) -> Result<Response<Body>, Problem> {
    let engine = call.engine;
    let Prepared {
        tenant,
        callback,
        notify_started,
        idempotency_key,
        body,
        reservation,
        ..
    } = prepared;
    // The shared step requires the tenant and reads the body for every job.
    let tenant = tenant.unwrap_or_default();
    let body = body.unwrap_or_default();
    let cancel_after = match deadline::cancel_after_of(req.headers()) {
        Ok(d) => d,
        Err(why) => {
            if let Some(r) = reservation {
                r.release("not-created");
            }
            return Err(Problem::InvalidCancelAfter(why));
        }
    };
    let host = forward::original_host(&req);
    let (mut parts, _) = req.into_parts();
    forward::forward_request_headers(&mut parts.headers, parts.version, call.origin, host, None);
    parts.headers.remove(&IDEMPOTENCY_KEY);
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(HOST);
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let method = parts.method.as_str().to_owned();
    let fingerprint = idempotency::fingerprint(&method, &target, &body);
    // Handed to the job here: from now on the store's admission delivery settles or
    // releases it. A job that is not created gets it back (below).
    let admission = reservation.as_ref().map(|r| r.pending());
    let now = engine.now();
    let job = NewJob {
        id: new_id(),
        tenant: tenant.clone(),
        route: route.cfg.name.clone(),
        idempotency_key,
        fingerprint,
        request: StoredRequest {
            method,
            target,
            headers: headers::list_of(&parts.headers),
            body,
        },
        kind: JobKind::Call,
        callback,
        notify_started,
        admission,
        // Counted from acceptance, like `created_at` (the store stamps it with this `now`).
        deadline: cancel_after.map(|d| deadline::after(now, d)),
    };
    let max = engine.cfg.max_queued_per_tenant;
    let created = engine.store.create(job, max, now).await;
    let release = |reservation: Option<crate::admission::reservation::Reservation>, why| {
        if let Some(r) = reservation {
            r.release(why);
        }
    };
    let job = match created {
        Err(e) => {
            release(reservation, "not-created");
            crate::metrics::get().store_errors.inc();
            tracing::error!(error = %e, "job store unavailable");
            return Err(Problem::StoreUnavailable);
        }
        Ok(Created::New(job)) => {
            if let Some(r) = reservation {
                r.handed_off();
            }
            engine.wake();
            engine.watch_queue_deadline(&job, route.cfg.max_queue_time);
            job
        }
        Ok(Created::Existing(job)) => {
            release(reservation, "duplicate");
            job
        }
        Ok(Created::KeyConflict) => {
            release(reservation, "not-created");
            return Err(Problem::IdempotencyConflict);
        }
        Ok(Created::QueueFull) => {
            release(reservation, "not-created");
            return Err(Problem::QueueFull(max));
        }
    };
    let links = engine.links(&job, &call.base);
    // The handle's `Retry-After` is the route's run time (no queue read on the submit
    // path; see `pace`).
    let handle = |job: &Job| document::accepted(&links, job, engine.retry_after(job, None));
    let (mut resp, shown) = match deadline {
        None => (handle(&job), Shown::Handle),
        Some(deadline) => {
            match waiting(engine, &tenant, &job.id, deadline, call.drain.clone()).await {
                Ok(Lookup::Found(done)) if done.status.is_terminal() => match &done.response {
                    Some(stored) => (document::replay(stored), Shown::Result),
                    None => (
                        document::status_response(
                            &links,
                            &done,
                            StatusCode::OK,
                            &Progress::default(),
                        ),
                        Shown::Status,
                    ),
                },
                Ok(Lookup::Found(pending)) => (handle(&pending), Shown::Handle),
                // Swept or unreadable meanwhile: the handle is still the truthful answer.
                Ok(_) | Err(_) => (handle(&job), Shown::Handle),
            }
        }
    };
    document::name_job(&mut resp, &links, &job.id, shown, monitor);
    Ok(resp)
}

/// Waits for the job to finish until `deadline`, counted in
/// `prefer_gateway_waiting_requests`; when the gateway starts draining, reads the job as it
/// is now instead (so the client gets its 202 handle, not a cut connection).
async fn waiting(
    engine: &Engine,
    tenant: &str,
    id: &str,
    deadline: Instant,
    drain: Drain,
) -> Result<Lookup, StoreError> {
    let _waiting = crate::metrics::Waiting::start();
    tokio::select! {
        found = engine.wait_terminal(tenant, id, deadline) => found,
        () = drain::drained(drain) => engine.wait_terminal(tenant, id, Instant::now()).await,
    }
}
