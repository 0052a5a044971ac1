//! RFC 9457 `application/problem+json`: every error the gateway itself produces.
//!
//! One enum of causes; each maps to a status, a stable `type` URI and a title. Upstream
//! responses are never rewritten into problems — these are only the gateway's own answers.
//! The `type` URIs are stable identifiers (documented in the README), not links that must
//! resolve.

use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::Response;
use serde_json::{json, Map, Value};

use crate::body::Body;

/// Base of every problem `type`.
pub const TYPE_BASE: &str = "https://prefer-gateway.dev/problems/";

/// A cause the gateway answers with a problem document.
#[derive(Debug, Clone)]
pub enum Problem {
    /// No route matches the path.
    NoRoute,
    /// The path matches but the method is not configured; carries the `Allow` value.
    MethodNotAllowed(HeaderValue),
    /// The deprecated `mode` parameter has an unknown value.
    InvalidMode(String),
    /// A boolean opt-in field (`mode.kind = "bool"`) holds something else. Same `type` as
    /// [`Problem::InvalidMode`]: it is the same mistake in the other spelling.
    InvalidFlag {
        /// The field as the client knows it, e.g. `field "/async"` or `query parameter "async"`.
        field: String,
        /// The value as sent, ready to print (JSON text for a body field).
        got: String,
    },
    /// An asynchronous request breaks one of the route's `async_requires` rules.
    AsyncRequirement {
        /// The JSON pointer of the field.
        field: String,
        /// The value the field must hold.
        expected: Value,
    },
    /// The request body exceeds the configured buffer limit.
    BodyTooLarge(u64),
    /// The request head has too many or too large header fields.
    HeadersTooLarge,
    /// The client failed while sending the body.
    BadRequestBody(String),
    /// The upstream could not be reached or broke the connection.
    UpstreamUnreachable(String),
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream broke its async contract (no id, unreadable status, status 404/410).
    UpstreamContract {
        /// The operation id, when one was read.
        id: Option<String>,
        /// What was wrong.
        detail: String,
    },
    /// The gateway is shutting down and takes no new work.
    Draining,
    /// The tenant header is required and missing.
    TenantRequired(String),
    /// `Idempotency-Key` (or the route's idempotency field) is malformed.
    InvalidIdempotencyKey(String),
    /// The idempotency key was used before with a different request.
    IdempotencyConflict,
    /// The tenant has too many unfinished jobs.
    QueueFull(u64),
    /// No such job for this tenant (also: another tenant's job — the answers are identical).
    JobNotFound,
    /// The job is past retention.
    JobExpired,
    /// The job already finished and cannot be canceled.
    JobFinished(&'static str),
    /// The job has not finished and cannot be purged (cancel it first); its status.
    JobUnfinished(&'static str),
    /// The job's admission notice (settle / release) is not delivered yet, so it cannot be
    /// purged; retry after this many seconds.
    NoticePending(u64),
    /// A query parameter of the job API is malformed; what is wrong with it.
    InvalidQuery(String),
    /// `Cancel-After` is malformed or out of range; what is wrong with it.
    InvalidCancelAfter(String),
    /// `callback_events` names an unknown event, or events without a callback URL.
    InvalidCallbackEvents(String),
    /// The job ended without an upstream response to replay.
    NoResult(&'static str),
    /// The job store cannot be reached.
    StoreUnavailable,
    /// The route's admission endpoint did not give a usable answer.
    AdmissionUnavailable,
    /// `/readyz`: the gateway does not take new work now (draining, store down).
    NotReady(String),
    /// A callback was given without `respond-async` or `wait`.
    CallbackWithoutAsync,
    /// The callback URL is refused (scheme, userinfo, port, or a non-public address).
    CallbackForbidden(String),
    /// `POST {jobs}/{id}/callback` on a job that cannot be re-delivered.
    CannotRedeliver(&'static str),
    /// The client paused sending its body longer than `server.body_idle_timeout`.
    BodyTimeout(std::time::Duration),
    /// The tenant is over `server.tenant_rate`; retry after this many seconds.
    RateLimited(u64),
    /// A signed result URL that is malformed, altered or not made with this gateway's key.
    SignatureInvalid,
    /// A genuine signed result URL past its `expires`.
    SignatureExpired,
    /// A `POST` to a task callback URL this gateway did not hand out (unknown or forged
    /// token, unknown operation).
    TaskCallbackUnknown,
    /// A `POST` to a task callback URL whose operation has already ended (a repeated
    /// delivery, or one after the fallback poll or a deadline ended it); its status.
    TaskCallbackUsed(&'static str),
    /// A task callback body the operation's state cannot be read from.
    TaskCallbackBody(String),
}

impl From<crate::error::Error> for Problem {
    /// The edge's answer for an internal error (see [`crate::error`]).
    fn from(e: crate::error::Error) -> Problem {
        use crate::error::ErrorKind;
        match e.kind {
            ErrorKind::BadTarget | ErrorKind::BodyCut => Problem::BadRequestBody(e.detail),
            ErrorKind::BodyIdle(d) => Problem::BodyTimeout(d),
            ErrorKind::Connect | ErrorKind::UpstreamBroken => {
                Problem::UpstreamUnreachable(e.detail)
            }
            ErrorKind::Timeout => Problem::UpstreamTimeout,
            ErrorKind::Contract => Problem::UpstreamContract {
                id: None,
                detail: e.detail,
            },
            ErrorKind::Store => Problem::StoreUnavailable,
        }
    }
}

impl From<crate::body::CollectError> for Problem {
    /// A request body that could not be read whole: too large (`413`), cut off (`400`) or
    /// idle too long (`408`).
    fn from(e: crate::body::CollectError) -> Problem {
        match e {
            crate::body::CollectError::TooLarge(n) => Problem::BodyTooLarge(n),
            crate::body::CollectError::Read(e) => Problem::BadRequestBody(e.to_string()),
            crate::body::CollectError::Idle(d) => Problem::BodyTimeout(d),
        }
    }
}

impl Problem {
    fn detail(&self) -> Option<String> {
        match self {
            Problem::NoRoute | Problem::MethodNotAllowed(_) => None,
            Problem::InvalidMode(v) => Some(format!(
                "mode must be one of async, sync, auto (got {v:?}); prefer the Prefer header"
            )),
            Problem::InvalidFlag { field, got } => Some(format!(
                "{field} must be a boolean (true or false), got {got}; prefer the Prefer header"
            )),
            Problem::AsyncRequirement { field, expected } => Some(format!(
                "\"{field}\" must be {expected} when the request is asynchronous"
            )),
            Problem::BodyTooLarge(limit) => Some(format!("the limit is {limit} bytes")),
            Problem::HeadersTooLarge => Some(format!(
                "at most {} header lines and {} bytes of headers",
                crate::limits::MAX_HEADERS,
                crate::limits::MAX_HEADER_BYTES
            )),
            Problem::BadRequestBody(d) | Problem::UpstreamUnreachable(d) => Some(d.clone()),
            Problem::UpstreamTimeout => None,
            Problem::UpstreamContract {
                id: Some(id),
                detail,
            } => Some(format!("operation {id}: {detail}")),
            Problem::UpstreamContract { id: None, detail } => Some(detail.clone()),
            Problem::Draining => Some("retry on another instance or shortly".into()),
            Problem::TenantRequired(h) => Some(format!("send the {h} header")),
            Problem::InvalidIdempotencyKey(why) => Some(why.clone()),
            Problem::IdempotencyConflict => {
                Some("reuse a key only to retry the identical request".into())
            }
            Problem::QueueFull(n) => Some(format!("at most {n} unfinished jobs per tenant")),
            Problem::JobNotFound | Problem::JobExpired => None,
            Problem::JobFinished(status) => Some(format!("its status is {status}")),
            Problem::NoResult(status) => Some(format!("its status is {status}")),
            Problem::JobUnfinished(status) => Some(format!(
                "its status is {status}; cancel it first (DELETE without purge), then purge it"
            )),
            Problem::NoticePending(secs) => Some(format!(
                "the route's admission endpoint has not yet been told how the job ended; \
                 retry in {secs}s"
            )),
            Problem::InvalidQuery(why) => Some(why.clone()),
            Problem::InvalidCancelAfter(why) => Some(format!("Cancel-After: {why}")),
            Problem::InvalidCallbackEvents(why) => Some(why.clone()),
            Problem::StoreUnavailable | Problem::AdmissionUnavailable => {
                Some("retry shortly; nothing was accepted".into())
            }
            Problem::NotReady(why) => Some(why.clone()),
            Problem::CallbackWithoutAsync => Some(
                "send Prefer: respond-async (or wait=N) with a callback, or drop the callback"
                    .into(),
            ),
            Problem::CallbackForbidden(why) => Some(why.clone()),
            Problem::CannotRedeliver(why) => Some((*why).to_owned()),
            Problem::BodyTimeout(idle) => {
                Some(format!("no body data arrived for {}s", idle.as_secs_f64()))
            }
            Problem::RateLimited(secs) => Some(format!("retry in {secs}s")),
            // Which part was wrong is not said: that would help a forger, not a client.
            Problem::SignatureInvalid => {
                Some("use the download_url of the job's status document exactly as given".into())
            }
            Problem::SignatureExpired => Some(
                "the job's status document (with the tenant header) has the current link".into(),
            ),
            // Nothing is said about why: that would help a forger.
            Problem::TaskCallbackUnknown => None,
            Problem::TaskCallbackUsed(status) => Some(format!(
                "the operation has already ended ({status}); this URL takes no more deliveries"
            )),
            Problem::TaskCallbackBody(why) => Some(format!(
                "send the operation's status document (what its status URL returns): {why}"
            )),
        }
    }

    /// The problem document as JSON.
    pub fn document(&self) -> Value {
        let (status, slug, title) = self.parts();
        let mut doc = Map::new();
        doc.insert("type".into(), json!(format!("{TYPE_BASE}{slug}")));
        doc.insert("title".into(), json!(title));
        doc.insert("status".into(), json!(status.as_u16()));
        if let Some(d) = self.detail() {
            doc.insert("detail".into(), json!(d));
        }
        match self {
            Problem::UpstreamContract { id: Some(id), .. } => {
                doc.insert("operation_id".into(), json!(id));
            }
            Problem::AsyncRequirement { field, expected } => {
                doc.insert("field".into(), json!(field));
                doc.insert("expected".into(), expected.clone());
            }
            _ => {}
        }
        Value::Object(doc)
    }

    /// The complete response.
    pub fn into_response(self) -> Response<Body> {
        let (status, _, _) = self.parts();
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut resp = Response::new(Body::full(body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Problem::MethodNotAllowed(allow) => {
                h.insert(ALLOW, allow);
            }
            Problem::Draining | Problem::StoreUnavailable | Problem::AdmissionUnavailable => {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Problem::QueueFull(_) => {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Problem::RateLimited(secs) | Problem::NoticePending(secs) => {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Problem::BodyTimeout(_) => {
                // The rest of the body may still arrive; the connection cannot be reused.
                h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

mod parts;

#[cfg(test)]
mod tests;
