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
use http::header::{HeaderMap, HeaderValue, LINK};
use http::Request;

use super::admit::Admitted;
use super::TaskRoute;
use crate::body::Body;
use crate::config::RouteConfig;
use crate::jobs::model::{new_id, now_millis, JobKind, NewJob, StoredRequest};
use crate::jobs::{submit, Created, Engine};
use crate::mode::Mode;
use crate::problem::Problem;
use crate::webhook::intake;

/// A checked callback URL and the tenant it belongs to.
pub struct Callback {
    url: String,
    tenant: String,
}

/// Takes and checks the callback of a task-route request (`401`/`422` on refusal).
pub async fn take(
    route: &TaskRoute<'_>,
    req: Request<Body>,
    mode: Mode,
) -> Result<(Option<Callback>, Request<Body>), Problem> {
    let Some(engine) = route.jobs.filter(|_| route.cfg.callback.is_some()) else {
        return Ok((None, req));
    };
    let (mut parts, body) = req.into_parts();
    let (url, body) = intake::take(route.cfg, &mut parts, body).await?;
    let Some(url) = url else {
        return Ok((None, Request::from_parts(parts, body)));
    };
    if mode == Mode::Default {
        return Err(Problem::CallbackWithoutAsync);
    }
    let tenant = submit::tenant(engine, &parts.headers)?;
    intake::check(engine.deliverer.as_ref(), &url).await?;
    Ok((
        Some(Callback { url, tenant }),
        Request::from_parts(parts, body),
    ))
}

/// Why an operation is watched: a callback to deliver, a reservation to settle, or both.
pub struct Watched<'a> {
    tenant: String,
    callback: Option<String>,
    admitted: Option<Admitted<'a>>,
}

impl<'a> Watched<'a> {
    /// From what the request carried (at least one of the two, or nothing is watched).
    pub fn new(callback: Option<Callback>, admitted: Option<Admitted<'a>>) -> Watched<'a> {
        let tenant = match (&callback, &admitted) {
            (Some(cb), _) => cb.tenant.clone(),
            (None, Some(a)) => a.tenant.clone(),
            (None, None) => String::new(),
        };
        Watched {
            tenant,
            callback: callback.map(|cb| cb.url),
            admitted,
        }
    }
}

/// Stores the watch; adds `Link: <…>; rel="monitor"` to the 202's headers.
pub async fn register(
    engine: &Engine,
    route: &RouteConfig,
    watched: Watched<'_>,
    target: &super::poller::Target,
    answer: &mut HeaderMap,
) {
    let headers = target
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), Bytes::copy_from_slice(v.as_bytes())))
        .collect();
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
        admission: watched.admitted.as_ref().map(Admitted::handed_off),
    };
    let max = engine.cfg.max_queued_per_tenant;
    match engine.store.create(job, max, now_millis()).await {
        Ok(Created::New(job) | Created::Existing(job)) => {
            engine.wake();
            let link = format!("<{}/{}>; rel=\"monitor\"", engine.cfg.path, job.id);
            if let Ok(v) = HeaderValue::from_str(&link) {
                answer.append(LINK, v);
            }
        }
        // No watch, no way to learn the outcome: the reservation goes back now.
        Ok(other) => {
            tracing::error!(?other, uri = %target.uri, "watch not stored; no callback");
            if let Some(a) = watched.admitted {
                a.finished(false, "not-watched".into());
            }
        }
        Err(e) => {
            tracing::error!(error = %e, uri = %target.uri, "watch not stored; no callback");
            if let Some(a) = watched.admitted {
                a.finished(false, "not-watched".into());
            }
        }
    }
}
