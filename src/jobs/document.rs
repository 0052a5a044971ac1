//! What clients see of a job: the status document, the `202` handle, the replayed result.
//!
//! The status document is the same JSON for `GET {jobs}/{id}`, `DELETE`, a `wait` that ran
//! out, and the webhook payload (minus its `callback` section):
//! `{"job_id","status","created_at","updated_at","expires_at","result_url"?,"error"?}`.
//! `expires_at` is `null` until the job finishes (retention counts from the end);
//! `result_url` is present once there is an upstream response to replay; `error` carries
//! `code`, `message` and, for `upstream_status`, the upstream's `status`. A job with a
//! callback adds `callback: {state, attempts, last_status, last_error, next_attempt_at}`
//! (the URL itself is not echoed: it may carry a token).

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::model::{rfc3339, DeliveryState, Job, StoredResponse};
use crate::body::Body;

/// The status URL of job `id` under the job API prefix.
pub fn status_url(prefix: &str, id: &str) -> String {
    format!("{prefix}/{id}")
}

/// The status document.
pub fn status_doc(prefix: &str, job: &Job) -> Value {
    let mut doc = json!({
        "job_id": job.id,
        "status": job.status.as_str(),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "expires_at": job.expires_at.map(rfc3339),
    });
    if job.response.is_some() {
        doc["result_url"] = json!(format!("{}/result", status_url(prefix, &job.id)));
    }
    if let Some(e) = &job.error {
        let mut err = json!({"code": e.code, "message": e.message});
        if let (Some(r), "upstream_status") = (&job.response, e.code.as_str()) {
            err["status"] = json!(r.status);
        }
        doc["error"] = err;
    }
    if let Some(cb) = &job.callback {
        doc["callback"] = json!({
            "state": cb.state.as_str(),
            "attempts": cb.attempts,
            "last_status": cb.last_status,
            "last_error": cb.last_error,
            "next_attempt_at": cb.next_attempt_at.filter(|_| cb.state == DeliveryState::Pending).map(rfc3339),
        });
    }
    doc
}

/// A JSON response with `status`; `Retry-After: 1` while the job is not terminal.
pub fn status_response(prefix: &str, job: &Job, status: StatusCode) -> Response<Body> {
    let body = serde_json::to_vec(&status_doc(prefix, job)).unwrap_or_default();
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if !job.status.is_terminal() {
        h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// The `202 Accepted` handle: `{"job_id","status","status_url"}` with `Location` and
/// `Retry-After: 1`.
pub fn accepted(prefix: &str, job: &Job) -> Response<Body> {
    let url = status_url(prefix, &job.id);
    let doc = json!({"job_id": job.id, "status": job.status.as_str(), "status_url": url});
    let mut resp = Response::new(Body::full(serde_json::to_vec(&doc).unwrap_or_default()));
    *resp.status_mut() = StatusCode::ACCEPTED;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    if let Ok(v) = HeaderValue::from_str(&url) {
        h.insert(LOCATION, v);
    }
    resp
}

/// The stored upstream response, byte for byte (headers that no longer parse are dropped).
pub fn replay(stored: &StoredResponse) -> Response<Body> {
    let mut resp = Response::new(Body::full(stored.body.clone()));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = resp.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
    resp
}
