//! What clients see of a job: the status document, the `202` handle, the replayed result.
//!
//! The status document is the same JSON for `GET {jobs}/{id}`, `DELETE`, a `wait` that ran
//! out, and the webhook payload (minus its `callback` section):
//! `{"id","job_id","status","created_at","updated_at","expires_at","status_url","attempts",
//! "deadline"?,"queue_position"?,"result_url"?,"resourceLocation"?,"download_url"?,"error"?,
//! "last_error"?}`.
//!
//! Every URL in it is absolute: [`Links::prefix`] is the jobs API as the client reaches it
//! (`https://api.example.com/jobs`, see `pipeline::public`). Beside our own fields it has
//! the Microsoft REST API guidelines' long-running-operation shape, which stock clients
//! (azure-core's `LROBasePolling`) follow: `id`, `status` (lower-case; the guidelines
//! compare case-insensitively), `resourceLocation` (the result URL, once succeeded) and
//! `error {code, message}`. The `202` handle carries `Location` and `Operation-Location`
//! (both the status monitor) and `Retry-After`.
//! `expires_at` is `null` until the job finishes (retention counts from the end);
//! `result_url` is present once there is an upstream response to replay; `download_url`
//! (a signed link to the same result that needs no tenant header, see
//! [`crate::signed_url`]) is added when the job succeeded or failed with a stored response
//! and its route has `signed_results` — read from the routes in force when the document is
//! rendered, so a reload that turns it off stops handing links out at once. `error` carries
//! `code`, `message` and, for `upstream_status`, the upstream's `status`. `attempts` is the
//! number of upstream attempts made so far (0 while never started; retries of transient
//! failures, `routes[].retry`, add to it); while an unfinished job is between retries (or
//! re-queued after one) the failed attempt's error is `last_error`, same shape — once the
//! retries are exhausted it is the job's `error`. A job with a
//! callback adds `callback: {state, attempts, last_status, last_error, next_attempt_at}`
//! (the URL itself is not echoed: it may carry a token). `deadline` is the client's
//! `Cancel-After` as a time, when it sent one (the route's `max_queue_time` /
//! `max_run_time` may end the job earlier; see [`crate::store::deadline`]).
//!
//! A status read of an unfinished job (`GET {id}`, the `202` of `GET {id}/result`, a live
//! status event) adds its [`Progress`]: `queue_position` (pending jobs only: `1` is the
//! next to start on the route) in the document, and `Retry-After` in seconds (running,
//! pending) on the response. Both are computed by the job engine (`jobs::pace`); the
//! webhook payload and the listing's rows carry no position (a listing would pay one store
//! read per pending row, and a callback is only sent for a finished job).

use http::header::{
    HeaderName, HeaderValue, CONTENT_LOCATION, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};

/// `Operation-Location`: the status monitor of a long-running operation (Microsoft REST API
/// guidelines).
pub static OPERATION_LOCATION: HeaderName = HeaderName::from_static("operation-location");
use http::{Response, StatusCode};
use serde_json::{json, Value};

use super::model::{rfc3339, DeliveryState, Job, JobStatus, StoredResponse};
use crate::body::Body;
use crate::signed_url::{self, UrlKey};

/// Where a job's links point: the job API as the client reaches it, and the key that signs
/// its `download_url` when its route has `signed_results` (see `Table::links`).
#[derive(Debug, Clone)]
pub struct Links<'a> {
    /// The absolute job API prefix: the public base + `[jobs].path`.
    pub prefix: String,
    /// `Some` when this job's status document carries a signed `download_url`.
    pub signer: Option<&'a UrlKey>,
}

/// The status URL of job `id` under the job API prefix.
pub fn status_url(prefix: &str, id: &str) -> String {
    format!("{prefix}/{id}")
}

/// What a status read adds for an unfinished job (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The job's place on its route's queue (`1` = next); pending jobs only.
    pub queue_position: Option<u64>,
    /// Seconds until the client should look again (≥ 1); sent while not terminal.
    pub retry_after: u64,
}

impl Default for Progress {
    /// No position, `Retry-After: 1`.
    fn default() -> Progress {
        Progress {
            queue_position: None,
            retry_after: 1,
        }
    }
}

/// The status document with `progress`: `queue_position` added while the job is pending.
pub fn live_doc(links: &Links<'_>, job: &Job, progress: &Progress) -> Value {
    let mut doc = status_doc(links, job);
    if let (JobStatus::Pending, Some(p)) = (job.status, progress.queue_position) {
        doc["queue_position"] = json!(p);
    }
    doc
}

/// `Retry-After: secs` (at least 1).
fn retry_after(h: &mut http::HeaderMap, secs: u64) {
    h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
}

/// The status document.
pub fn status_doc(links: &Links<'_>, job: &Job) -> Value {
    let prefix = links.prefix.as_str();
    let status = status_url(prefix, &job.id);
    let result = format!("{status}/result");
    let mut doc = json!({
        "id": job.id,
        "job_id": job.id,
        "status": job.status.as_str(),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "expires_at": job.expires_at.map(rfc3339),
        "status_url": status,
    });
    if let Some(at) = job.deadline {
        doc["deadline"] = json!(rfc3339(at));
    }
    if job.response.is_some() {
        if job.status == JobStatus::Succeeded {
            // Where a standard LRO client fetches the final result.
            doc["resourceLocation"] = json!(result);
        }
        doc["result_url"] = json!(result);
    }
    // Succeeded or failed with a stored answer: there is something to download. A
    // canceled job, or one that failed without an upstream answer, gets no link (it
    // could only ever answer 409).
    let downloadable = matches!(job.status, JobStatus::Succeeded | JobStatus::Failed);
    if let (Some(key), Some(expires_at), Some(_), true) =
        (links.signer, job.expires_at, &job.response, downloadable)
    {
        let url = signed_url::download_url(prefix, &job.id, expires_at, key);
        doc["download_url"] = json!(url);
    }
    doc["attempts"] = json!(job.attempts);
    if let Some(e) = &job.error {
        let mut err = json!({"code": e.code, "message": e.message});
        if let (Some(r), "upstream_status") = (&job.response, e.code.as_str()) {
            err["status"] = json!(r.status);
        }
        // Unfinished: the failed attempt a retry follows. Not `error`, which a standard
        // LRO client reads as the operation's failure.
        let key = if job.status.is_terminal() {
            "error"
        } else {
            "last_error"
        };
        doc[key] = err;
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

/// A JSON response with `status`: the document with `progress`, and its `Retry-After`
/// while the job is not terminal.
pub fn status_response(
    links: &Links<'_>,
    job: &Job,
    status: StatusCode,
    progress: &Progress,
) -> Response<Body> {
    let body = serde_json::to_vec(&live_doc(links, job, progress)).unwrap_or_default();
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if !job.status.is_terminal() {
        retry_after(h, progress.retry_after);
    }
    resp
}

/// The `202 Accepted` handle: `{"id","job_id","status","status_url"}` with `Location` and
/// `Operation-Location` (the status monitor) and `Retry-After: retry_after` seconds.
pub fn accepted(links: &Links<'_>, job: &Job, retry_after_secs: u64) -> Response<Body> {
    let url = status_url(&links.prefix, &job.id);
    let doc = json!({
        "id": job.id,
        "job_id": job.id,
        "status": job.status.as_str(),
        "status_url": url,
    });
    let mut resp = Response::new(Body::full(serde_json::to_vec(&doc).unwrap_or_default()));
    *resp.status_mut() = StatusCode::ACCEPTED;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    retry_after(h, retry_after_secs);
    if let Ok(v) = HeaderValue::from_str(&url) {
        h.insert(OPERATION_LOCATION.clone(), v.clone());
        h.insert(LOCATION, v);
    }
    resp
}

/// `X-Job-Id`: names the job behind an answer that came from one.
pub static X_JOB_ID: HeaderName = HeaderName::from_static("x-job-id");

/// What an answer from a job shows (see [`name_job`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The `202` handle.
    Handle,
    /// The job's result, replayed.
    Result,
    /// The job's status document (it ended without an upstream answer).
    Status,
}

/// Names the job an answer came from, so a client can always find its work again:
/// `X-Job-Id`; on a final answer `Content-Location` (the result URL when it replays the
/// result, else the status URL); and `Operation-Location` (the status monitor) on the
/// handle, and on a final answer when `monitor` — not on the answer to a `Prefer: wait`
/// that finished in time: a standard LRO client (azure-core) polls any
/// `Operation-Location` it sees, even on a `200`, and that answer is already final.
pub fn name_job(
    resp: &mut Response<Body>,
    links: &Links<'_>,
    id: &str,
    shown: Shown,
    monitor: bool,
) {
    let status = status_url(&links.prefix, id);
    let h = resp.headers_mut();
    let content = match shown {
        Shown::Handle => None,
        Shown::Result => Some(format!("{status}/result")),
        Shown::Status => Some(status.clone()),
    };
    if let Some(v) = content.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(CONTENT_LOCATION, v);
    }
    if shown == Shown::Handle || monitor {
        if let Ok(v) = HeaderValue::from_str(&status) {
            h.insert(OPERATION_LOCATION.clone(), v);
        }
    } else {
        // A replayed upstream answer may carry its own; it would send a client polling.
        h.remove(&OPERATION_LOCATION);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert(X_JOB_ID.clone(), v);
    }
}

/// `GET {id}/result` while the job runs: `202` with the status document, `Location` (this
/// result URL: the OData/Azure "Location" monitor polls it until it answers the result)
/// and `Retry-After` (from `progress`).
pub fn result_pending(links: &Links<'_>, job: &Job, progress: &Progress) -> Response<Body> {
    let mut resp = status_response(links, job, StatusCode::ACCEPTED, progress);
    let url = format!("{}/result", status_url(&links.prefix, &job.id));
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(LOCATION, v);
    }
    retry_after(resp.headers_mut(), progress.retry_after);
    resp
}

/// The stored upstream response, byte for byte (headers that no longer parse are dropped).
pub fn replay(stored: &StoredResponse) -> Response<Body> {
    let mut resp = Response::new(Body::full(stored.body.clone()));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::BAD_GATEWAY);
    super::headers::append_to(&stored.headers, resp.headers_mut());
    resp
}
