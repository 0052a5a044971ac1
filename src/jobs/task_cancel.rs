//! Asking a `task` route's upstream to cancel an operation the gateway stops watching.
//!
//! When a watch job ends canceled — its deadline passed, or the client sent `DELETE` — and
//! its route names `task.cancel = { method, url = "/v1/tasks/{id}/cancel" }`, the gateway
//! makes that call once, with the watch's poll headers (the client's forwarded
//! credentials) and no body. Best effort and off the request: the watch is already
//! canceled in the store, the upstream's answer changes nothing, and a failure is logged.
//!
//! The operation id is not stored with the watch; it is read back from the stored status
//! URL, the route's `status_url` template filled the way the watch filled it: the parts
//! before and after `{id}` are stripped and the rest percent-decoded. A status URL the
//! template does not match (the route changed since) makes no call.

use http::{HeaderValue, Request};

use super::engine::Engine;
use crate::body::Body;
use crate::routes::table::{Kind, Route};
use crate::store::headers;
use crate::store::model::{Job, JobKind};
use crate::upstream::forward;
use crate::upstream::operation::StatusUrl;

/// A marker id: the status template filled with it shows where the id sits.
const MARK: &str = "GATEWAY-ID-MARK";

/// Starts the cancel call for `job`, if it is a watch whose route has `task.cancel`.
pub(crate) fn cancel_upstream(engine: &Engine, job: &Job) {
    if job.kind != JobKind::Watch {
        return;
    }
    let Some(route) = engine.route(&job.route) else {
        return;
    };
    let Some(req) = request(&route, job) else {
        return;
    };
    let client = engine.client().clone();
    let timeout = route.cfg.settings.upstream_timeout;
    let id = job.id.clone();
    tokio::spawn(async move {
        match forward::send(&client, req, timeout).await {
            Ok(resp) => tracing::info!(job = %id, status = %resp.status(), "upstream task cancel"),
            Err(e) => tracing::warn!(job = %id, error = %e.detail, "upstream task cancel failed"),
        }
    });
}

/// The cancel request for watch `job` on `route`; `None` without `task.cancel` or when the
/// operation id cannot be read back.
fn request(route: &Route, job: &Job) -> Option<Request<Body>> {
    let Kind::Task(task) = &route.kind else {
        return None;
    };
    let cancel = task.cfg.cancel.as_ref()?;
    let id = operation_id(&task.status, route, &job.request.target)?;
    let uri = StatusUrl::new(&cancel.url).uri(&route.upstream, &id).ok()?;
    let mut req = Request::new(Body::full(bytes::Bytes::new()));
    *req.method_mut() = cancel.method.clone();
    *req.uri_mut() = uri;
    headers::append_to(&job.request.headers, req.headers_mut());
    req.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Some(req)
}

/// The operation id in a status URL the route's template filled.
fn operation_id(status: &StatusUrl, route: &Route, target: &str) -> Option<String> {
    let filled = status.uri(&route.upstream, MARK).ok()?.to_string();
    let (before, after) = filled.split_once(MARK)?;
    let encoded = target.strip_prefix(before)?.strip_suffix(after)?;
    if encoded.is_empty() {
        return None;
    }
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}
