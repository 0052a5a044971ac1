//! When a request whose pooled connection died under it may be sent again.
//!
//! The stale keep-alive race: an upstream closes an idle connection (its keep-alive timeout,
//! a restart, a limit of requests per connection) at the moment the gateway takes it from
//! the pool. Either hyper sees the close before it starts writing — the request comes back
//! unsent and is always safe to send again (the client handles that case by itself) — or
//! the request is written into the dying connection and the answer is an EOF or a reset
//! with no response. Measured in `tests/upstream_faults/stale.rs`: against an upstream that
//! closes after 1–4 requests, 18 % of proxied `GET`s were `502`s without a re-send.
//!
//! In the second case the request may have been read, so it is sent again only when doing
//! it twice is harmless — the rule of Go's `net/http` Transport and nginx's
//! `proxy_next_upstream` (which never re-sends a non-idempotent request that went out):
//! - the connection was a *reused* one (a fresh connection that fails is the upstream's
//!   answer, not a race: a `502`);
//! - the method is idempotent (RFC 9110 §9.2.2: `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`,
//!   `DELETE`) or the request carries an `Idempotency-Key` (a job's call always does: its job
//!   id, behaviour §5);
//! - the body is one the gateway still holds (none, or one buffered chunk) — a streamed
//!   client body is gone once sent;
//! - the connection ended before a complete response head (hyper's "incomplete message",
//!   or a reset / broken pipe) — never on a parse error or a timeout.
//!
//! hyper does not say whether *part* of a head had arrived before the EOF; for the requests
//! this rule admits that does not matter, since sending them twice is safe by their method
//! or key.
//!
//! hyper takes the request by value and drops its head once written, so the second send
//! needs the request from somewhere else. A caller that still holds what the request was
//! made from builds it again only when the race happened ([`Again::Rebuild`]: the proxy
//! path, from the client's request) — the common request copies nothing. Other callers get
//! a copy taken before the send ([`Again::Copy`], one header-map clone; nginx keeps its
//! request buffer for the same reason).

use std::io::ErrorKind;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::Again;
use crate::body::Body;
use crate::idempotency::IDEMPOTENCY_KEY;

/// How a request on a reused connection ended.
pub(super) enum Reused {
    /// The response head arrived.
    Answered(Response<Incoming>),
    /// Send `again` on another connection: it never went out, or (`maybe_sent`) it may
    /// have, and the rule allows one re-send. `rebuilt`: built again by the caller, so its
    /// URI is the absolute one the caller first gave.
    Again {
        again: Request<Body>,
        maybe_sent: bool,
        rebuilt: bool,
    },
    /// Failed for good: the caller's error.
    Failed(hyper::Error),
}

/// Sends `req` on the reused connection `tx`; when it dies under the request, whether to
/// send it again (`may_resend`: false once a possibly sent request has been re-sent) and
/// how to have it again (`again`).
pub(super) async fn send_reused(
    tx: &mut SendRequest<Body>,
    req: Request<Body>,
    may_resend: bool,
    again: &Again<'_>,
) -> Reused {
    let (copy, rebuild) = match again {
        _ if !may_resend => (None, None),
        Again::Copy => (replayable(&req), None),
        Again::Rebuild(f) => (None, resendable(&req).then_some(*f)),
    };
    match tx.try_send_request(req).await {
        Ok(resp) => Reused::Answered(resp),
        Err(mut e) => {
            // Never sent (hyper saw the close first): safe whatever the method.
            if let Some(unsent) = e.take_message() {
                return Reused::Again {
                    again: unsent,
                    maybe_sent: false,
                    rebuilt: false,
                };
            }
            let e = e.into_error();
            if !died_before_answer(&e) {
                return Reused::Failed(e);
            }
            let (again, rebuilt) = match (copy, rebuild) {
                (Some(copy), _) => (copy, false),
                (None, Some(rebuild)) => match rebuild() {
                    Some(req) => (req, true),
                    None => return Reused::Failed(e),
                },
                (None, None) => return Reused::Failed(e),
            };
            tracing::debug!(error = %e, "reused connection died; re-sending");
            Reused::Again {
                again,
                maybe_sent: true,
                rebuilt,
            }
        }
    }
}

/// Whether the rule of the module doc allows sending `req` twice: an idempotent method or
/// an `Idempotency-Key`, and a body the gateway still holds (none, or one buffered chunk).
fn resendable(req: &Request<Body>) -> bool {
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent && !req.headers().contains_key(&IDEMPOTENCY_KEY) {
        return false;
    }
    match req.body() {
        Body::Empty | Body::Full(_) => true,
        // A client request without a body (hyper's `Incoming` that is already at its end).
        Body::Incoming(b) => http_body::Body::is_end_stream(b),
        _ => false,
    }
}

/// A copy of `req` to send again if its reused connection dies before answering, when the
/// rule of the module doc allows a re-send; `None` otherwise.
fn replayable(req: &Request<Body>) -> Option<Request<Body>> {
    if !resendable(req) {
        return None;
    }
    let body = match req.body() {
        Body::Full(chunk) => Body::Full(chunk.clone()),
        _ => Body::Empty,
    };
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// Whether `e` says the connection ended before a complete response head arrived (EOF,
/// reset, broken pipe) — what a connection the upstream closed under the request looks like.
fn died_before_answer(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() {
        return true;
    }
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            );
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn req(method: Method, body: Body) -> Request<Body> {
        let mut r = Request::new(body);
        *r.method_mut() = method;
        *r.uri_mut() = http::Uri::from_static("/a?b");
        r.headers_mut()
            .insert("x-trace", HeaderValue::from_static("1"));
        r
    }

    #[test]
    fn idempotent_methods_without_a_streamed_body_may_be_sent_again() {
        for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            let copy = replayable(&req(m.clone(), Body::Empty)).unwrap();
            assert_eq!(copy.method(), m);
            assert_eq!(copy.uri(), "/a?b");
            assert_eq!(copy.headers()["x-trace"], "1");
        }
        let put = req(Method::PUT, Body::full(bytes::Bytes::from_static(b"x")));
        assert!(matches!(replayable(&put).unwrap().body(), Body::Full(Some(b)) if b == "x"));
    }

    #[test]
    fn a_post_is_sent_again_only_with_an_idempotency_key() {
        let body = || Body::full(bytes::Bytes::from_static(b"{}"));
        assert!(replayable(&req(Method::POST, body())).is_none());
        assert!(replayable(&req(Method::PATCH, body())).is_none());
        let mut keyed = req(Method::POST, body());
        keyed
            .headers_mut()
            .insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("job-1"));
        let copy = replayable(&keyed).unwrap();
        assert_eq!(copy.headers()[&IDEMPOTENCY_KEY], "job-1");
    }
}
