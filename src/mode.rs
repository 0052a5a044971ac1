//! Execution mode: turns [`Preferences`] plus the deprecated `mode` parameter (or a
//! boolean opt-in field) into a [`Mode`] and the `Preference-Applied` value (behaviour §3);
//! extracts `mode` from a query string or a JSON body; adds the deprecation and `Vary`
//! response headers; checks a route's `async_requires` ([`rules`]). Pure: no I/O.
//!
//! Decisions the contract leaves to the implementation:
//!
//! - **Prefer wins, but `mode` still counts as used.** When `Prefer` carries an execution
//!   preference (`respond-async`, or a `wait` at or above the floor), `mode` is not
//!   interpreted, so an invalid value is *not* a `400`; yet a request that sent `mode` at
//!   all gets `Deprecation`, because it relies on a parameter that is going away.
//! - **`mode` values** are matched ASCII-case-insensitively after trimming whitespace;
//!   anything but `async`, `sync`, `auto` (the empty string included) is [`InvalidMode`].
//!   `sync` means `wait=60` capped by the route's maximum; the floor only applies to a
//!   client's own `wait`.
//! - **Boolean opt-ins** (`kind = "bool"`, e.g. `"async": true`, the seed's style) go
//!   through [`resolve_flag`]: `true` → ASYNC, `false` → DEFAULT, with the same precedence,
//!   stripping and deprecation as `mode`. The value is compared as sent, exactly: a query
//!   value must be `true` or `false` (case-sensitive, no trimming), a JSON value must be a
//!   JSON boolean — the caller passes its JSON text, so `"true"` (a string), `1` and
//!   `null` are [`InvalidFlag`]. Like an invalid `mode`, an invalid flag is only a `400`
//!   when it decides (no execution preference in `Prefer`): one rule for both kinds.
//! - **Query:** pair names are compared after percent-decoding (`m%6Fde=async` is `mode`),
//!   case-sensitively, as web frameworks do; the first occurrence gives the value, every
//!   occurrence is removed so the upstream never sees it. A query that loses nothing is
//!   returned unchanged.
//! - **JSON:** for `kind = "enum"` only a JSON string is a mode; `null`, numbers, objects
//!   are [`JsonMode::NotAString`] (the caller answers `400` whatever `Prefer` says), since
//!   a client that sends the field means something by it. The body is re-serialised
//!   compactly (key order kept) only when the field was found and removed.
//! - **`Deprecation`/`Sunset` replace** any value already present (RFC 9745/8594 define a
//!   single value; the configured date is the one the contract promises); `Link` is
//!   appended. A `Sunset` outside what an IMF-fixdate can express (before 1970, after 9999)
//!   is left out rather than rendered wrong.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, LINK, VARY};
use serde_json::Value;

use crate::config::{JsonPointer, ModeConfig};
use crate::prefer::{applied, Preferences};

pub mod rules;

#[cfg(test)]
mod tests;

/// `Deprecation` (RFC 9745).
pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");

/// `Sunset` (RFC 8594).
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// What legacy `mode=sync` waits, before the route's cap (the seed's migration advice:
/// `mode=sync` becomes `Prefer: wait=60`).
pub const LEGACY_SYNC_WAIT_SECS: u64 = 60;

/// How a request is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The route's synchronous default.
    Default,
    /// Answer `202` at once.
    Async,
    /// Wait up to this many whole seconds (already capped), then answer `202`.
    Wait(u64),
}

impl Mode {
    /// ASYNC or WAIT: the client accepts a `202` handle. These are the modes that allow a
    /// callback and that a route's `async_requires` rules apply to.
    pub fn is_asynchronous(self) -> bool {
        matches!(self, Mode::Async | Mode::Wait(_))
    }
}

/// The route's bounds on `wait=N` (defined with the config it is read from).
pub use crate::config::types::WaitLimits;

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// How to execute the request.
    pub mode: Mode,
    /// `Preference-Applied` to send when the preference is honoured; `None` when no
    /// `Prefer` preference decided the mode.
    pub applied: Option<HeaderValue>,
    /// The request carried the deprecated `mode` (the answer gets `Deprecation`).
    pub legacy_used: bool,
}

/// A deprecated `mode` value that is none of `async`, `sync`, `auto`; the caller answers
/// `400`. Holds the value as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMode(pub String);

impl fmt::Display for InvalidMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid mode {:?}: expected async, sync or auto (deprecated: use the Prefer header)",
            self.0
        )
    }
}

impl std::error::Error for InvalidMode {}

/// A boolean opt-in (`kind = "bool"`) that is neither `true` nor `false`; the caller
/// answers `400`. Holds the value as sent (for a JSON field, its JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFlag(pub String);

impl fmt::Display for InvalidFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid flag {}: expected a boolean (true or false)",
            self.0
        )
    }
}

impl std::error::Error for InvalidFlag {}

/// The execution mode from `Prefer` and the deprecated `mode` value (behaviour §3).
///
/// # Errors
///
/// [`InvalidMode`] when `legacy` decides the mode (no execution preference in `Prefer`)
/// and is none of `async`, `sync`, `auto`.
pub fn resolve(
    prefs: &Preferences,
    legacy: Option<&str>,
    limits: WaitLimits,
) -> Result<Resolution, InvalidMode> {
    let legacy_used = legacy.is_some();
    if let Some(decided) = from_prefer(prefs, limits, legacy_used) {
        return Ok(decided);
    }
    let mode = match legacy {
        None => Mode::Default,
        Some(value) => legacy_mode(value, limits)?,
    };
    Ok(Resolution {
        mode,
        applied: None,
        legacy_used,
    })
}

/// The execution mode from `Prefer` and a boolean opt-in field (`kind = "bool"`): the same
/// precedence as [`resolve`], with `true` → ASYNC and `false` → DEFAULT. `flag` is the
/// value as sent: a query value, or the JSON text of a body field's value.
///
/// # Errors
///
/// [`InvalidFlag`] when `flag` decides the mode and is not exactly `true` or `false`.
pub fn resolve_flag(
    prefs: &Preferences,
    flag: Option<&str>,
    limits: WaitLimits,
) -> Result<Resolution, InvalidFlag> {
    let legacy_used = flag.is_some();
    if let Some(decided) = from_prefer(prefs, limits, legacy_used) {
        return Ok(decided);
    }
    let mode = match flag {
        None | Some("false") => Mode::Default,
        Some("true") => Mode::Async,
        Some(other) => return Err(InvalidFlag(other.to_owned())),
    };
    Ok(Resolution {
        mode,
        applied: None,
        legacy_used,
    })
}

/// The mode `Prefer` decides on its own, if it carries an execution preference: a `wait`
/// at or above the floor (capped), else `respond-async`.
fn from_prefer(prefs: &Preferences, limits: WaitLimits, legacy_used: bool) -> Option<Resolution> {
    if let Some(n) = prefs.wait().filter(|&n| n >= limits.min_secs) {
        let effective = n.min(limits.max_secs);
        return Some(Resolution {
            mode: Mode::Wait(effective),
            applied: Some(applied(true, Some(effective))),
            legacy_used,
        });
    }
    prefs.respond_async().then(|| Resolution {
        mode: Mode::Async,
        applied: Some(applied(true, None)),
        legacy_used,
    })
}

fn legacy_mode(value: &str, limits: WaitLimits) -> Result<Mode, InvalidMode> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("async") {
        Ok(Mode::Async)
    } else if v.eq_ignore_ascii_case("sync") {
        Ok(Mode::Wait(LEGACY_SYNC_WAIT_SECS.min(limits.max_secs)))
    } else if v.eq_ignore_ascii_case("auto") {
        Ok(Mode::Default)
    } else {
        Err(InvalidMode(value.to_owned()))
    }
}

/// Finds the query parameter `name`: returns (the percent-decoded value of its first
/// occurrence, the query without any `name` pair — `None` when nothing is left). Other
/// pairs keep their raw bytes and order.
pub fn legacy_from_query(query: Option<&str>, name: &str) -> (Option<String>, Option<String>) {
    let Some(query) = query else {
        return (None, None);
    };
    let mut value = None;
    let mut removed = false;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // One pair without `&` decodes to exactly one (name, value).
        let decoded = url::form_urlencoded::parse(pair.as_bytes()).next();
        match decoded {
            Some((n, v)) if n == name => {
                removed = true;
                if value.is_none() {
                    value = Some(v.into_owned());
                }
            }
            _ => kept.push(pair),
        }
    }
    let rest = if removed {
        Some(kept.join("&"))
    } else {
        Some(query.to_owned())
    };
    (value, rest.filter(|q| !q.is_empty()))
}

/// What [`legacy_from_json`] found in a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonMode {
    /// The body is not JSON (or is empty): nothing to look for.
    NotJson,
    /// JSON without the field; forward the body unchanged.
    Absent,
    /// The field held a string.
    Found {
        /// The string, as sent.
        value: String,
        /// The body re-serialised compactly without the field.
        body: Bytes,
    },
    /// The field is present but not a JSON string (the caller answers `400`).
    NotAString,
}

/// Looks for the deprecated `mode` at `pointer` in a JSON body, removing it when found.
pub fn legacy_from_json(body: &[u8], pointer: &JsonPointer) -> JsonMode {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return JsonMode::NotJson;
    };
    let value = match pointer.get(&doc) {
        None => return JsonMode::Absent,
        Some(Value::String(s)) => s.clone(),
        Some(_) => return JsonMode::NotAString,
    };
    let body = without_field(doc, pointer, body);
    JsonMode::Found { value, body }
}

/// `doc` (parsed from `original`) without the field at `pointer`, serialised compactly
/// with its key order kept: the body to forward once the gateway has taken its field.
pub fn without_field(mut doc: Value, pointer: &JsonPointer, original: &[u8]) -> Bytes {
    pointer.remove(&mut doc);
    match serde_json::to_vec(&doc) {
        Ok(bytes) => Bytes::from(bytes),
        // Serialising a `Value` cannot fail; should it, the original body (still holding
        // the field) is the harmless fallback: the upstream accepted it before.
        Err(_) => Bytes::copy_from_slice(original),
    }
}

/// Adds `Deprecation` (RFC 9745: `@<unix seconds>`, `@0` when no date is configured,
/// meaning "deprecated, date not given"), and `Sunset` (RFC 8594) and
/// `Link: <url>; rel="deprecation"; type="text/html"` when configured.
pub fn deprecation_headers(cfg: &ModeConfig, headers: &mut HeaderMap) {
    let deprecation = cfg.deprecation.map_or_else(|| "@0".to_owned(), sf_date);
    if let Ok(v) = HeaderValue::try_from(deprecation) {
        headers.insert(DEPRECATION, v);
    }
    if let Some(v) = cfg.sunset.and_then(imf_fixdate) {
        headers.insert(SUNSET, v);
    }
    if let Some(url) = &cfg.link {
        let link = format!("<{url}>; rel=\"deprecation\"; type=\"text/html\"");
        // A serialised URL is percent-encoded ASCII without `>`; a failure skips the link.
        if let Ok(v) = HeaderValue::try_from(link) {
            headers.append(LINK, v);
        }
    }
}

/// RFC 9651 sf-date: `@` and an integer of at most 15 digits; pre-1970 dates are negative.
fn sf_date(t: SystemTime) -> String {
    const MAX: u64 = 999_999_999_999_999;
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("@{}", d.as_secs().min(MAX)),
        Err(e) => {
            let d = e.duration();
            // Round towards the past, like a floor on the negative timestamp.
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            format!("@-{}", secs.min(MAX))
        }
    }
}

/// IMF-fixdate, or `None` outside 1970..=9999 where `httpdate` would panic.
fn imf_fixdate(t: SystemTime) -> Option<HeaderValue> {
    const YEAR_10000: u64 = 253_402_300_800;
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    if secs >= YEAR_10000 {
        return None;
    }
    HeaderValue::try_from(httpdate::fmt_http_date(t)).ok()
}

/// Merges `Prefer` into `Vary`: none → `Prefer`; tokens without it → one line
/// `<existing>, Prefer`; already `Prefer` (any case) or `*` → unchanged.
pub fn add_vary_prefer(headers: &mut HeaderMap) {
    // One lookup. The usual answer has no `Vary` of its own: a static value, no copy.
    let mut lines = match headers.entry(VARY) {
        http::header::Entry::Vacant(slot) => {
            slot.insert(HeaderValue::from_static("Prefer"));
            return;
        }
        http::header::Entry::Occupied(lines) => lines,
    };
    let mut existing: Vec<&[u8]> = Vec::new();
    for line in lines.iter() {
        for token in line.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token == b"*" || token.eq_ignore_ascii_case(b"prefer") {
                return;
            }
        }
        let line = line.as_bytes().trim_ascii();
        if !line.is_empty() {
            existing.push(line);
        }
    }
    let mut merged = existing.join(&b", "[..]);
    if !merged.is_empty() {
        merged.extend_from_slice(b", ");
    }
    merged.extend_from_slice(b"Prefer");
    // Sub-slices of valid values plus ASCII are valid; a failure leaves `Vary` as it was.
    if let Ok(v) = HeaderValue::from_bytes(&merged) {
        lines.insert(v);
    }
}
