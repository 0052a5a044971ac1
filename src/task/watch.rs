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
//! If the store cannot take the watch, the upstream's 202 is still returned (the operation
//! exists upstream and must not be submitted twice) and the failure is logged.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, LINK, RETRY_AFTER};

use crate::admission::reservation::Reservation;
use crate::config::RouteConfig;
use crate::jobs::Engine;
use crate::store::document::{status_url, OPERATION_LOCATION};
use crate::store::model::{new_id, JobKind, NewJob, StoredRequest};
use crate::store::Created;

/// Why an operation is watched: a callback to deliver, a reservation to settle, or both.
pub struct Watched {
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

/// Stores the watch; adds `Link: <…>; rel="monitor"` to the 202's headers.
pub async fn register(
    engine: &Engine,
    route: &RouteConfig,
    watched: Watched,
    target: &crate::upstream::poller::Target,
    answer: &mut HeaderMap,
    base: &str,
) {
    let headers = crate::store::headers::list_of(&target.headers);
    let job = NewJob {
        id: new_id(),
        tenant: watched.tenant,
        route: route.name.clone(),
        idempotency_key: None,
        fingerprint: String::new(),
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
        }
        // No watch, no way to learn the outcome: the reservation goes back now.
        Ok(other) => {
            tracing::error!(?other, uri = %target.uri, "watch not stored; no callback");
            if let Some(r) = watched.reservation {
                r.release("not-watched");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, uri = %target.uri, "watch not stored; no callback");
            if let Some(r) = watched.reservation {
                r.release("not-watched");
            }
        }
    }
}
