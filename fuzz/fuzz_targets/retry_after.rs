//! Fuzzes `Retry-After` parsing and the retry schedule it feeds
//! (`webhook::schedule::{parse_retry_after, next_delay, retry_at}`), used by the callback
//! deliverer and the admission-notice worker.
//!
//! Input: the first 8 bytes are "now" (seconds since the epoch, taken modulo 7 000 years,
//! so that "now" plus a `u32` of seconds is still a date `httpdate` can write), the next 8 the jitter unit, the rest the header value (lossy UTF-8).
//!
//! Invariants checked (src/webhook/schedule.rs docs; behaviour.md "honouring a longer
//! `Retry-After`"):
//!
//! - never panics, on any value and any "now";
//! - delta-seconds (surrounding whitespace trimmed, `u64` digits — `+` allowed as Rust
//!   parses it) give exactly that many seconds; an HTTP date gives the time from `now` to
//!   it, or zero once it has passed; anything else is `None`;
//! - the result is bounded: an HTTP date is never further than year 9999, so never more
//!   than ~10 000 years away; a delta is at most `u64::MAX` seconds;
//! - an HTTP date rendered by `httpdate` parses back to the same offset;
//! - `next_delay` with that `Retry-After` is the larger of it and the jittered schedule
//!   entry (within ±10 %), `None` once the schedule is used up;
//! - `retry_at(now_ms, delay)` (the next attempt's time) never overflows: it is
//!   `now_ms + delay` in milliseconds, saturated at `i64::MAX`, and never before `now_ms`
//!   (for any `now_ms >= 0`: the wall clock after 1970).
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use prefer_gateway::webhook::schedule::{next_delay, parse_retry_after, retry_at};

const TEN_THOUSAND_YEARS: u64 = 10_000 * 366 * 86_400;
const SEVEN_THOUSAND_YEARS: u64 = 7_000 * 365 * 86_400;

fn expected_secs(v: &str) -> Option<u64> {
    v.trim().parse::<u64>().ok()
}

fn check_retry_at(now_ms: i64, delay: Duration) {
    let at = retry_at(now_ms, delay);
    let want = i128::from(now_ms) + i128::try_from(delay.as_millis()).unwrap_or(i128::MAX);
    let want = i64::try_from(want.min(i128::from(i64::MAX))).unwrap_or(i64::MAX);
    assert_eq!(at, want, "retry_at({now_ms}, {delay:?})");
    assert!(at >= now_ms);
}

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(16));
    let mut now_b = [0u8; 8];
    let mut unit_b = [0u8; 8];
    let split = head.len().min(8);
    now_b[..split].copy_from_slice(&head[..split]);
    unit_b[..head.len() - split].copy_from_slice(&head[split..]);
    let now_secs = u64::from_le_bytes(now_b) % SEVEN_THOUSAND_YEARS;
    let now = UNIX_EPOCH + Duration::from_secs(now_secs);
    let unit = (u64::from_le_bytes(unit_b) >> 11) as f64 / (1u64 << 53) as f64;
    let value = String::from_utf8_lossy(rest);

    let got = parse_retry_after(&value, now);
    if let Some(secs) = expected_secs(&value) {
        assert_eq!(got, Some(Duration::from_secs(secs)), "{value:?}");
    } else if let Ok(at) = httpdate::parse_http_date(value.trim()) {
        let want = at.duration_since(now).unwrap_or(Duration::ZERO);
        assert_eq!(got, Some(want), "{value:?}");
        assert!(
            want.as_secs() <= TEN_THOUSAND_YEARS,
            "{value:?} is too far away"
        );
    } else {
        assert_eq!(got, None, "{value:?}");
    }

    // A date the gateway's own HTTP stack would write parses back to its offset.
    let offset = Duration::from_secs(u64::from(u32::from_le_bytes(
        unit_b[..4].try_into().unwrap_or_default(),
    )));
    let date = httpdate::fmt_http_date(now + offset);
    assert_eq!(parse_retry_after(&date, now), Some(offset), "{date:?}");

    let schedule: Vec<Duration> = [0, 120, 240, 480, 960].map(Duration::from_secs).to_vec();
    let done = u32::from(data.first().copied().unwrap_or(0) % 7);
    let delay = next_delay(&schedule, done, got, unit);
    match schedule.get(done as usize) {
        None => assert_eq!(delay, None),
        Some(base) => {
            let d = delay.unwrap_or_else(|| panic!("attempt {done} has a schedule entry"));
            let lo = base.mul_f64(0.9);
            let hi = base.mul_f64(1.1);
            match got {
                Some(ra) if ra > hi => assert_eq!(d, ra),
                Some(ra) => assert!(d >= lo && d >= ra && d <= hi, "{d:?} vs {base:?}/{ra:?}"),
                None => assert!(d >= lo && d <= hi, "{d:?} vs {base:?}"),
            }
            let now_ms = i64::try_from(now_secs * 1000).unwrap_or(i64::MAX);
            check_retry_at(now_ms, d);
        }
    }
    if let Some(ra) = got {
        check_retry_at(i64::try_from(now_secs * 1000).unwrap_or(i64::MAX), ra);
    }
    // `now` is the wall clock in Unix milliseconds, never before 1970.
    check_retry_at(
        i64::from_le_bytes(now_b) & i64::MAX,
        got.unwrap_or(Duration::from_millis(u64::from_le_bytes(unit_b))),
    );
});
