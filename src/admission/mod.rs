//! Admission: a route's `admission = { url, timeout }` endpoint is asked before the gateway
//! accepts work, and told how the work ended — the seed's "reserve at submit, settle on
//! success, refund on failure", for any backend.
//!
//! **Reserve.** Before a job is created or a request is forwarded, the gateway `POST`s
//! ```json
//! {"action": "reserve", "tenant": "…", "route": "render", "method": "POST",
//!  "path": "/v1/render", "body_size": 1234}
//! ```
//! (`body_size` is `null` when a streamed body has no `Content-Length`; `tenant` is the raw
//! tenant header value — the endpoint is the operator's own service and needs the account).
//! - `2xx` → proceed; a JSON answer's `reservation` (string or number) is kept with the job
//!   and sent back on settle/release.
//! - any `4xx` (e.g. `402` insufficient balance, `403`) → that answer goes to the client as
//!   it is (status, `Content-Type`, `Retry-After`, `WWW-Authenticate`, body up to 64 KiB);
//!   no job is created, nothing is forwarded.
//! - anything else — connection refused, timeout, `5xx`, `3xx` (redirects are not
//!   followed), a 4xx body over 64 KiB → `503` problem `admission-unavailable`: failing
//!   closed, because admitting work nobody paid for is the worse error.
//!
//! **Settle / release** (see [`notice`]): when the job ends, `POST` the same URL with
//! `action` `settle` (succeeded) or `release` (failed, canceled, expired), the job id,
//! final status and the reservation, with `Idempotency-Key: {job id}:{action}` so the
//! endpoint can drop a repeat: delivery is at-least-once through the job store, like
//! callbacks, and made once per job when the first attempt succeeds.

pub mod notice;
pub mod reservation;
pub mod worker;

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::Body;
use crate::config::AdmissionConfig;
use crate::problem::Problem;

/// Most of an endpoint's answer the gateway reads (a refusal is passed on whole).
pub const MAX_ANSWER: usize = 64 * 1024;

/// What is asked.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Tenant (the tenant header's value, `""` single-tenant).
    pub tenant: &'a str,
    /// Route name.
    pub route: &'a str,
    /// Request method.
    pub method: &'a str,
    /// Request path (no query string).
    pub path: &'a str,
    /// Body size in bytes, when known.
    pub body_size: Option<u64>,
}

/// A streamed request's body size, from its `Content-Length` (none when chunked).
pub fn declared_size(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// The endpoint's decision.
#[derive(Debug)]
pub enum Verdict {
    /// Go ahead; keep the reservation id for settle/release.
    Admitted {
        /// The endpoint's reservation id, if it gave one.
        reservation: Option<String>,
    },
    /// The endpoint said no: its answer, for the client.
    Refused(Response<Body>),
}

/// The HTTP client for admission calls: redirects off, no proxy; rustls for `https`.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| format!("admission client: {e}"))
}

/// Asks `cfg`'s endpoint to admit `ask`; `Err` is the `503` problem.
pub async fn reserve(
    client: &reqwest::Client,
    cfg: &AdmissionConfig,
    ask: &Ask<'_>,
) -> Result<Verdict, Problem> {
    let body = serde_json::json!({
        "action": "reserve",
        "tenant": ask.tenant,
        "route": ask.route,
        "method": ask.method,
        "path": ask.path,
        "body_size": ask.body_size,
    });
    let sent = client
        .post(cfg.url.clone())
        .timeout(cfg.timeout)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return Err(unavailable(crate::error::describe(&e))),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let answer = match read_capped(resp, cfg.timeout).await {
        Some(b) => b,
        None if status.is_success() => Bytes::new(),
        None => return Err(unavailable(format!("its {status} answer was too large"))),
    };
    if status.is_success() {
        crate::metrics::get().admission_check("admitted");
        return Ok(Verdict::Admitted {
            reservation: reservation_of(&answer),
        });
    }
    if !status.is_client_error() {
        return Err(unavailable(format!("it answered {status}")));
    }
    let mut out = Response::new(Body::full(answer));
    *out.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::FORBIDDEN);
    for name in [CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE] {
        for v in headers.get_all(name.as_str()) {
            if let Ok(v) = http::HeaderValue::from_bytes(v.as_bytes()) {
                out.headers_mut().append(name.clone(), v);
            }
        }
    }
    crate::metrics::get().admission_check("refused");
    Ok(Verdict::Refused(out))
}

/// A `2xx` answer's `reservation`: a JSON string or number; anything else is none.
pub fn reservation_of(answer: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(answer).ok()?;
    match doc.get("reservation")? {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 512 => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn unavailable(why: String) -> Problem {
    crate::metrics::get().admission_check("unavailable");
    tracing::warn!(reason = %why, "admission endpoint unavailable; refusing the request");
    Problem::AdmissionUnavailable
}

/// Reads at most [`MAX_ANSWER`] bytes; `None` when the body is longer or fails.
pub(crate) async fn read_capped(mut resp: reqwest::Response, limit: Duration) -> Option<Bytes> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(limit, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                if out.len() + chunk.len() > MAX_ANSWER {
                    return None;
                }
                out.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return Some(Bytes::from(out)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_is_a_string_or_a_number() {
        assert_eq!(
            reservation_of(br#"{"reservation":"r-1"}"#).as_deref(),
            Some("r-1")
        );
        assert_eq!(
            reservation_of(br#"{"reservation":42}"#).as_deref(),
            Some("42")
        );
        assert_eq!(reservation_of(br#"{"reservation":""}"#), None);
        assert_eq!(reservation_of(br#"{"reservation":{"id":1}}"#), None);
        assert_eq!(reservation_of(b"ok"), None);
        assert_eq!(reservation_of(b""), None);
    }
}
