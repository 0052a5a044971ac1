//! Forwarding one request to an upstream: URI rewrite, header hygiene, timeout, errors.
//!
//! Bodies stream in both directions (the client's `Incoming` becomes the upstream request
//! body and vice versa), so a 100 MiB upload costs a few buffers, not 100 MiB.
//!
//! Header decisions (nginx's defaults are the bar):
//! - hop-by-hop headers (RFC 9110 §7.6.1) and every header named in `Connection` are removed
//!   in both directions; so is `Expect` (the gateway answers `100-continue` itself);
//! - `Host` is set from the upstream URL (as nginx's `proxy_set_header Host $proxy_host`);
//!   the client's host goes to `X-Forwarded-Host`;
//! - `X-Forwarded-For` is appended to (the chain is kept); `X-Forwarded-Proto`,
//!   `X-Forwarded-Port` and `X-Forwarded-Host` are overwritten with what this hop saw (a
//!   client cannot spoof them): `https` and the TLS listener's port behind TLS, as nginx's
//!   `$scheme`/`$server_port` and Envoy's `x-forwarded-proto`;
//! - `Forwarded` (RFC 7239) gets this hop's element appended — `for=` (IPv6 quoted and
//!   bracketed), `host=` (quoted; left out when the client sent none or one that cannot be
//!   quoted) and `proto=` — after whatever earlier hops wrote, as `X-Forwarded-For` is
//!   (a client's own elements come first and are the upstream's to distrust, the same as
//!   with `X-Forwarded-For`);
//! - `Via` is appended to on the request and on the response.
//!
//! `upstream_timeout` bounds the time until the upstream's response head arrives; a body that
//! then streams for longer is not cut (large downloads are legitimate).

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};

use crate::body::{Body, BodyError};
use crate::error::{Error, ErrorKind};
use crate::upstream::client::{Again, HttpClient};
use crate::upstream::origin::Origin;

mod hop;
use hop::strip;
pub use hop::strip_hop_by_hop;

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`.
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Where a route's requests go: scheme, authority and an optional path prefix.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    /// `Host` sent upstream (no port when it is 80).
    host: HeaderValue,
}

impl Upstream {
    /// From a validated `http://host[:port][/prefix]` URL.
    pub fn from_url(url: &url::Url) -> Result<Self, String> {
        let host = url
            .host_str()
            .ok_or_else(|| format!("upstream {url} has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let host = if port == 80 {
            authority.trim_end_matches(":80")
        } else {
            &authority
        };
        Ok(Upstream {
            scheme: Scheme::HTTP,
            host: HeaderValue::from_str(host)
                .map_err(|e| format!("upstream {url}: bad host: {e}"))?,
            authority: authority
                .parse()
                .map_err(|e| format!("upstream {url}: bad authority: {e}"))?,
            prefix: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Host and port to resolve at start.
    pub fn host_port(&self) -> (String, u16) {
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        (host.to_owned(), self.authority.port_u16().unwrap_or(80))
    }

    /// The absolute upstream URI for `pq` as it is (no prefix applied).
    fn uri_of(&self, pq: PathAndQuery) -> Result<Uri, Error> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(pq);
        Uri::from_parts(parts)
            .map_err(|e| Error::new(ErrorKind::BadTarget, format!("request target: {e}")))
    }

    /// The absolute upstream URI for a request path (+ query), under the prefix.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, Error> {
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))
        }
        .map_err(|e| Error::new(ErrorKind::BadTarget, format!("request target: {e}")))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| Error::new(ErrorKind::BadTarget, format!("request target: {e}")))
    }
}

fn via_value(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "2 prefer-gateway",
        Version::HTTP_10 => "1.0 prefer-gateway",
        _ => "1.1 prefer-gateway",
    }
}

/// Appends `value` to a list header, folding every existing line into one (so a chain
/// spread over several `X-Forwarded-For` or `Via` lines is kept whole).
/// One map lookup: the common case (no earlier hop) inserts `value` as it is.
fn append_comma(headers: &mut HeaderMap, name: &HeaderName, value: HeaderValue) {
    match headers.entry(name) {
        header::Entry::Vacant(slot) => {
            slot.insert(value);
        }
        header::Entry::Occupied(mut lines) => {
            let mut joined: Vec<u8> = Vec::new();
            for old in lines.iter().filter(|v| !v.is_empty()) {
                joined.extend_from_slice(old.as_bytes());
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(value.as_bytes());
            match HeaderValue::from_bytes(&joined) {
                Ok(v) => lines.insert(v),
                Err(_) => lines.insert(value),
            };
        }
    }
}

/// [`append_comma`] for a `'static` value (no copy when there is no earlier hop).
fn append_comma_static(headers: &mut HeaderMap, name: &HeaderName, value: &'static str) {
    append_comma(headers, name, HeaderValue::from_static(value));
}

/// Rewrites request headers for the upstream hop (see the module doc for the rules).
/// `Host` becomes `upstream_host`, or is removed when that is `None` (a job sets its own
/// when it runs).
pub fn forward_request_headers(
    headers: &mut HeaderMap,
    version: Version,
    origin: &Origin,
    original_host: Option<HeaderValue>,
    upstream_host: Option<HeaderValue>,
) {
    strip(headers, true);
    match upstream_host {
        // One lookup: overwrites the client's `Host`.
        Some(h) => headers.insert(header::HOST, h),
        None => headers.remove(header::HOST),
    };
    append_comma(headers, &X_FORWARDED_FOR, origin.ip_text.clone());
    let forwarded = origin.forwarded(original_host.as_ref());
    append_comma(headers, &header::FORWARDED, forwarded);
    let proto = HeaderValue::from_static(origin.proto());
    headers.insert(X_FORWARDED_PROTO.clone(), proto);
    headers.insert(X_FORWARDED_PORT.clone(), origin.port.clone());
    match original_host {
        Some(h) => headers.insert(X_FORWARDED_HOST.clone(), h),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    append_comma_static(headers, &header::VIA, via_value(version));
}

/// Rewrites upstream response headers for the client hop.
pub fn forward_response_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    append_comma_static(headers, &header::VIA, "1.1 prefer-gateway");
}

/// The client's host: `Host`, or the `:authority` of an HTTP/2 request.
pub fn original_host<B>(req: &Request<B>) -> Option<HeaderValue> {
    req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// How long the upstream call behind a response took to its head (a response extension,
/// read by the gateway for the access log and the upstream latency histogram).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamElapsed(pub Duration);

/// Sends a prepared request. Fails with [`ErrorKind::Connect`] when no connection could be
/// made, [`ErrorKind::Timeout`] for a slow head, and — when the client's body failed while
/// streaming upstream — [`ErrorKind::BodyIdle`] or [`ErrorKind::BodyCut`] (the client's
/// fault, not the upstream's).
pub async fn send(
    client: &HttpClient,
    req: Request<Body>,
    timeout: Duration,
) -> Result<Response<Body>, Error> {
    send_with(client, req, timeout, Again::Copy).await
}

/// [`send`], with how the request is had again if its reused connection dies under it.
async fn send_with(
    client: &HttpClient,
    mut req: Request<Body>,
    timeout: Duration,
    again: Again<'_>,
) -> Result<Response<Body>, Error> {
    *req.version_mut() = Version::HTTP_11;
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, client.request_with(req, again)).await {
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            "the upstream did not answer in time",
        )),
        Ok(Ok(mut resp)) => {
            resp.extensions_mut()
                .insert(UpstreamElapsed(started.elapsed()));
            Ok(resp)
        }
        Ok(Err(e)) if e.is_connect() => Err(Error::new(ErrorKind::Connect, e.to_string())),
        // The client's body being streamed upstream failed: idle too long (408), or cut
        // off before its declared end (400) — the client's fault, not a 502.
        Ok(Err(e)) => match crate::body::BodyError::find_in(&e) {
            Some(BodyError::Idle(d)) => Err(Error::new(
                ErrorKind::BodyIdle(*d),
                format!("request body idle for {d:?}"),
            )),
            Some(BodyError::Hyper(h)) => {
                Err(Error::new(ErrorKind::BodyCut, format!("request body: {h}")))
            }
            None => Err(Error::new(
                ErrorKind::UpstreamBroken,
                format!("upstream connection failed: {e}"),
            )),
        },
    }
}

/// Turns a client request into the upstream request for `upstream` (same method, path and
/// query, headers rewritten, body streamed).
pub fn upstream_request(
    upstream: &Upstream,
    req: Request<Body>,
    origin: &Origin,
) -> Result<Request<Body>, Error> {
    let host = original_host(&req);
    let (mut parts, body) = req.into_parts();
    parts.uri = match parts.uri.path_and_query() {
        // Without a prefix the client's path and query go up as they are: a shared copy of
        // what hyper parsed (and checked by the same rules), not a new string to validate.
        Some(pq) if upstream.prefix.is_empty() => upstream.uri_of(pq.clone())?,
        pq => upstream.uri(pq.map(PathAndQuery::as_str).unwrap_or("/"))?,
    };
    // `Host` as nginx's `proxy_set_header Host $proxy_host` (computed once per route).
    let upstream_host = Some(upstream.host.clone());
    forward_request_headers(
        &mut parts.headers,
        parts.version,
        origin,
        host,
        upstream_host,
    );
    Ok(Request::from_parts(parts, body))
}

/// A whole `proxy` route: forward, stream the answer back.
pub async fn forward(
    client: &HttpClient,
    upstream: &Upstream,
    req: Request<Body>,
    origin: &Origin,
    timeout: Duration,
) -> Result<Response<Body>, Error> {
    // What the upstream request is made from, kept (before the rewrite) only when it may be
    // sent twice; the client builds it again from this if its reused connection dies under
    // it (see `client::retry`), instead of copying every request on its way out.
    let kept = Kept::of(&req);
    let up = upstream_request(upstream, req, origin)?;
    let rebuild = || {
        let req = kept.as_ref()?.request();
        upstream_request(upstream, req, origin).ok()
    };
    let again = match kept {
        Some(_) => Again::Rebuild(&rebuild),
        None => Again::Copy,
    };
    let resp = send_with(client, up, timeout, again).await?;
    Ok(into_client_response(resp))
}

/// A bodyless client request's head, kept to build its upstream request again.
struct Kept {
    method: http::Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Kept {
    /// The head of `req` when it has no body and the client's rule would send it twice
    /// (an idempotent method or an `Idempotency-Key`); `None` otherwise.
    fn of(req: &Request<Body>) -> Option<Kept> {
        let idempotent = matches!(
            *req.method(),
            http::Method::GET
                | http::Method::HEAD
                | http::Method::OPTIONS
                | http::Method::TRACE
                | http::Method::PUT
                | http::Method::DELETE
        );
        let keyed = || {
            req.headers()
                .contains_key(&crate::idempotency::IDEMPOTENCY_KEY)
        };
        if !http_body::Body::is_end_stream(req.body()) || !(idempotent || keyed()) {
            return None;
        }
        Some(Kept {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    /// The client's request again, without a body.
    fn request(&self) -> Request<Body> {
        let mut req = Request::new(Body::Empty);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// An upstream response ready for the client: hop-by-hop gone, `Via` added, body streamed.
pub fn into_client_response(mut resp: Response<Body>) -> Response<Body> {
    forward_response_headers(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests;
