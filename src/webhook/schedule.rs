//! When a callback's next attempt is due.
//!
//! `retry_schedule` has one entry per attempt: entry 0 is the delay from the job's end to
//! the first attempt, entry k the delay from attempt k to attempt k + 1. Delays above zero
//! get ±10 % jitter so receivers that failed together are not retried in lockstep. A
//! receiver's `Retry-After` (seconds or an HTTP date) is honoured when it asks for longer.

use std::time::{Duration, SystemTime};

/// The delay before the next attempt after `attempts_done` attempts, or `None` when the
/// schedule is used up. `unit` in `[0, 1)` picks the jitter (0.5 = none).
pub fn next_delay(
    schedule: &[Duration],
    attempts_done: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(attempts_done).ok()?)?;
    let jittered = if base.is_zero() {
        base
    } else {
        base.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
    };
    Some(match retry_after {
        Some(ra) if ra > jittered => ra,
        _ => jittered,
    })
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When the next attempt is due: `now` (Unix milliseconds) plus `delay`, saturating.
/// `delay` may be a receiver's `Retry-After`, which can be any `u64` of seconds, so the
/// sum must not overflow: a wrapped sum would schedule the retry in the past, that is at
/// once, the opposite of what the receiver asked for (and panic in a debug build).
pub fn retry_at(now: i64, delay: Duration) -> i64 {
    now.saturating_add(crate::store::claims::millis(delay))
}

/// A uniform number in `[0, 1)` for jitter (from the OS random source, via UUIDv4).
pub fn jitter_unit() -> f64 {
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    (r >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Vec<Duration> {
        [0, 120, 240, 480, 960].map(Duration::from_secs).to_vec()
    }

    #[test]
    fn one_attempt_per_entry_then_done() {
        let s = schedule();
        assert_eq!(next_delay(&s, 0, None, 0.5), Some(Duration::ZERO));
        assert_eq!(next_delay(&s, 1, None, 0.5), Some(Duration::from_secs(120)));
        assert_eq!(next_delay(&s, 4, None, 0.5), Some(Duration::from_secs(960)));
        assert_eq!(next_delay(&s, 5, None, 0.5), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let s = schedule();
        assert_eq!(next_delay(&s, 1, None, 0.0), Some(Duration::from_secs(108)));
        let hi = next_delay(&s, 1, None, 0.999_999).unwrap();
        assert!(hi <= Duration::from_secs(132) && hi > Duration::from_secs(131));
        for _ in 0..1000 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn a_longer_retry_after_wins_a_shorter_one_does_not() {
        let s = schedule();
        let long = Some(Duration::from_secs(600));
        assert_eq!(next_delay(&s, 1, long, 0.5), long);
        assert_eq!(
            next_delay(&s, 1, Some(Duration::from_secs(5)), 0.5),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            next_delay(&s, 5, long, 0.5),
            None,
            "Retry-After never adds attempts"
        );
    }

    #[test]
    fn a_huge_retry_after_saturates_instead_of_wrapping() {
        // fuzz/regressions/retry_after/huge-delta-seconds: `Retry-After: 18446744073709551615`
        // made the callback deliverer compute `now + delay` with a plain `+`.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let delay = parse_retry_after("18446744073709551615", now).unwrap();
        assert_eq!(retry_at(1_700_000_000_000, delay), i64::MAX);
        assert_eq!(retry_at(5, Duration::from_millis(7)), 12);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after(" 30 ", now),
            Some(Duration::from_secs(30))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
