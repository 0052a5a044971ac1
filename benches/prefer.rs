//! Micro-benchmarks of the gateway's hot pure paths: parsing `Prefer`, resolving the
//! execution mode, and rewriting headers for the upstream hop and back. Run with
//! `cargo bench --bench prefer` (see bench/README.md; instructions per whole request are
//! counted by bench/callgrind.sh).
//!
//! Two `Prefer` inputs: the typical `respond-async, wait=10`, and a 3-line header with
//! parameters, quoted strings and a duplicate, which exercises every branch of the grammar.
//! Two header sets: what curl sends (3 headers) and a browser-like request behind another
//! proxy (14 headers with `Connection`, `X-Forwarded-For` and `Via` to fold).

// `criterion_group!` defines an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;

use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Version;
use prefer_gateway::mode::{resolve, WaitLimits};
use prefer_gateway::prefer::Preferences;
use prefer_gateway::upstream::forward;

const TYPICAL: &[&[u8]] = &[b"respond-async, wait=10"];

const THREE_LINES: &[&[u8]] = &[
    b"return=minimal; charset=\"utf-8\", handling=lenient",
    b"respond-async, foo=\"a, b; \\\"c\\\"\"; x=1;y",
    b"Wait=30; unit=s, wait=5, odd = \"caf\xc3\xa9\"",
];

fn parse(c: &mut Criterion) {
    for (name, lines) in [("typical", TYPICAL), ("three_lines", THREE_LINES)] {
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| Preferences::parse(black_box(lines).iter().copied()))
        });
    }
}

fn resolve_mode(c: &mut Criterion) {
    for (name, lines) in [("typical", TYPICAL), ("three_lines", THREE_LINES)] {
        let prefs = Preferences::parse(lines.iter().copied());
        c.bench_function(&format!("resolve/{name}"), |b| {
            b.iter(|| resolve(black_box(&prefs), black_box(None), WaitLimits::default()))
        });
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    h
}

const CURL: &[(&str, &str)] = &[
    ("host", "api.example"),
    ("user-agent", "curl/8.5.0"),
    ("accept", "*/*"),
];

const BEHIND_A_PROXY: &[(&str, &str)] = &[
    ("host", "api.example"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    ),
    ("accept", "application/json"),
    ("accept-language", "en-GB,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    (
        "authorization",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN",
    ),
    ("content-type", "application/json"),
    ("connection", "keep-alive, x-trace"),
    ("x-trace", "1"),
    ("x-forwarded-for", "203.0.113.7"),
    ("x-forwarded-for", "198.51.100.2"),
    ("via", "1.1 edge"),
    ("prefer", "respond-async, wait=10"),
    ("x-request-id", "abc-123"),
];

const UPSTREAM_RESPONSE: &[(&str, &str)] = &[
    ("server", "nginx/1.22.1"),
    ("date", "Mon, 23 Nov 2026 01:00:00 GMT"),
    ("content-type", "application/octet-stream"),
    ("content-length", "1024"),
    ("last-modified", "Mon, 23 Nov 2026 00:00:00 GMT"),
    ("connection", "keep-alive"),
    ("etag", "\"6741-400\""),
    ("accept-ranges", "bytes"),
];

fn header_rewrite(c: &mut Criterion) {
    let ip: IpAddr = [192, 168, 10, 77].into();
    let origin =
        prefer_gateway::upstream::origin::Origin::new(ip, false, ([127, 0, 0, 1], 8080).into());
    for (name, pairs) in [("curl", CURL), ("behind_a_proxy", BEHIND_A_PROXY)] {
        let template = headers(pairs);
        c.bench_function(&format!("rewrite_request/{name}"), |b| {
            b.iter_batched(
                || template.clone(),
                |mut h| {
                    let host = h.get("host").cloned();
                    forward::forward_request_headers(&mut h, Version::HTTP_11, &origin, host, None);
                    h
                },
                BatchSize::SmallInput,
            )
        });
    }
    let template = headers(UPSTREAM_RESPONSE);
    c.bench_function("rewrite_response/nginx", |b| {
        b.iter_batched(
            || template.clone(),
            |mut h| {
                forward::forward_response_headers(&mut h);
                h
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, parse, resolve_mode, header_rewrite);
criterion_main!(benches);
