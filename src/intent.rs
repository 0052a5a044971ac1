//! What the client asked for, read off a request on a `task` or `sync` route.
//!
//! Combines the pure pieces ([`crate::prefer`], [`crate::mode`]) with the request itself:
//! the deprecated `mode` (or a boolean opt-in such as `"async": true`, `kind = "bool"`) may
//! sit in the query string or in a JSON body, and a route's `async_requires` rules look at
//! body fields. So this is where a body gets buffered — only when a field must be read (a
//! JSON-body `mode`, or rules on an asynchronous request), and only for bodies whose
//! `Content-Type` says JSON; anything else streams untouched. The body is read and parsed
//! once and handed on as a single chunk, which the callback intake and job submission take
//! without reading again. It also rewrites the request for forwarding: `mode` removed,
//! `respond-async`/`wait` removed from `Prefer` (other preferences stay exactly as sent).
//!
//! Rules are checked after the mode is known (they apply to ASYNC and WAIT only) and before
//! anything is forwarded or stored: a broken rule is a `422` with no upstream call and no
//! job. An asynchronous request on a route with rules whose body is not JSON (by
//! `Content-Type` or by content) breaks the first rule without its body being read.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::uri::PathAndQuery;
use http::Request;
use serde_json::Value;

use crate::body::{self, Body};
use crate::config::{ModeKind, ModeSource, RouteConfig};
use crate::mode::{self, Resolution, WaitLimits};
use crate::prefer::{self, Preferences};
use crate::problem::Problem;

/// The resolved intent, plus the headers every answer on this route must carry.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Execution mode and `Preference-Applied`.
    pub resolution: Resolution,
    /// `Deprecation`/`Sunset`/`Link` (when `mode` was used) and `Vary: Prefer`.
    pub extra_headers: HeaderMap,
}

impl Intent {
    /// Adds the route's extra headers (and merges `Vary`) into a response's headers.
    pub fn decorate(&self, headers: &mut HeaderMap) {
        decorate(&self.extra_headers, headers);
    }
}

/// Adds `extra` (and `Vary: Prefer`) to `headers`.
pub fn decorate(extra: &HeaderMap, headers: &mut HeaderMap) {
    for (name, value) in extra {
        headers.append(name, value.clone());
    }
    mode::add_vary_prefer(headers);
}

/// `WaitLimits` from a route's settings (whole seconds).
pub fn limits(route: &RouteConfig) -> WaitLimits {
    WaitLimits::from_durations(route.settings.min_wait, route.settings.max_wait)
}

/// Reads the intent and rewrites `req` for forwarding. On error, the problem to answer.
pub async fn read(
    route: &RouteConfig,
    req: Request<Body>,
) -> Result<(Intent, Request<Body>), (Problem, HeaderMap)> {
    let prefs = Preferences::from_headers(req.headers());
    let (mut parts, mut body) = req.into_parts();
    // The value the client sent for `mode` (for `kind = "bool"` and a JSON field: its JSON
    // text, so that `"true"` the string is told apart from `true`).
    let mut legacy: Option<String> = None;
    let mut buffered: Option<Buffered> = None;
    let mut extra = HeaderMap::new();
    if let Some(cfg) = &route.mode {
        match &cfg.source {
            ModeSource::Query(name) => {
                let (value, rest) = mode::legacy_from_query(parts.uri.query(), name);
                if value.is_some() {
                    let pq = match rest {
                        Some(q) => format!("{}?{q}", parts.uri.path()),
                        None => parts.uri.path().to_owned(),
                    };
                    let mut up = parts.uri.clone().into_parts();
                    up.path_and_query = PathAndQuery::try_from(pq).ok();
                    if let Ok(uri) = http::Uri::from_parts(up) {
                        parts.uri = uri;
                    }
                }
                legacy = value;
            }
            ModeSource::Json(ptr) if is_json(&parts.headers) => {
                let read = Buffered::read(std::mem::take(&mut body), route).await;
                let json = read.map_err(|p| (p, HeaderMap::new()))?;
                legacy = match (cfg.kind, json.doc.as_ref().and_then(|d| ptr.get(d))) {
                    (_, None) => None,
                    (ModeKind::Enum, Some(Value::String(s))) => Some(s.clone()),
                    (ModeKind::Enum, Some(_)) => {
                        mode::deprecation_headers(cfg, &mut extra);
                        return Err((Problem::InvalidMode("(not a string)".into()), extra));
                    }
                    (ModeKind::Bool, Some(v)) => Some(v.to_string()),
                };
                buffered = Some(json);
            }
            ModeSource::Json(_) => {}
        }
    }
    let limits = limits(route);
    let resolution = match &route.mode {
        Some(cfg) if cfg.kind == ModeKind::Bool => {
            mode::resolve_flag(&prefs, legacy.as_deref(), limits)
                .map_err(|mode::InvalidFlag(got)| invalid_flag(&cfg.source, got))
        }
        _ => mode::resolve(&prefs, legacy.as_deref(), limits)
            .map_err(|mode::InvalidMode(v)| Problem::InvalidMode(v)),
    };
    if let Some(cfg) = route.mode.as_ref().filter(|_| legacy.is_some()) {
        mode::deprecation_headers(cfg, &mut extra);
    }
    let resolution = match resolution {
        Ok(r) => r,
        Err(problem) => return Err((problem, extra)),
    };
    if resolution.mode.is_asynchronous() && !route.async_requires.is_empty() {
        if buffered.is_none() && is_json(&parts.headers) {
            match Buffered::read(std::mem::take(&mut body), route).await {
                Ok(json) => buffered = Some(json),
                Err(problem) => return Err((problem, extra)),
            }
        }
        let doc = buffered.as_ref().and_then(|b| b.doc.as_ref());
        if let Some(rule) = mode::rules::unmet(&route.async_requires, doc) {
            let problem = Problem::AsyncRequirement {
                field: rule.field.to_string(),
                expected: rule.expected.clone(),
            };
            return Err((problem, extra));
        }
    }
    if let Some(Buffered { bytes, doc }) = buffered {
        body = match (&route.mode, doc) {
            // The JSON field held the mode: forward the body without it.
            (Some(cfg), Some(doc)) if legacy.is_some() => match &cfg.source {
                ModeSource::Json(ptr) => {
                    let rewritten = mode::without_field(doc, ptr, &bytes);
                    parts
                        .headers
                        .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
                    Body::full(rewritten)
                }
                ModeSource::Query(_) => Body::full(bytes),
            },
            _ => Body::full(bytes),
        };
    }
    prefer::strip(&mut parts.headers, &["respond-async", "wait"]);
    Ok((
        Intent {
            resolution,
            extra_headers: extra,
        },
        Request::from_parts(parts, body),
    ))
}

/// A request body read once: its bytes and, when they are JSON, the parsed document.
struct Buffered {
    bytes: Bytes,
    doc: Option<Value>,
}

impl Buffered {
    /// Reads the whole body (up to the route's `max_body`) and parses it as JSON.
    async fn read(body: Body, route: &RouteConfig) -> Result<Buffered, Problem> {
        let bytes = body::collect(body, route.settings.max_body.bytes())
            .await
            .map_err(Problem::from)?;
        let doc = serde_json::from_slice(&bytes).ok();
        Ok(Buffered { bytes, doc })
    }
}

/// The `400` for a boolean opt-in that is not `true`/`false`, naming the field as the client
/// wrote it. The value is echoed only in part: it can be as large as the body.
fn invalid_flag(source: &ModeSource, got: String) -> Problem {
    const SHOWN: usize = 64;
    let (field, got) = match source {
        ModeSource::Query(name) => (format!("query parameter {name:?}"), format!("{got:?}")),
        ModeSource::Json(ptr) => (format!("field \"{ptr}\""), got),
    };
    let got = match got.chars().nth(SHOWN) {
        Some(_) => format!("{}…", got.chars().take(SHOWN).collect::<String>()),
        None => got,
    };
    Problem::InvalidFlag { field, got }
}

/// Whether a request's `Content-Type` is JSON (`application/json` or `*/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
        .unwrap_or(false)
}
