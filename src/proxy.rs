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
use hyper::body::Incoming;

use crate::body::Body;
use crate::client::HttpClient;
use crate::problem::Problem;

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

const HOP_BY_HOP: [HeaderName; 8] = [
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
        Ok(Upstream {
            scheme: Scheme::HTTP,
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
    // Every `Connection` line counts: a header it names on any line is hop-by-hop.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

fn via_value(version: Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        Version::HTTP_2 => "2 prefer-gateway",
        Version::HTTP_10 => "1.0 prefer-gateway",
        _ => "1.1 prefer-gateway",
    })
}

/// Appends `value` to a list header, folding every existing line into one (so a chain
/// spread over several `X-Forwarded-For` or `Via` lines is kept whole).
fn append_comma(headers: &mut HeaderMap, name: &HeaderName, value: &[u8]) {
    let mut joined: Vec<u8> = Vec::new();
    for old in headers.get_all(name).iter().filter(|v| !v.is_empty()) {
        joined.extend_from_slice(old.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(value);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(name.clone(), v);
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
    append_comma(headers, &X_FORWARDED_FOR, client_ip.to_string().as_bytes());
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match original_host {
        Some(h) => headers.insert(X_FORWARDED_HOST.clone(), h),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    append_comma(headers, &header::VIA, via_value(version).as_bytes());
}

/// Rewrites upstream response headers for the client hop.
pub fn forward_response_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    append_comma(headers, &header::VIA, b"1.1 prefer-gateway");
}

/// The client's host: `Host`, or the `:authority` of an HTTP/2 request.
pub fn original_host<B>(req: &Request<B>) -> Option<HeaderValue> {
    req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Sends a prepared request; maps connect failures to `502` and a slow head to `504`.
pub async fn send(
    client: &HttpClient,
    mut req: Request<Body>,
    timeout: Duration,
) -> Result<Response<Incoming>, Problem> {
    *req.version_mut() = Version::HTTP_11;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err(Problem::UpstreamTimeout),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) if e.is_connect() => Err(Problem::UpstreamUnreachable(format!(
            "connect failed: {}",
            root_cause(&e)
        ))),
        Ok(Err(e)) => Err(Problem::UpstreamUnreachable(format!(
            "upstream connection failed: {}",
            root_cause(&e)
        ))),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
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
pub fn into_client_response(resp: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    forward_response_headers(&mut parts.headers);
    Response::from_parts(parts, Body::Incoming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_and_hop_by_hop_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret , keep-alive"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn forwarded_headers_append_and_overwrite() {
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR.clone(),
            HeaderValue::from_static("203.0.113.9"),
        );
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        h.insert(header::VIA, HeaderValue::from_static("1.1 edge"));
        h.insert(header::HOST, HeaderValue::from_static("api.example"));
        let ip: IpAddr = [127, 0, 0, 1].into();
        forward_request_headers(
            &mut h,
            Version::HTTP_11,
            ip,
            Some(HeaderValue::from_static("api.example")),
        );
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.9, 127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "api.example");
        assert_eq!(h[header::VIA], "1.1 edge, 1.1 prefer-gateway");
        assert!(h.get(header::HOST).is_none());
    }

    #[test]
    fn upstream_uri_keeps_path_query_and_prefix() {
        let u =
            Upstream::from_url(&url::Url::parse("http://127.0.0.1:9000/base/").unwrap()).unwrap();
        assert_eq!(
            u.uri("/v1/x?a=1").unwrap().to_string(),
            "http://127.0.0.1:9000/base/v1/x?a=1"
        );
        let u = Upstream::from_url(&url::Url::parse("http://localhost").unwrap()).unwrap();
        assert_eq!(u.uri("/").unwrap().to_string(), "http://localhost:80/");
        assert_eq!(u.host_port(), ("localhost".to_string(), 80));
    }
}
