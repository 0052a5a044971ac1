//! Callbacks on `task` routes: watching a handed-off operation for the client.
//!
//! Upstreams without webhooks of their own get them from the gateway: when a request with
//! a callback ends in the upstream's 202, the gateway stores a *watch* job (kind
//! [`JobKind::Watch`]: the status URL and the poll headers) in the job store. The job
//! engine runs it like any job — claimed with a lease, so it survives restarts — polling
//! at the route's `poll_interval` until the operation is terminal or `[webhooks].
//! watch_limit` passes; the callback then carries the final status body. The 202 gets a
//! `Link: </jobs/{id}>; rel="monitor"` so the client can follow the watch too.
//!
//! On a callback-driven route (`task.callback`, see [`super::callback`]) every 202 becomes
//! a watch at once — whatever the client asked — because the upstream will `POST` to the
//! URL the gateway gave it and any replica must find the operation then. Such a watch
//! polls only every `fallback_poll_interval`, and its `fingerprint` (empty on other
//! watches: they have no idempotency key) holds the SHA-256 of the one-time token, so no
//! new field or schema step was needed.
//!
//! If the store cannot take the watch, the upstream's 202 is still returned (the operation
//! exists upstream and must not be submitted twice) and the failure is logged.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, LINK, RETRY_AFTER};

use crate::admission::reservation::Reservation;
use crate::config::RouteConfig;
use crate::jobs::Engine;
use crate::store::document::{status_url, OPERATION_LOCATION};
use crate::store::model::{JobKind, NewJob, StoredRequest};
use crate::store::{Created, JobStatus, Lookup};
use crate::upstream::poller::WaitEnd;

/// Why an operation is watched: a callback to deliver, a reservation to settle, a
/// callback-driven route's one-time URL to honour, or several of these.
pub struct Watched {
    /// The watch job's id: chosen before the submit on a callback-driven route (it is part
    /// of the URL handed to the upstream), else fresh.
    pub id: String,
    /// Hex SHA-256 of a callback-driven route's one-time token (kept in the job's
    /// `fingerprint`, which a watch otherwise leaves empty); empty otherwise.
    pub token_hash: String,
    /// The tenant the watch job is stored under.
    pub tenant: String,
    /// The checked callback URL.
    pub callback: Option<String>,
    /// The client asked for the `started` event too: sent when the gateway starts watching.
    pub notify_started: bool,
    /// The admission endpoint's grant, settled or released when the operation ends.
    pub reservation: Option<Reservation>,
    /// The client's `Cancel-After` as a time (from the request's arrival): the watch ends
    /// then, canceled as `deadline_exceeded` (see [`crate::store::deadline`]).
    pub deadline: Option<crate::store::Millis>,
}

/// Stores the watch; adds `Link: <…>; rel="monitor"` to the 202's headers. `true` when
/// it was stored.
pub async fn register(
    engine: &Engine,
    route: &RouteConfig,
    watched: Watched,
    target: &crate::upstream::poller::Target,
    answer: &mut HeaderMap,
    base: &str,
) -> bool {
    let headers = crate::store::headers::list_of(&target.headers);
    let job = NewJob {
        id: watched.id,
        tenant: watched.tenant,
        route: route.name.clone(),
        idempotency_key: None,
        fingerprint: watched.token_hash,
        request: StoredRequest {
            method: "GET".into(),
            target: target.uri.to_string(),
            headers,
            body: Bytes::new(),
        },
        kind: JobKind::Watch,
        callback: watched.callback,
        notify_started: watched.notify_started,
        admission: watched.reservation.as_ref().map(Reservation::pending),
        deadline: watched.deadline,
    };
    let max = engine.cfg.max_queued_per_tenant;
    match engine.store.create(job, max, engine.now()).await {
        Ok(Created::New(job) | Created::Existing(job)) => {
            if let Some(r) = watched.reservation {
                r.handed_off();
            }
            engine.wake();
            let url = status_url(&format!("{base}{}", engine.cfg.path), &job.id);
            if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"monitor\"")) {
                answer.append(LINK, v);
            }
            if let Ok(v) = HeaderValue::from_str(&url) {
                answer.insert(OPERATION_LOCATION.clone(), v);
            }
            if !answer.contains_key(RETRY_AFTER) {
                answer.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            true
        }
        // No watch, no way to learn the outcome: the reservation goes back now.
        Ok(other) => {
            tracing::error!(?other, uri = %target.uri, "watch not stored; no callback");
            if let Some(r) = watched.reservation {
                r.release("not-watched");
            }
            false
        }
        Err(e) => {
            tracing::error!(error = %e, uri = %target.uri, "watch not stored; no callback");
            if let Some(r) = watched.reservation {
                r.release("not-watched");
            }
            false
        }
    }
}

/// Waits for watch job `id` (of `tenant`) to end, until `deadline`: its final status body
/// as a poll would have returned it, `Broken` when the watch failed without one (the
/// upstream broke its contract), `Deadline` otherwise — also when the store cannot be read
/// (the client then gets the 202 handle and can follow the watch).
pub async fn wait(
    engine: &Engine,
    tenant: &str,
    id: &str,
    deadline: tokio::time::Instant,
) -> WaitEnd {
    let job = match engine.wait_terminal(tenant, id, deadline).await {
        Ok(Lookup::Found(job)) if job.status.is_terminal() => job,
        Ok(_) => return WaitEnd::Deadline,
        Err(e) => {
            tracing::warn!(job = %id, error = %e, "waiting on a watch: store unavailable");
            return WaitEnd::Deadline;
        }
    };
    match (job.status, job.response, job.error) {
        (JobStatus::Succeeded, Some(resp), _) => {
            let content_type = resp
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .and_then(|(_, v)| HeaderValue::from_bytes(v).ok());
            WaitEnd::Terminal {
                body: resp.body,
                content_type,
            }
        }
        (JobStatus::Failed, None, Some(err)) => WaitEnd::Broken(err.message),
        // Canceled (a deadline, a DELETE): the operation is still the upstream's; the 202.
        _ => WaitEnd::Deadline,
    }
}
