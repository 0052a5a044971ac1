//! What the client asked for, read off a request on a `task` or `sync` route.
//!
//! Combines the pure pieces ([`crate::prefer`], [`crate::mode`]) with the request itself:
//! the deprecated `mode` may sit in the query string or in a JSON body, so this is where a
//! body gets buffered (only on routes whose `mode` lives in the JSON body, and only for
//! bodies whose `Content-Type` says JSON — anything else streams untouched). It also
//! rewrites the request for forwarding: `mode` removed, `respond-async`/`wait` removed from
//! `Prefer` (other preferences stay exactly as sent).

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::uri::PathAndQuery;
use http::Request;

use crate::body::{self, Body};
use crate::config::{ModeSource, RouteConfig};
use crate::mode::{self, JsonMode, Resolution, WaitLimits};
use crate::prefer::{self, Preferences};
use crate::problem::Problem;

/// The resolved intent, plus the headers every answer on this route must carry.
#[derive(Debug)]
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
    let mut legacy: Option<String> = None;
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
                let limit = route.settings.max_body.bytes();
                let bytes = match body::collect(body, limit).await {
                    Ok(b) => b,
                    Err(body::CollectError::TooLarge(n)) => {
                        return Err((Problem::BodyTooLarge(n), HeaderMap::new()))
                    }
                    Err(body::CollectError::Idle(d)) => {
                        return Err((Problem::BodyTimeout(d), HeaderMap::new()))
                    }
                    Err(e) => {
                        return Err((Problem::BadRequestBody(e.to_string()), HeaderMap::new()))
                    }
                };
                match mode::legacy_from_json(&bytes, ptr) {
                    JsonMode::Found {
                        value,
                        body: rewritten,
                    } => {
                        legacy = Some(value);
                        parts
                            .headers
                            .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
                        body = Body::full(rewritten);
                    }
                    JsonMode::NotAString => {
                        mode::deprecation_headers(cfg, &mut extra);
                        return Err((Problem::InvalidMode("(not a string)".into()), extra));
                    }
                    JsonMode::NotJson | JsonMode::Absent => body = Body::full(bytes),
                }
            }
            ModeSource::Json(_) => {}
        }
    }
    let resolution = mode::resolve(&prefs, legacy.as_deref(), limits(route));
    if let Some(cfg) = route.mode.as_ref().filter(|_| legacy.is_some()) {
        mode::deprecation_headers(cfg, &mut extra);
    }
    let resolution = match resolution {
        Ok(r) => r,
        Err(mode::InvalidMode(v)) => return Err((Problem::InvalidMode(v), extra)),
    };
    prefer::strip(&mut parts.headers, &["respond-async", "wait"]);
    Ok((
        Intent {
            resolution,
            extra_headers: extra,
        },
        Request::from_parts(parts, body),
    ))
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
