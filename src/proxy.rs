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
//! - `X-Forwarded-For` is appended to (the chain is kept); `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` are overwritten with what this hop saw (a client cannot spoof them);
//! - `Via` is appended to on the request and on the response.
//!
//! `upstream_timeout` bounds the time until the upstream's response head arrives; a body that
//! then streams for longer is not cut (large downloads are legitimate).

use std::net::IpAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};

use crate::body::{Body, BodyError};
use crate::client::HttpClient;
use crate::problem::Problem;

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How many names [`HOP_BY_HOP`] lists (`Upgrade` is handled beside them).
const HOPS: usize = 8;
static HOP_BY_HOP: [HeaderName; HOPS] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

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

    /// The absolute upstream URI for a request path (+ query), under the prefix.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, Problem> {
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))
        }
        .map_err(|e| Problem::BadRequestBody(format!("request target: {e}")))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| Problem::BadRequestBody(format!("request target: {e}")))
    }
}

/// Removes hop-by-hop headers, including every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Hot path: most messages carry no hop-by-hop header but `Connection`/`Keep-Alive`, so
    // one scan over the names decides which removals are needed (each `remove` hashes).
    let mut present = [false; HOPS + 1];
    let mut any = false;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
            any = true;
        } else if name == header::UPGRADE {
            present[HOPS] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    if present[0] {
        // Every `Connection` line counts: a header it names on any line is hop-by-hop.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(|n| !matches!(n.as_str(), "close" | "keep-alive"))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present[i] {
            headers.remove(name);
        }
    }
    if present[HOPS] {
        headers.remove(header::UPGRADE);
    }
}

/// `ip` as header text; IPv4 is written by hand (this runs once per proxied request and
/// `Display` goes through `core::fmt`).
fn ip_header_text(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => out.extend_from_slice(ip.to_string().as_bytes()),
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
fn append_comma(headers: &mut HeaderMap, name: &HeaderName, value: &[u8]) {
    let mut joined: Vec<u8> = Vec::new();
    for old in headers.get_all(name).iter().filter(|v| !v.is_empty()) {
        joined.extend_from_slice(old.as_bytes());
        joined.extend_from_slice(b", ");
    }
    if joined.is_empty() {
        // The common case: no earlier hop. A static value needs no copy at all.
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name.clone(), v);
        }
        return;
    }
    joined.extend_from_slice(value);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(name.clone(), v);
    }
}

/// [`append_comma`] for a `'static` value: no copy when there is no earlier hop.
fn append_comma_static(headers: &mut HeaderMap, name: &HeaderName, value: &'static str) {
    if headers.contains_key(name) {
        append_comma(headers, name, value.as_bytes());
    } else {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
}

/// Rewrites request headers for the upstream hop (see the module doc for the rules).
pub fn forward_request_headers(
    headers: &mut HeaderMap,
    version: Version,
    client_ip: IpAddr,
    original_host: Option<HeaderValue>,
) {
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    headers.remove(header::EXPECT);
    let mut ip = Vec::with_capacity(16);
    ip_header_text(client_ip, &mut ip);
    append_comma(headers, &X_FORWARDED_FOR, &ip);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
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

/// Sends a prepared request; maps connect failures to `502`, a slow head to `504`, and a
/// client body that failed while streaming upstream to `408` (idle) or `400` (cut off).
pub async fn send(
    client: &HttpClient,
    mut req: Request<Body>,
    timeout: Duration,
) -> Result<Response<Body>, Problem> {
    *req.version_mut() = Version::HTTP_11;
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(Problem::UpstreamTimeout),
        Ok(Ok(mut resp)) => {
            resp.extensions_mut()
                .insert(UpstreamElapsed(started.elapsed()));
            Ok(resp)
        }
        Ok(Err(e)) if e.is_connect() => Err(Problem::UpstreamUnreachable(e.to_string())),
        // The client's body being streamed upstream failed: idle too long (408), or cut
        // off before its declared end (400) — the client's fault, not a 502.
        Ok(Err(e)) => match crate::body::BodyError::find_in(&e) {
            Some(BodyError::Idle(d)) => Err(Problem::BodyTimeout(*d)),
            Some(BodyError::Hyper(h)) => Err(Problem::BadRequestBody(format!("request body: {h}"))),
            None => Err(Problem::UpstreamUnreachable(format!(
                "upstream connection failed: {e}"
            ))),
        },
    }
}

/// Turns a client request into the upstream request for `upstream` (same method, path and
/// query, headers rewritten, body streamed).
pub fn upstream_request(
    upstream: &Upstream,
    req: Request<Body>,
    client_ip: IpAddr,
) -> Result<Request<Body>, Problem> {
    let host = original_host(&req);
    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(PathAndQuery::as_str)
        .unwrap_or("/");
    parts.uri = upstream.uri(pq)?;
    forward_request_headers(&mut parts.headers, parts.version, client_ip, host);
    // `Host` as nginx's `proxy_set_header Host $proxy_host` (computed once per route).
    parts.headers.insert(header::HOST, upstream.host.clone());
    Ok(Request::from_parts(parts, body))
}

/// A whole `proxy` route: forward, stream the answer back.
pub async fn forward(
    client: &HttpClient,
    upstream: &Upstream,
    req: Request<Body>,
    client_ip: IpAddr,
    timeout: Duration,
) -> Result<Response<Body>, Problem> {
    let up = upstream_request(upstream, req, client_ip)?;
    let resp = send(client, up, timeout).await?;
    Ok(into_client_response(resp))
}

/// An upstream response ready for the client: hop-by-hop gone, `Via` added, body streamed.
pub fn into_client_response(mut resp: Response<Body>) -> Response<Body> {
    forward_response_headers(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests;
