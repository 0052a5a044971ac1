//! Fuzzes the `Cancel-After` parser (`store::deadline::{parse_cancel_after,
//! cancel_after_of}`) and the deadline arithmetic it feeds (`after`, `queue_deadline`'s
//! saturating sum).
//!
//! Input: the first 8 bytes are "now" in milliseconds (any `i64`, also negative or near
//! `i64::MAX`); the rest, split at the first `\n`, is one or two header values (lossy UTF-8
//! for the parser; the raw bytes for the header form, when `http` accepts them).
//!
//! Invariants checked (src/store/deadline.rs module docs; issue 17 "`Cancel-After` (a
//! duration: `30s`, `5m`, or bare seconds)"):
//!
//! - never panics, on any bytes and any "now";
//! - an accepted value is greater than zero and at most `MAX_CANCEL_AFTER` (a week): it is
//!   never silently clamped;
//! - bare digits (surrounding whitespace trimmed) are whole seconds: accepted exactly when
//!   they are 1..=604800, giving that many seconds;
//! - anything else is accepted exactly when `humantime` parses it to a duration in range,
//!   giving the same duration (the parser adds no forms of its own);
//! - an accepted duration, written back by `humantime::format_duration`, parses to itself;
//! - the header form: absent is `Ok(None)`, two lines are refused, one line agrees with
//!   the parser on its text (bytes that are not visible ASCII are refused);
//! - `after(now, d)` is `now + d` in milliseconds, saturated at `i64::MAX`, never below `now`.
#![no_main]

use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use prefer_gateway::store::deadline::{
    after, cancel_after_of, parse_cancel_after, CANCEL_AFTER, MAX_CANCEL_AFTER,
};

fn model(v: &str) -> Option<Duration> {
    let t = v.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(t.parse::<u64>().ok()?)
    } else {
        humantime::parse_duration(t).ok()?
    };
    (!d.is_zero() && d <= MAX_CANCEL_AFTER).then_some(d)
}

fn check_text(text: &str) {
    let got = parse_cancel_after(text);
    assert_eq!(got.clone().ok(), model(text), "{text:?}");
    if let Ok(d) = got {
        assert!(!d.is_zero() && d <= MAX_CANCEL_AFTER);
        let written = humantime::format_duration(d).to_string();
        assert_eq!(parse_cancel_after(&written), Ok(d), "{written:?}");
    } else if let Err(msg) = got {
        assert!(!msg.is_empty());
    }
}

fn check_after(now: i64, d: Duration) {
    let at = after(now, d);
    let want = i128::from(now) + i128::try_from(d.as_millis()).unwrap_or(i128::MAX);
    let want = i64::try_from(want.min(i128::from(i64::MAX))).unwrap_or(i64::MAX);
    assert_eq!(at, want);
    assert!(at >= now);
}

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(8));
    let mut now_b = [0u8; 8];
    now_b[..head.len()].copy_from_slice(head);
    let now = i64::from_le_bytes(now_b);

    let text = String::from_utf8_lossy(rest);
    check_text(&text);
    if let Ok(d) = parse_cancel_after(&text) {
        check_after(now, d);
    }
    check_after(now, MAX_CANCEL_AFTER);

    // The header form: one line, or two split at the first '\n'.
    let mut headers = HeaderMap::new();
    assert_eq!(cancel_after_of(&headers), Ok(None));
    let (first, second) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let Ok(v1) = HeaderValue::from_bytes(first) else { return };
    headers.append(CANCEL_AFTER, v1.clone());
    let one = cancel_after_of(&headers);
    match v1.to_str() {
        Ok(t) => assert_eq!(one, parse_cancel_after(t).map(Some), "{t:?}"),
        Err(_) => assert!(one.is_err()),
    }
    if let Some(Ok(v2)) = second.map(HeaderValue::from_bytes) {
        headers.append(CANCEL_AFTER, v2);
        assert!(cancel_after_of(&headers).is_err());
    }
});
