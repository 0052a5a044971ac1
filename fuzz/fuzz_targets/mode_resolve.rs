//! Fuzzes execution-mode resolution: the entry every `task`/`sync` request goes through,
//! `intent::read(route, request)`, and the pure pieces it is made of (`mode::resolve`,
//! `mode::legacy_from_query`, `mode::legacy_from_json`, `mode::deprecation_headers`,
//! `mode::WaitLimits::from_durations`).
//!
//! Input (text; readable seeds in `fuzz/seeds/mode_resolve/`). Line 1 configures the
//! route with space-separated `key=value` tokens, each optional: `min=`, `max=` (route
//! `min_wait`/`max_wait`, humantime), `body=` (`max_body`), `query=NAME` or `json=/PTR`
//! (where the deprecated `mode` lives; default `query=mode`), `dep=`, `sunset=` (RFC 3339
//! dates), `link=URL`, and `depsecs=`/`sunsetsecs=` (signed Unix seconds, fed straight to
//! `deprecation_headers` to reach dates a config cannot write). The route is loaded
//! through `config::load_str`, so only routes the loader accepts are used; when it refuses
//! one, a default route is used. Every later line is one of `P:<Prefer line>`,
//! `Q:<query>` (bytes a URI cannot carry are percent-encoded; the last one wins),
//! `C:<Content-Type>`, or `B:<body>` (the body is everything after `B:` to the end).
//!
//! Invariants checked (src/mode.rs and src/intent.rs docs, behaviour §3):
//!
//! - never panics; `intent::read` on an in-memory body finishes without waiting;
//! - `mode::resolve` follows the documented precedence: a `wait` at or above the floor
//!   wins (`Wait(min(n, max))`, `Preference-Applied: respond-async, wait=N`), then
//!   `respond-async` (`Async`), then the legacy `mode` (`async`, `sync` = `wait=60` capped,
//!   `auto`, trimmed and case-insensitive; anything else is `InvalidMode` carrying the
//!   value as sent); `applied` is set exactly when `Prefer` decided; `legacy_used`
//!   exactly when `mode` was sent;
//! - a resolved wait never exceeds the route's `max_wait`; a wait taken from `Prefer` is
//!   at least the route's `min_wait` whenever a whole second fits between the two bounds;
//!   `WaitLimits::from_durations` rounds the floor up and the cap down;
//! - `intent::read` agrees with `resolve` fed by `legacy_from_query`/`legacy_from_json`
//!   (JSON only for JSON content types, `413` above `max_body`, `400` for a non-string);
//!   the forwarded request has no `wait`/`respond-async` left in `Prefer` and every other
//!   preference unchanged, no `mode` pair left in its query (path unchanged), and a JSON
//!   body rewritten only when `mode` was found there (valid JSON, `Content-Length` set);
//!   `Deprecation` is added exactly when `mode` was used; `decorate` adds `Vary: Prefer`;
//! - `legacy_from_query` keeps every other pair in order and returns the query unchanged
//!   when it removes nothing;
//! - `deprecation_headers` always sets `Deprecation` to an RFC 9651 date (`@` and at most
//!   15 digits, `@0` when no date), sets `Sunset` exactly for dates in 1970..=9999, and a
//!   configured link as `Link: <url>; rel="deprecation"; type="text/html"`.
#![no_main]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LINK, VARY};
use libfuzzer_sys::fuzz_target;
use prefer_gateway::body::{self, Body};
use prefer_gateway::config::{self, ModeConfig, ModeSource, RouteConfig};
use prefer_gateway::intent;
use prefer_gateway::mode::{
    self, InvalidMode, JsonMode, Mode, Resolution, WaitLimits, DEPRECATION, SUNSET,
};
use prefer_gateway::prefer::{self, Preference, Preferences, PREFER};
use prefer_gateway::problem::Problem;

const PATH: &str = "/v1/fuzz";
const OWNED: [&str; 2] = ["respond-async", "wait"];
/// 10000-01-01T00:00:00Z: the first instant an IMF-fixdate cannot express.
const YEAR_10000: i64 = 253_402_300_800;

/// The decoded fuzz input.
#[derive(Default)]
struct Input<'a> {
    prefer: Vec<&'a [u8]>,
    query: Option<Vec<u8>>,
    content_type: Option<&'a [u8]>,
    body: &'a [u8],
}

fn decode(data: &[u8]) -> (String, Input<'_>) {
    let mut input = Input::default();
    let (first, mut rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix(b"B:") {
            input.body = body;
            break;
        }
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = next;
        if let Some(p) = line.strip_prefix(b"P:") {
            input.prefer.push(p);
        } else if let Some(q) = line.strip_prefix(b"Q:") {
            input.query = Some(q.to_vec());
        } else if let Some(c) = line.strip_prefix(b"C:") {
            input.content_type = Some(c);
        }
    }
    (String::from_utf8_lossy(first).into_owned(), input)
}

fn settings(first: &str) -> Vec<(&str, &str)> {
    first
        .split(' ')
        .filter_map(|tok| tok.split_once('='))
        .collect()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A one-route config with the fuzzed settings.
fn route_toml(settings: &[(&str, &str)]) -> String {
    let mut route = String::new();
    let mut mode = String::from("query = \"mode\"");
    let mut mode_extra = String::new();
    for &(k, v) in settings {
        match k {
            "min" => route.push_str(&format!("min_wait = {}\n", toml_str(v))),
            "max" => route.push_str(&format!("max_wait = {}\n", toml_str(v))),
            "body" => route.push_str(&format!("max_body = {}\n", toml_str(v))),
            "query" => mode = format!("query = {}", toml_str(v)),
            "json" => mode = format!("json = {}", toml_str(v)),
            "dep" => mode_extra.push_str(&format!(", deprecation = {}", toml_str(v))),
            "sunset" => mode_extra.push_str(&format!(", sunset = {}", toml_str(v))),
            "link" => mode_extra.push_str(&format!(", link = {}", toml_str(v))),
            _ => {}
        }
    }
    format!(
        "[jobs]\nstore = \"memory\"\n\n[[routes]]\nname = \"fuzz\"\nkind = \"task\"\n\
         methods = [\"POST\"]\npath = \"{PATH}\"\nupstream = \"http://127.0.0.1:9000\"\n\
         {route}mode = {{ {mode}{mode_extra} }}\n\n[routes.task]\nid = \"/taskId\"\n\
         status_url = \"/v1/tasks/{{id}}\"\n"
    )
}

fn load_route(settings: &[(&str, &str)]) -> Option<RouteConfig> {
    let mut cfg = config::load_str(&route_toml(settings), "fuzz.toml").ok()?;
    cfg.routes.pop()
}

/// `load_route`, remembered per settings line: the fuzzer mostly mutates the request, and
/// loading is pure, so this only saves time.
fn cached_route(first: &str, settings: &[(&str, &str)]) -> Option<RouteConfig> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<RouteConfig>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(hit) = map.get(first) {
        return hit.clone();
    }
    let route = load_route(settings);
    if map.len() >= 4096 {
        map.clear();
    }
    map.insert(first.to_owned(), route.clone());
    route
}

fn default_route() -> &'static RouteConfig {
    static ROUTE: OnceLock<RouteConfig> = OnceLock::new();
    ROUTE.get_or_init(|| match load_route(&[]) {
        Some(r) => r,
        None => panic!("the default fuzz route does not load"),
    })
}

/// Percent-encodes every byte a URI query cannot carry as it is (keeps `%` itself, so the
/// fuzzer can write its own escapes such as `m%6Fde`).
fn encode_query(q: &[u8]) -> String {
    let mut out = String::new();
    for &b in q {
        if (0x21..=0x7e).contains(&b) && b != b'#' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn run_now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("still pending on an in-memory body");
}

fn owned_removed(prefs: &Preferences) -> Vec<Preference> {
    prefs
        .iter()
        .filter(|p| !OWNED.contains(&p.name.as_str()))
        .cloned()
        .collect()
}

/// `mode::resolve` against its documented precedence.
fn check_resolve(
    prefs: &Preferences,
    legacy: Option<&str>,
    limits: WaitLimits,
    got: &Result<Resolution, InvalidMode>,
) {
    let from_prefer = prefs.wait().filter(|&n| n >= limits.min_secs);
    let expected: Result<Resolution, InvalidMode> = if let Some(n) = from_prefer {
        let w = n.min(limits.max_secs);
        Ok(Resolution {
            mode: Mode::Wait(w),
            applied: Some(prefer::applied(true, Some(w))),
            legacy_used: legacy.is_some(),
        })
    } else if prefs.respond_async() {
        Ok(Resolution {
            mode: Mode::Async,
            applied: Some(HeaderValue::from_static("respond-async")),
            legacy_used: legacy.is_some(),
        })
    } else {
        let mode = match legacy.map(|v| (v, v.trim().to_ascii_lowercase())) {
            None => Ok(Mode::Default),
            Some((_, t)) if t == "async" => Ok(Mode::Async),
            Some((_, t)) if t == "sync" => {
                Ok(Mode::Wait(mode::LEGACY_SYNC_WAIT_SECS.min(limits.max_secs)))
            }
            Some((_, t)) if t == "auto" => Ok(Mode::Default),
            Some((v, _)) => Err(InvalidMode(v.to_owned())),
        };
        mode.map(|mode| Resolution {
            mode,
            applied: None,
            legacy_used: legacy.is_some(),
        })
    };
    assert_eq!(got, &expected, "resolve({legacy:?}, {limits:?})");
    if let Ok(Resolution {
        mode: Mode::Wait(w),
        ..
    }) = got
    {
        assert!(*w <= limits.max_secs, "wait {w} above the cap {limits:?}");
    }
}

/// `Mode::Wait` against the route's configured durations.
fn check_bounds(route: &RouteConfig, r: &Resolution) {
    let Mode::Wait(w) = r.mode else {
        return;
    };
    let s = &route.settings;
    let wait = Duration::from_secs(w);
    assert!(
        wait <= s.max_wait,
        "wait {w}s exceeds max_wait {:?}",
        s.max_wait
    );
    let limits = intent::limits(route);
    if r.applied.is_some() && limits.min_secs <= limits.max_secs {
        assert!(
            wait >= s.min_wait,
            "wait {w}s below min_wait {:?}",
            s.min_wait
        );
    }
}

fn check_limits(min: Duration, max: Duration, l: WaitLimits) {
    let one = Duration::from_secs(1);
    let floor = Duration::from_secs(l.min_secs);
    let cap = Duration::from_secs(l.max_secs);
    // The floor rounds up: the smallest whole second at or above `min_wait` — or, past
    // u64::MAX seconds, saturates there (no wait is that long anyway).
    assert!(
        floor >= min || l.min_secs == u64::MAX,
        "min_wait {min:?} -> {l:?}"
    );
    assert!(
        min.checked_add(one).is_none_or(|m| floor < m),
        "min_wait {min:?} -> {l:?}"
    );
    // The cap rounds down: the largest whole second at or below `max_wait`.
    assert!(cap <= max, "max_wait {max:?} -> {l:?}");
    assert!(
        cap.checked_add(one).is_none_or(|c| c > max),
        "max_wait {max:?} -> {l:?}"
    );
}

fn pair_name(pair: &str) -> Option<String> {
    url::form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(n, _)| n.into_owned())
}

fn check_query(query: Option<&str>, name: &str) -> Option<String> {
    let (value, rest) = mode::legacy_from_query(query, name);
    let Some(q) = query else {
        assert_eq!((&value, &rest), (&None, &None));
        return None;
    };
    let pairs: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
    let named = |p: &&str| pair_name(p).as_deref() == Some(name);
    let kept: Vec<&str> = pairs.iter().copied().filter(|p| !named(p)).collect();
    match pairs.iter().find(|p| named(p)) {
        Some(first) => {
            let expected = url::form_urlencoded::parse(first.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned());
            assert_eq!(value, expected);
            let joined = kept.join("&");
            assert_eq!(rest, Some(joined).filter(|j| !j.is_empty()));
        }
        None => {
            assert_eq!(value, None);
            assert_eq!(rest, Some(q.to_owned()).filter(|j| !j.is_empty()));
        }
    }
    value
}

fn check_deprecation(cfg: &ModeConfig) {
    let mut h = HeaderMap::new();
    mode::deprecation_headers(cfg, &mut h);
    let dep = h.get(DEPRECATION).map(|v| v.as_bytes().to_vec());
    let Some(dep) = dep else {
        panic!("no Deprecation header for {cfg:?}");
    };
    let digits = dep
        .strip_prefix(b"@")
        .map(|d| d.strip_prefix(b"-").unwrap_or(d));
    assert!(
        digits.is_some_and(|d| !d.is_empty() && d.len() <= 15 && d.iter().all(u8::is_ascii_digit)),
        "Deprecation {:?}",
        String::from_utf8_lossy(&dep)
    );
    if cfg.deprecation.is_none() {
        assert_eq!(dep, b"@0");
    }
    let expressible = cfg.sunset.is_some_and(|t| {
        t.duration_since(UNIX_EPOCH)
            .is_ok_and(|d| d.as_secs() < YEAR_10000 as u64)
    });
    assert_eq!(
        h.get(SUNSET).is_some(),
        expressible,
        "Sunset for {:?}",
        cfg.sunset
    );
    if let Some(s) = h.get(SUNSET) {
        assert!(s.as_bytes().ends_with(b" GMT") && s.len() == 29, "{s:?}");
    }
    match &cfg.link {
        Some(url) => {
            let want = format!("<{url}>; rel=\"deprecation\"; type=\"text/html\"");
            assert_eq!(
                h.get(LINK).map(HeaderValue::as_bytes),
                Some(want.as_bytes())
            );
        }
        None => assert!(h.get(LINK).is_none()),
    }
}

fn time_from_secs(s: &str) -> Option<SystemTime> {
    let n: i64 = s.parse().ok()?;
    let d = Duration::from_secs(n.unsigned_abs());
    if n >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, input) = decode(data);
    let settings = settings(&first);
    let loaded = cached_route(&first, &settings);
    let route = loaded.as_ref().unwrap_or_else(|| default_route());
    let Some(mode_cfg) = &route.mode else {
        panic!("the fuzz route lost its mode config");
    };
    let limits = intent::limits(route);
    check_limits(route.settings.min_wait, route.settings.max_wait, limits);

    // Deprecation headers for the configured dates and for raw ones.
    check_deprecation(mode_cfg);
    let mut raw_dates = mode_cfg.clone();
    for &(k, v) in &settings {
        match k {
            "depsecs" => raw_dates.deprecation = time_from_secs(v),
            "sunsetsecs" => raw_dates.sunset = time_from_secs(v),
            _ => {}
        }
    }
    check_deprecation(&raw_dates);

    // The request.
    let mut headers = HeaderMap::new();
    for line in &input.prefer {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(PREFER, v);
        }
    }
    if let Some(ct) = input
        .content_type
        .and_then(|c| HeaderValue::from_bytes(c).ok())
    {
        headers.insert(CONTENT_TYPE, ct);
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(input.body.len()));
    let uri = match &input.query {
        Some(q) => format!("{PATH}?{}", encode_query(q)),
        None => PATH.to_owned(),
    };
    let uri: http::Uri = uri.parse().unwrap_or_else(|_| http::Uri::from_static(PATH));
    let mut req = http::Request::new(Body::full(Bytes::copy_from_slice(input.body)));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers.clone();

    // What the documented pieces say should happen.
    let prefs = Preferences::from_headers(&headers);
    let max_body = route.settings.max_body.bytes();
    enum Expect {
        Resolve(Option<String>),
        TooLarge,
        NotAString,
    }
    let expect = match &mode_cfg.source {
        ModeSource::Query(name) => Expect::Resolve(check_query(uri.query(), name)),
        ModeSource::Json(ptr) if intent::is_json(&headers) => {
            if input.body.len() as u64 > max_body {
                Expect::TooLarge
            } else {
                match mode::legacy_from_json(input.body, ptr) {
                    JsonMode::Found { value, body } => {
                        assert!(
                            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                            "rewritten body is not JSON"
                        );
                        Expect::Resolve(Some(value))
                    }
                    JsonMode::NotAString => Expect::NotAString,
                    JsonMode::NotJson | JsonMode::Absent => Expect::Resolve(None),
                }
            }
        }
        ModeSource::Json(_) => Expect::Resolve(None),
    };

    // The pure resolver, with the route's limits and with the raw Prefer lines.
    if let Expect::Resolve(legacy) = &expect {
        let got = mode::resolve(&prefs, legacy.as_deref(), limits);
        check_resolve(&prefs, legacy.as_deref(), limits, &got);
        let raw = Preferences::parse(input.prefer.iter().copied());
        check_resolve(
            &raw,
            legacy.as_deref(),
            limits,
            &mode::resolve(&raw, legacy.as_deref(), limits),
        );
    }

    // The real entry point.
    let result = run_now(intent::read(route, req));
    match (&expect, result) {
        (Expect::TooLarge, Err((Problem::BodyTooLarge(n), _))) => assert_eq!(n, max_body),
        (Expect::NotAString, Err((Problem::InvalidMode(_), extra))) => {
            assert!(extra.contains_key(DEPRECATION));
        }
        (Expect::Resolve(legacy), Err((Problem::InvalidMode(v), extra))) => {
            assert_eq!(
                mode::resolve(&prefs, legacy.as_deref(), limits),
                Err(InvalidMode(v))
            );
            assert!(extra.contains_key(DEPRECATION));
        }
        (Expect::Resolve(legacy), Ok((intent, fwd))) => {
            let expected = mode::resolve(&prefs, legacy.as_deref(), limits);
            assert_eq!(Ok(&intent.resolution), expected.as_ref());
            check_bounds(route, &intent.resolution);
            assert_eq!(
                intent.extra_headers.contains_key(DEPRECATION),
                legacy.is_some()
            );
            let mut decorated = HeaderMap::new();
            intent.decorate(&mut decorated);
            assert!(decorated
                .get(VARY)
                .is_some_and(|v| v.as_bytes().ends_with(b"Prefer")));

            let (parts, body) = fwd.into_parts();
            let after = Preferences::from_headers(&parts.headers);
            assert_eq!(
                after.iter().cloned().collect::<Vec<_>>(),
                owned_removed(&prefs),
                "forwarded Prefer changed a preference the gateway does not own"
            );
            assert_eq!(parts.uri.path(), PATH);
            let body = match run_now(body::collect(body, u64::MAX)) {
                Ok(b) => b,
                Err(e) => panic!("the forwarded in-memory body cannot be read: {e}"),
            };
            match &mode_cfg.source {
                ModeSource::Query(name) => {
                    if legacy.is_some() {
                        let q = parts.uri.query().unwrap_or("");
                        assert!(
                            q.split('&').all(|p| pair_name(p).as_deref() != Some(name)),
                            "`{name}` still in the forwarded query {q:?}"
                        );
                    } else {
                        assert_eq!(parts.uri, uri);
                    }
                    assert_eq!(&body[..], input.body);
                }
                ModeSource::Json(_) => {
                    if legacy.is_some() {
                        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
                        assert_eq!(
                            parts.headers.get(CONTENT_LENGTH),
                            Some(&HeaderValue::from(body.len()))
                        );
                    } else {
                        assert_eq!(&body[..], input.body);
                        assert_eq!(parts.uri, uri);
                    }
                }
            }
        }
        (_, Err((p, _))) => panic!("intent::read answered {p:?} where it should not"),
        (_, Ok(_)) => panic!("intent::read accepted a request it should refuse"),
    }
});
