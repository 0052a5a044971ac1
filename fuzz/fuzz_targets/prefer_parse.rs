//! Fuzzes the RFC 7240 `Prefer` parser (`prefer::Preferences::parse` / `from_headers`) and
//! `prefer::strip` with arbitrary bytes: the whole input as one header line, and the input
//! split at `\n` as several lines.
//!
//! Invariants checked (src/prefer.rs module docs and item docs):
//!
//! - never panics, on any bytes;
//! - every preference and parameter name is a non-empty, ASCII-lowercased RFC 9110 token;
//!   a value is never `Some("")` ("empty values are absent");
//! - names are unique ("first valid occurrence wins"); `get` is case-insensitive;
//! - `wait()` is `Some(n)` exactly when the first `wait` has a `1*DIGIT` value, and `n` is
//!   that number saturated at `u64::MAX`; `respond_async()` exactly when `respond-async`
//!   is present without a value; `is_empty()` agrees with `iter()`;
//! - later lines only add preferences: parsing a prefix of the lines gives a prefix of
//!   the result;
//! - a line is split at commas outside quoted strings: when line `a` ends outside a quoted
//!   string, `[a, b]` parses like the single line `a,b`;
//! - `from_headers` over the lines that are valid header values equals `parse` of them;
//! - `strip(["respond-async", "wait"])` removes exactly those preferences and keeps every
//!   other one as parsed before; a second `strip` changes nothing;
//! - `applied(true, Some(n))` renders `respond-async, wait=n`.
#![no_main]

use http::header::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use prefer_gateway::prefer::{self, Preference, Preferences, PREFER};

/// The gateway owns these on task and sync routes (`intent::read` strips them).
const OWNED: [&str; 2] = ["respond-async", "wait"];

/// RFC 9110 §5.6.2 `tchar`, written out independently of the parser's table.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_lower_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| is_tchar(b) && !b.is_ascii_uppercase())
}

/// `1*DIGIT` saturating at `u64::MAX`, as documented for `Preferences::wait`.
fn expected_wait(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = value.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    // All digits, so the only parse failure left is overflow.
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

fn check(prefs: &Preferences) {
    let all: Vec<&Preference> = prefs.iter().collect();
    assert_eq!(prefs.is_empty(), all.is_empty());
    for (i, p) in all.iter().enumerate() {
        assert!(is_lower_token(&p.name), "bad preference name {:?}", p.name);
        assert_ne!(
            p.value.as_deref(),
            Some(""),
            "empty value kept for {:?}",
            p.name
        );
        for param in &p.params {
            assert!(
                is_lower_token(&param.name),
                "bad param name {:?}",
                param.name
            );
            assert_ne!(param.value.as_deref(), Some(""), "empty param value kept");
            assert!(p.param(&param.name.to_ascii_uppercase()).is_some());
        }
        assert!(
            all[..i].iter().all(|q| q.name != p.name),
            "duplicate preference {:?}",
            p.name
        );
        assert_eq!(prefs.get(&p.name), Some(*p));
        assert_eq!(prefs.get(&p.name.to_ascii_uppercase()), Some(*p));
    }
    let wait = prefs.get("wait");
    assert_eq!(
        prefs.wait(),
        wait.and_then(|p| p.value.as_deref())
            .and_then(expected_wait)
    );
    let ra = prefs.get("respond-async");
    assert_eq!(prefs.respond_async(), ra.is_some_and(|p| p.value.is_none()));
    if let Some(n) = prefs.wait() {
        let v = prefer::applied(true, Some(n));
        assert_eq!(v.as_bytes(), format!("respond-async, wait={n}").as_bytes());
    }
}

/// Whether `line` ends outside a quoted string, per the splitter rule in the module docs:
/// any `"` toggles quoting, and inside quotes a backslash escapes the next byte.
fn ends_unquoted(line: &[u8]) -> bool {
    let mut quoted = false;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => quoted = !quoted,
            b'\\' if quoted => i += 1,
            _ => {}
        }
        i += 1;
    }
    !quoted
}

fn owned_removed(prefs: &Preferences) -> Vec<Preference> {
    prefs
        .iter()
        .filter(|p| !OWNED.contains(&p.name.as_str()))
        .cloned()
        .collect()
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one header line.
    check(&Preferences::parse([data]));

    // The input as several lines.
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let prefs = Preferences::parse(lines.iter().copied());
    check(&prefs);

    // A prefix of the lines parses to a prefix of the preferences.
    if lines.len() > 1 {
        let head = Preferences::parse(lines[..lines.len() - 1].iter().copied());
        let head: Vec<&Preference> = head.iter().collect();
        let full: Vec<&Preference> = prefs.iter().collect();
        assert!(full.len() >= head.len());
        assert_eq!(&full[..head.len()], &head[..]);
    }

    // Two lines equal one line joined by a comma when the first ends unquoted.
    if lines.len() >= 2 && ends_unquoted(lines[0]) {
        let mut joined = lines[0].to_vec();
        joined.push(b',');
        joined.extend_from_slice(lines[1]);
        assert_eq!(
            Preferences::parse([lines[0], lines[1]]),
            Preferences::parse([&joined[..]]),
            "splitting a line at a top-level comma changed the result"
        );
    }

    // The same lines as real header values, as a request carries them.
    let valid: Vec<HeaderValue> = lines
        .iter()
        .filter_map(|l| HeaderValue::from_bytes(l).ok())
        .collect();
    let mut headers = HeaderMap::new();
    for v in &valid {
        headers.append(PREFER, v.clone());
    }
    let before = Preferences::from_headers(&headers);
    assert_eq!(
        before,
        Preferences::parse(valid.iter().map(|v| v.as_bytes()))
    );

    let mut stripped = headers.clone();
    prefer::strip(&mut stripped, &OWNED);
    let after = Preferences::from_headers(&stripped);
    check(&after);
    assert!(after.get("wait").is_none() && after.get("respond-async").is_none());
    assert_eq!(
        after.iter().cloned().collect::<Vec<_>>(),
        owned_removed(&before),
        "strip changed a preference it does not own"
    );
    let mut again = stripped.clone();
    prefer::strip(&mut again, &OWNED);
    assert_eq!(again, stripped, "strip is not idempotent");
});
