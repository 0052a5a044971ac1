//! `routes[].retry`: which transient failures of a gateway job's upstream call are tried
//! again, how often, and how long apart.
//!
//! `retry = { attempts = 3, backoff = "1s", max_backoff = "30s", on = ["connect"] }` —
//! every key optional, the defaults shown. `attempts` counts upstream attempts in all (the
//! first one included), so `attempts = 1` turns retries off. `on` names the failures that
//! are retried:
//!
//! - `"connect"`: no connection could be made (refused, unreachable, DNS): the request never
//!   reached the upstream, so sending it again is always safe — the only default;
//! - `"timeout"`: the upstream did not answer (its head, or its whole body) within the
//!   route's `upstream_timeout`;
//! - `"429"`, `"502"`, `"503"`, `"504"`: the upstream answered with that status.
//!
//! The last three may re-send a request the upstream already saw. That is allowed for any
//! method because every attempt carries the same `Idempotency-Key` (the job id): an
//! upstream that honours it does the work once. Other statuses are not retryable: they are
//! the upstream's answer, not a transient failure of the way to it.

use std::time::Duration;

/// One failure kind `retry.on` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// No connection could be made.
    Connect,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream answered this status (429, 502, 503 or 504).
    Status(u16),
}

impl RetryOn {
    /// Every spelling `on` accepts, for error messages and docs.
    pub const NAMES: &'static str = "\"connect\", \"timeout\", \"429\", \"502\", \"503\", \"504\"";

    /// Parses one entry of `on`.
    pub fn parse(s: &str) -> Result<RetryOn, String> {
        Ok(match s {
            "connect" => RetryOn::Connect,
            "timeout" => RetryOn::Timeout,
            "429" | "502" | "503" | "504" => RetryOn::Status(s.parse().unwrap_or_default()),
            other => {
                return Err(format!(
                    "unknown retry condition {other:?}; expected one of {}",
                    RetryOn::NAMES
                ))
            }
        })
    }
}

/// A route's retry policy for its gateway jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Upstream attempts in all, the first included (≥ 1).
    pub attempts: u32,
    /// The base of the exponential backoff: attempt n + 1 waits up to `backoff · 2^(n-1)`.
    pub backoff: Duration,
    /// The cap of that bound (≥ `backoff`); also the longest `Retry-After` followed.
    pub max_backoff: Duration,
    /// What is retried.
    pub on: Vec<RetryOn>,
}

impl Default for RetryConfig {
    /// Three attempts, 1 s doubling up to 30 s, a refused connection only.
    fn default() -> Self {
        RetryConfig {
            attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            on: vec![RetryOn::Connect],
        }
    }
}

impl RetryConfig {
    /// Whether `what` is retried on this route.
    pub fn covers(&self, what: RetryOn) -> bool {
        self.on.contains(&what)
    }

    /// The bound of the full-jitter wait after `done` attempts (≥ 1):
    /// `min(max_backoff, backoff · 2^(done-1))`, saturating.
    pub fn bound(&self, done: u32) -> Duration {
        let factor = 2u32.checked_pow(done.saturating_sub(1)).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_doubles_then_caps() {
        let r = RetryConfig::default();
        assert_eq!(r.bound(1), Duration::from_secs(1));
        assert_eq!(r.bound(2), Duration::from_secs(2));
        assert_eq!(r.bound(5), Duration::from_secs(16));
        assert_eq!(r.bound(6), Duration::from_secs(30));
        assert_eq!(r.bound(200), Duration::from_secs(30));
    }

    #[test]
    fn parse_known_and_unknown() {
        assert_eq!(RetryOn::parse("503"), Ok(RetryOn::Status(503)));
        assert_eq!(RetryOn::parse("connect"), Ok(RetryOn::Connect));
        assert!(RetryOn::parse("500").unwrap_err().contains("\"504\""));
        assert!(RetryOn::parse("Connect").is_err());
    }
}
