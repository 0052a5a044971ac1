//! The public base of every URL the gateway hands out (`Location`, `Operation-Location`,
//! `status_url`, `result_url`, `resourceLocation`, `download_url`, `Link: rel="monitor"`,
//! callback payloads): absolute, so a standard client can follow it as it is.
//!
//! What is trusted, in order:
//! 1. `server.public_url`, when configured — always, for every request and every callback.
//! 2. Otherwise, for an answer to a request: the scheme of the connection (`https` on the
//!    TLS listener) and the request's `Host` (or HTTP/2 `:authority`). Only when the peer
//!    is in `server.trusted_proxies` are the first `Forwarded` element's `host=`/`proto=`
//!    (RFC 7239), else `X-Forwarded-Host`/`-Proto`, believed instead. A `Host` that is not
//!    a plain `host[:port]` is not used: the address the client connected to is.
//!    A forged `Host` thus only shapes the answer to the request that carried it — URLs in
//!    another tenant's answers, and in callbacks, never come from it.
//! 3. Otherwise, for callbacks (sent later, to a receiver that is not the requester): the
//!    listener's own address, scheme by TLS; a wildcard listener (`0.0.0.0`, `::`) says
//!    `127.0.0.1` / `[::1]`. Set `public_url` when receivers live on other hosts.

use http::header::{HeaderMap, HeaderValue, FORWARDED, HOST};
use http::uri::Authority;
use http::Uri;

use crate::config::ServerConfig;
use crate::upstream::forward::{X_FORWARDED_HOST, X_FORWARDED_PROTO};
use crate::upstream::origin::Origin;

/// The base (`scheme://host[:port]`, or `public_url`) for URLs in the answer to a request.
pub fn for_request(
    server: &ServerConfig,
    origin: &Origin,
    uri: &Uri,
    headers: &HeaderMap,
) -> String {
    if let Some(url) = &server.public_url {
        return url.clone();
    }
    let mut scheme = if origin.https { "https" } else { "http" };
    let mut host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str))
        .and_then(plain_authority);
    if server
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&origin.ip))
    {
        let (fwd_host, fwd_proto) = forwarded(headers);
        let xf_host = first(headers.get(&X_FORWARDED_HOST));
        let xf_proto = first(headers.get(&X_FORWARDED_PROTO));
        if let Some(h) = fwd_host.or(xf_host).and_then(plain_authority) {
            host = Some(h);
        }
        match fwd_proto
            .or(xf_proto)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("https") => scheme = "https",
            Some("http") => scheme = "http",
            _ => {}
        }
    }
    match host {
        Some(h) => format!("{scheme}://{h}"),
        None => format!("{scheme}://{}", origin.local),
    }
}

/// The base for URLs in callbacks (see the module doc).
pub fn for_callbacks(server: &ServerConfig) -> String {
    if let Some(url) = &server.public_url {
        return url.clone();
    }
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut addr = server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{addr}")
}

/// `v` when it is a plain `host[:port]` (no user info, no path, no spaces).
fn plain_authority(v: &str) -> Option<&str> {
    let a: Authority = v.parse().ok()?;
    (!a.as_str().contains('@') && !a.host().is_empty()).then_some(v)
}

/// The first value of a comma-separated header (the original client side of a chain).
fn first(v: Option<&HeaderValue>) -> Option<&str> {
    let text = v?.to_str().ok()?;
    text.split(',')
        .next()
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `host=` and `proto=` of the first `Forwarded` element.
fn forwarded(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let Some(element) = first(headers.get(FORWARDED)) else {
        return (None, None);
    };
    let (mut host, mut proto) = (None, None);
    for pair in element.split(';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "host" => host = Some(v),
            "proto" => proto = Some(v),
            _ => {}
        }
    }
    (host, proto)
}

#[cfg(test)]
mod tests;
