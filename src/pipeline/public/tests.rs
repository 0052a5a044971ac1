//! Which base a URL gets, and what a client cannot forge.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Uri};

use super::*;

fn server(public_url: Option<&str>, trusted: &[&str]) -> ServerConfig {
    let mut cfg = crate::config::load_str("[server]\nlisten = \"0.0.0.0:8080\"\n", "t.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .server;
    cfg.public_url = public_url.map(str::to_owned);
    cfg.trusted_proxies = trusted
        .iter()
        .map(|n| n.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    cfg
}

fn origin(peer: [u8; 4], https: bool) -> Origin {
    let local: SocketAddr = ([10, 0, 0, 5], 8080).into();
    Origin::new(peer.into(), https, local)
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn public_url_wins_over_everything() {
    let s = server(Some("https://api.example.com/v2"), &["0.0.0.0/0"]);
    let h = headers(&[("host", "evil.example"), ("x-forwarded-host", "evil2")]);
    let base = for_request(&s, &origin([1, 2, 3, 4], false), &Uri::from_static("/"), &h);
    assert_eq!(base, "https://api.example.com/v2");
    assert_eq!(for_callbacks(&s), "https://api.example.com/v2");
}

#[test]
fn host_and_connection_scheme_without_trusted_proxies() {
    let s = server(None, &[]);
    let h = headers(&[
        ("host", "gw.example:8080"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "host=evil.example;proto=https"),
    ]);
    let uri = Uri::from_static("/jobs/1");
    assert_eq!(
        for_request(&s, &origin([1, 2, 3, 4], false), &uri, &h),
        "http://gw.example:8080",
        "forwarded headers from an untrusted peer are ignored"
    );
    assert_eq!(
        for_request(&s, &origin([1, 2, 3, 4], true), &uri, &h),
        "https://gw.example:8080"
    );
}

#[test]
fn a_trusted_proxy_names_host_and_scheme() {
    let s = server(None, &["10.0.0.0/8"]);
    let uri = Uri::from_static("/");
    let fwd = headers(&[
        ("host", "internal:8080"),
        (
            "forwarded",
            "for=1.2.3.4;host=\"api.example.com\";proto=https, for=10.0.0.2",
        ),
        ("x-forwarded-host", "other.example"),
    ]);
    assert_eq!(
        for_request(&s, &origin([10, 0, 0, 2], false), &uri, &fwd),
        "https://api.example.com"
    );
    let xf = headers(&[
        ("host", "internal:8080"),
        ("x-forwarded-host", "api.example.com, internal"),
        ("x-forwarded-proto", "https"),
    ]);
    assert_eq!(
        for_request(&s, &origin([10, 0, 0, 2], false), &uri, &xf),
        "https://api.example.com"
    );
    // The same headers from outside the trusted network change nothing.
    assert_eq!(
        for_request(&s, &origin([1, 2, 3, 4], false), &uri, &xf),
        "http://internal:8080"
    );
}

#[test]
fn a_host_that_is_not_an_authority_falls_back_to_the_local_address() {
    let s = server(None, &[]);
    let uri = Uri::from_static("/");
    for bad in ["user@evil.example", "a b", "evil.example/path"] {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            HeaderValue::from_str(bad).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(
            for_request(&s, &origin([1, 2, 3, 4], false), &uri, &h),
            "http://10.0.0.5:8080",
            "{bad}"
        );
    }
}

#[test]
fn callbacks_use_the_listener_when_no_public_url() {
    assert_eq!(for_callbacks(&server(None, &[])), "http://127.0.0.1:8080");
}
