//! Request limits: the head limits every request is held to (`431` beyond them), and
//!
//! per-tenant request rate limiting (`server.tenant_rate`, `server.tenant_burst`): a token
//! bucket per tenant, `429` with `Retry-After` when it is empty.
//!
//! Decisions:
//! - **Who is a tenant**: the tenant under [`crate::tenant`]'s one rule when a tenant
//!   header is configured and the request carries a valid one; otherwise the client's IP
//!   address (so a gateway without tenants still stops one client from flooding it). The
//!   two kinds of key are namespaced (`t:`, `ip:`), so a key that reads like an address
//!   never shares that address's bucket. Every request counts, including the jobs
//!   API: polling a job is load too.
//! - **Bucket**: holds up to `burst` tokens, refills `per_second` tokens a second, one token
//!   per request. The caller passes the time, so the tests need no clock.
//! - **Bounded memory**: tenant keys come from clients, so at [`MAX_TENANTS`] buckets the
//!   full ones (idle long enough to have refilled — indistinguishable from new) are dropped;
//!   if every bucket is in use, the request is let through rather than refused (a table
//!   flood must not lock real tenants out; the per-connection limits still bound it).
//! - `Retry-After` is the whole seconds until one token is back (at least 1).

/// Most request header lines the gateway accepts (more → `431`).
pub const MAX_HEADERS: usize = 100;
/// Most request header bytes (names + values) the gateway accepts (more → `431`).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::TenantRate;

/// Most tenants tracked at once.
pub const MAX_TENANTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The rate limiter shared by every connection.
pub struct RateLimiter {
    rate: TenantRate,
    buckets: Mutex<HashMap<Box<[u8]>, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `rate`.
    pub fn new(rate: TenantRate) -> Self {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `tenant`; `Err(retry_after)` when there is none.
    pub fn check(&self, tenant: &[u8], now: Instant) -> Result<(), Duration> {
        let per_second = self.rate.per_second as f64;
        let burst = self.rate.burst as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(tenant) && buckets.len() >= MAX_TENANTS {
            buckets.retain(|_, b| refilled(b, now, per_second, burst) < burst);
            if buckets.len() >= MAX_TENANTS {
                return Ok(());
            }
        }
        let bucket = buckets.entry(tenant.into()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, now, per_second, burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second;
        Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
    }
}

fn refilled(b: &Bucket, now: Instant, per_second: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * per_second).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u64, burst: u64) -> RateLimiter {
        RateLimiter::new(TenantRate { per_second, burst })
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let l = limiter(2, 4);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(l.check(b"a", t0), Ok(()));
        }
        assert_eq!(l.check(b"a", t0), Err(Duration::from_secs(1)));
        // Half a second refills one token at 2/s.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check(b"a", t1), Ok(()));
        assert!(l.check(b"a", t1).is_err());
        // Long idle refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(l.check(b"a", t2), Ok(()));
        }
        assert!(l.check(b"a", t2).is_err());
    }

    #[test]
    fn tenants_have_their_own_buckets() {
        let l = limiter(1, 1);
        let t = Instant::now();
        assert_eq!(l.check(b"a", t), Ok(()));
        assert!(l.check(b"a", t).is_err());
        assert_eq!(l.check(b"b", t), Ok(()));
    }

    #[test]
    fn retry_after_is_whole_seconds_until_a_token() {
        let l = limiter(1, 1);
        let t = Instant::now();
        assert_eq!(l.check(b"a", t), Ok(()));
        assert_eq!(l.check(b"a", t), Err(Duration::from_secs(1)));
        let slow = limiter(1, 1);
        assert_eq!(slow.check(b"x", t), Ok(()));
        assert_eq!(
            slow.check(b"x", t + Duration::from_millis(100)),
            Err(Duration::from_secs(1))
        );
    }

    #[test]
    fn a_full_table_drops_idle_buckets_and_never_locks_out() {
        let l = limiter(1000, 1);
        let t = Instant::now();
        for i in 0..MAX_TENANTS {
            assert_eq!(l.check(format!("t{i}").as_bytes(), t), Ok(()));
        }
        // All buckets are empty (in use): a new tenant is let through, not refused.
        assert_eq!(l.check(b"new", t), Ok(()));
        // A moment later they have refilled (idle) and are dropped to make room.
        let later = t + Duration::from_secs(1);
        assert_eq!(l.check(b"new2", later), Ok(()));
        let len = l.buckets.lock().unwrap().len();
        assert!(len < 10, "{len}");
    }
}
