//! One structured log line per answered request (target `prefer_gateway::access`, level
//! info), in the format `--log-format` chose (text or JSON).
//!
//! Fields: `request_id`, `method`, `path`, `route`, `status`, `preference` (what
//! `Preference-Applied` said: `respond-async`, `wait` or `none`), `wait_s` (the applied
//! `wait=N`, else absent), `upstream_ms` (the last upstream call's time to its response
//! head, when there was one), `elapsed_ms`, `tenant`.
//!
//! Nothing secret is written: the path goes without its query string (API keys and
//! signatures travel there), `Authorization`/`Cookie` are never read, and the tenant's API
//! key appears only as `sha256:` + the first 12 hex digits of its SHA-256 — enough to tell
//! tenants apart in logs, useless to replay. Callback URLs are not part of this line.
//!
//! Turning it off is a filter, like every other log: `RUST_LOG=info,prefer_gateway::access=off`
//! (what the load benchmarks do, as nginx's `access_log off`). When the target is disabled
//! the line costs one cached filter check.

use std::time::Duration;

use http::{HeaderValue, Method};
use sha2::{Digest, Sha256};

/// What one request did.
pub struct Entry<'a> {
    /// `X-Request-Id` as answered.
    pub request_id: &'a HeaderValue,
    /// Request method.
    pub method: &'a Method,
    /// Request path (no query).
    pub path: &'a str,
    /// Route name (or `-`).
    pub route: &'a str,
    /// Response status.
    pub status: u16,
    /// `respond-async`, `wait`, `none`.
    pub preference: &'static str,
    /// The response's `Preference-Applied`, for `wait=N`.
    pub applied: Option<&'a HeaderValue>,
    /// Upstream time to response head.
    pub upstream: Option<Duration>,
    /// Arrival to response head.
    pub elapsed: Duration,
    /// The tenant (under [`crate::tenant`]'s rule), hashed before logging.
    pub tenant: Option<&'a [u8]>,
}

/// Whether access lines are wanted at all (so callers skip gathering fields otherwise).
pub fn enabled() -> bool {
    tracing::enabled!(target: "prefer_gateway::access", tracing::Level::INFO)
}

/// Writes the line.
pub fn write(e: &Entry<'_>) {
    let request_id = String::from_utf8_lossy(e.request_id.as_bytes());
    let tenant = e.tenant.map(hash_key);
    tracing::info!(
        target: "prefer_gateway::access",
        request_id = %request_id,
        method = %e.method,
        path = e.path,
        route = e.route,
        status = e.status,
        preference = e.preference,
        wait_s = applied_wait(e.applied),
        upstream_ms = e.upstream.map(|d| d.as_secs_f64() * 1000.0),
        elapsed_ms = e.elapsed.as_secs_f64() * 1000.0,
        tenant = tenant.as_deref(),
        "request"
    );
}

/// `sha256:` + the first 12 hex digits of the key's SHA-256.
pub fn hash_key(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!("sha256:{}", &hex::encode(digest)[..12])
}

/// `N` of a `wait=N` in `Preference-Applied`.
fn applied_wait(applied: Option<&HeaderValue>) -> Option<u64> {
    let text = applied?.to_str().ok()?;
    text.split(',')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("wait"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_to_a_short_stable_prefix() {
        let h = hash_key(b"sk_live_abcdef");
        assert!(h.starts_with("sha256:"));
        assert_eq!(h.len(), "sha256:".len() + 12);
        assert_eq!(h, hash_key(b"sk_live_abcdef"));
        assert_ne!(h, hash_key(b"sk_live_abcdeg"));
        assert!(!h.contains("sk_live"));
    }

    #[test]
    fn the_applied_wait_is_read_from_preference_applied() {
        let v = HeaderValue::from_static("wait=30");
        assert_eq!(applied_wait(Some(&v)), Some(30));
        let v = HeaderValue::from_static("respond-async");
        assert_eq!(applied_wait(Some(&v)), None);
        let v = HeaderValue::from_static("respond-async, Wait = 5");
        assert_eq!(applied_wait(Some(&v)), Some(5));
        assert_eq!(applied_wait(None), None);
    }
}
