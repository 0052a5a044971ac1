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

#[test]
fn expect_goes_from_requests_only_and_every_hop_name_is_found() {
    let mut h = HeaderMap::new();
    h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
    h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
    h.insert(
        header::PROXY_AUTHORIZATION,
        HeaderValue::from_static("Basic x"),
    );
    h.insert(
        header::PROXY_AUTHENTICATE,
        HeaderValue::from_static("Basic"),
    );
    h.insert(header::TRAILER, HeaderValue::from_static("x-sum"));
    let mut response = h.clone();
    strip_hop_by_hop(&mut response);
    assert_eq!(response.len(), 1, "{response:?}");
    assert_eq!(response[header::EXPECT], "100-continue");
    strip(&mut h, true);
    assert!(h.is_empty(), "{h:?}");
}

#[test]
fn connection_close_and_keep_alive_name_no_header_in_any_case() {
    let mut h = HeaderMap::new();
    h.append(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
    h.append(
        header::CONNECTION,
        HeaderValue::from_static(" CLOSE ,, x-drop"),
    );
    h.insert("x-drop", HeaderValue::from_static("1"));
    h.insert(
        "close",
        HeaderValue::from_static("kept: only named by a token it skips"),
    );
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h.contains_key("close"));
}

#[test]
fn without_a_prefix_the_clients_path_and_query_go_up_as_they_are() {
    let origin = Origin::new(
        IpAddr::from([10, 0, 0, 1]),
        false,
        "127.0.0.1:8080".parse().unwrap(),
    );
    let bare = Upstream::from_url(&url::Url::parse("http://127.0.0.1:9000").unwrap()).unwrap();
    let based = Upstream::from_url(&url::Url::parse("http://127.0.0.1:9000/b").unwrap()).unwrap();
    for (target, bare_want, based_want) in [
        (
            "/v1/x?a=1&b=%20",
            "http://127.0.0.1:9000/v1/x?a=1&b=%20",
            "http://127.0.0.1:9000/b/v1/x?a=1&b=%20",
        ),
        (
            "http://client.example/p?q",
            "http://127.0.0.1:9000/p?q",
            "http://127.0.0.1:9000/b/p?q",
        ),
        ("*", "http://127.0.0.1:9000*", "http://127.0.0.1:9000/b*"),
    ] {
        let req = || Request::builder().uri(target).body(Body::Empty).unwrap();
        let up = upstream_request(&bare, req(), &origin).unwrap();
        assert_eq!(up.uri().to_string(), bare_want, "{target}");
        let up = upstream_request(&based, req(), &origin).unwrap();
        assert_eq!(up.uri().to_string(), based_want, "{target}");
    }
}

#[test]
fn only_bodyless_requests_that_may_go_twice_are_kept_to_be_built_again() {
    let req = |m: http::Method, body: Body| {
        let mut r = Request::new(body);
        *r.method_mut() = m;
        *r.uri_mut() = Uri::from_static("/a?b");
        r.headers_mut()
            .insert("x-trace", HeaderValue::from_static("1"));
        r
    };
    for m in [http::Method::GET, http::Method::HEAD, http::Method::DELETE] {
        let kept = Kept::of(&req(m.clone(), Body::Empty)).unwrap();
        let again = kept.request();
        assert_eq!(again.method(), m);
        assert_eq!(again.uri(), "/a?b");
        assert_eq!(again.headers()["x-trace"], "1");
        assert!(matches!(again.body(), Body::Empty));
    }
    // A body the client streamed is gone once sent; a POST may have been acted on.
    assert!(Kept::of(&req(http::Method::PUT, Body::full(&b"x"[..]))).is_none());
    assert!(Kept::of(&req(http::Method::POST, Body::Empty)).is_none());
    let mut keyed = req(http::Method::POST, Body::Empty);
    keyed.headers_mut().insert(
        &crate::idempotency::IDEMPOTENCY_KEY,
        HeaderValue::from_static("k-1"),
    );
    assert!(Kept::of(&keyed).is_some());
}
