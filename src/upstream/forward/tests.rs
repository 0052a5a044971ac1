//! Unit tests of the header rules and upstream URIs.

use super::*;
use crate::upstream::origin::ip_header_text;
use std::net::IpAddr;

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
    h.insert(
        header::FORWARDED,
        HeaderValue::from_static("for=203.0.113.9"),
    );
    let origin = Origin::new([127, 0, 0, 1].into(), false, ([127, 0, 0, 1], 8080).into());
    forward_request_headers(
        &mut h,
        Version::HTTP_11,
        &origin,
        Some(HeaderValue::from_static("api.example")),
        None,
    );
    assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.9, 127.0.0.1");
    assert_eq!(h[&X_FORWARDED_PROTO], "http");
    assert_eq!(h[&X_FORWARDED_PORT], "8080");
    assert_eq!(
        h[header::FORWARDED],
        "for=203.0.113.9, for=127.0.0.1;host=\"api.example\";proto=http"
    );
    assert_eq!(h[&X_FORWARDED_HOST], "api.example");
    assert_eq!(h[header::VIA], "1.1 edge, 1.1 prefer-gateway");
    assert!(h.get(header::HOST).is_none());
}

#[test]
fn behind_tls_the_hop_says_https() {
    let mut h = HeaderMap::new();
    h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    let origin = Origin::new(
        "2001:db8::7".parse().unwrap_or(IpAddr::from([0; 4])),
        true,
        ([127, 0, 0, 1], 8443).into(),
    );
    forward_request_headers(&mut h, Version::HTTP_2, &origin, None, None);
    assert_eq!(h[&X_FORWARDED_PROTO], "https");
    assert_eq!(h[&X_FORWARDED_PORT], "8443");
    assert_eq!(h[header::FORWARDED], "for=\"[2001:db8::7]\";proto=https");
}

#[test]
fn ipv4_text_matches_display() {
    for ip in [
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [10, 0, 100, 9],
        [127, 0, 0, 1],
        [192, 168, 99, 10],
    ] {
        let ip = IpAddr::from(ip);
        let mut out = Vec::new();
        ip_header_text(ip, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
    }
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let mut out = Vec::new();
    ip_header_text(v6, &mut out);
    assert_eq!(out, b"2001:db8::1");
}

#[test]
fn headers_without_hop_by_hop_are_left_alone() {
    let mut h = HeaderMap::new();
    h.insert("x-kept", HeaderValue::from_static("yes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 2);
    let mut h = HeaderMap::new();
    h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    strip_hop_by_hop(&mut h);
    assert!(h.is_empty());
}

#[test]
fn upstream_uri_keeps_path_query_and_prefix() {
    let u = Upstream::from_url(&url::Url::parse("http://127.0.0.1:9000/base/").unwrap()).unwrap();
    assert_eq!(
        u.uri("/v1/x?a=1").unwrap().to_string(),
        "http://127.0.0.1:9000/base/v1/x?a=1"
    );
    let u = Upstream::from_url(&url::Url::parse("http://localhost").unwrap()).unwrap();
    assert_eq!(u.uri("/").unwrap().to_string(), "http://localhost:80/");
    assert_eq!(u.host_port(), ("localhost".to_string(), 80));
}
