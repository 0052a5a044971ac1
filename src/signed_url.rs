//! Signed result URLs: `{jobs.path}/{id}/result?expires=<unix seconds>&sig=<signature>`,
//! a link to a finished job's stored result that works without the tenant header until the
//! job's retention ends. Pure: the caller supplies the key, the job id and the times; the
//! job API ([`crate::jobs::api`]) does the lookups and [`crate::store::document`] renders the link.
//!
//! Decisions:
//!
//! - **The key is derived, never the secret itself**: `K = HMAC-SHA256(secret,
//!   "prefer-gateway/result-urls/v1")`, where `secret` is `[jobs].signing_secret` read like
//!   the webhook secret (`whsec_` + base64, or plain text as its UTF-8 bytes). The fixed
//!   label separates this use from any other the same secret might have (an operator who
//!   reuses the webhook master gets a different key here, and a tenant's webhook secret,
//!   derived under another label, can never sign a link); `v1` leaves room to change the
//!   scheme. Every replica sharing a store shares the config, so a link made by one
//!   replica verifies on all of them.
//! - **What is signed**: the bytes `{id}.{expires}`. `expires` is canonical decimal (no
//!   sign, no leading zero), so the last `.` splits the message unambiguously whatever the
//!   id holds. The tenant is not signed: job ids are UUIDv7 and unique across tenants, and
//!   the link is the capability — whoever holds it may read that one result.
//! - **Encoding**: base64url without padding (RFC 4648 §5; 43 characters) — URL-safe, so
//!   the link needs no percent-encoding, and shorter than hex. Decoding is strict (no
//!   padding, no stray bits), so one signature has exactly one spelling.
//! - **Lifetime**: `expires` is the job's `expires_at` (the end of its retention) rounded
//!   *up* to whole seconds: the link lives exactly as long as the result, never a second
//!   less. A link is expired once `now ≥ expires`.
//! - **Verification is constant-time** (`hmac`'s `verify_slice`), and a malformed link
//!   (no or repeated `expires`, a non-canonical number, a signature that is not 32 bytes of
//!   strict base64url) is refused exactly like a wrong signature: the answer never says
//!   which part was wrong.
//! - **The key never appears in `Debug`**: only a 32-bit fingerprint of it (a SHA-256 of
//!   the derived key), so a reload can tell that the secret changed without logging it.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use hmac::Mac as _;
use sha2::{Digest as _, Sha256};

/// Milliseconds since the Unix epoch (the job model's `Millis`).
type Millis = i64;
use crate::sign::Secret;

#[cfg(test)]
mod tests;

/// The domain-separation label the URL key is derived under.
pub const LABEL: &str = "prefer-gateway/result-urls/v1";

/// The query parameter that carries the expiry (Unix seconds).
pub const EXPIRES: &str = "expires";

/// The query parameter that carries the signature; its presence makes a request a signed
/// one (it is then never authenticated by the tenant header instead).
pub const SIG: &str = "sig";

/// The key that signs and verifies result URLs (derived from `[jobs].signing_secret`).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlKey(Secret);

impl UrlKey {
    /// `HMAC-SHA256(secret, LABEL)` as the key.
    pub fn derive(secret: &Secret) -> UrlKey {
        UrlKey(Secret::from_key(secret.hmac(&[LABEL.as_bytes()]).to_vec()))
    }

    /// Reads `[jobs].signing_secret` (the webhook secret's rules, see
    /// [`Secret::parse`]) and derives the URL key from it.
    pub fn from_secret(s: &str) -> Result<UrlKey, String> {
        Secret::parse(s).map(|secret| UrlKey::derive(&secret))
    }

    /// The raw signature bytes over `{id}.{expires}`.
    fn mac(&self, id: &str, expires: u64) -> hmac::Hmac<Sha256> {
        let mut mac = self.0.mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

impl fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = Sha256::digest(self.0.as_bytes());
        let fingerprint = hex::encode(&digest[..4]);
        write!(f, "UrlKey(fingerprint {fingerprint}, redacted)")
    }
}

/// The `expires` of a link to a job whose retention ends at `expires_at`: Unix seconds,
/// rounded up so the link never dies before the result.
pub fn expires_secs(expires_at: Millis) -> u64 {
    u64::try_from(expires_at.max(0)).unwrap_or(0).div_ceil(1000)
}

/// The `sig` value for job `id` and `expires`: base64url (no padding) of
/// `HMAC-SHA256(key, "{id}.{expires}")`.
pub fn signature(key: &UrlKey, id: &str, expires: u64) -> String {
    BASE64URL.encode(key.mac(id, expires).finalize().into_bytes())
}

/// The relative download URL of job `id` under `prefix`, valid until `expires_at`.
pub fn download_url(prefix: &str, id: &str, expires_at: Millis, key: &UrlKey) -> String {
    let expires = expires_secs(expires_at);
    let sig = signature(key, id, expires);
    format!("{prefix}/{id}/result?{EXPIRES}={expires}&{SIG}={sig}")
}

/// Why a signed link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Malformed, altered, or not made with this gateway's key (→ `403 signature-invalid`).
    Invalid,
    /// Genuine, but past its `expires` (→ `403 signature-expired`).
    Expired,
}

/// The `expires` and `sig` of a signed request, well-formed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkParams {
    expires: u64,
    sig: Vec<u8>,
}

impl LinkParams {
    /// Reads the link parameters from a request's query. `None` when there is no `sig`
    /// parameter at all (an ordinary request, authenticated by the tenant header);
    /// `Some(Err(Invalid))` when there is one but the parameters are malformed. Other
    /// parameters are ignored. Values are percent-decoded first.
    pub fn from_query(query: Option<&str>) -> Option<Result<LinkParams, LinkError>> {
        let mut expires: Vec<String> = Vec::new();
        let mut sig: Vec<String> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query?.as_bytes()) {
            match name.as_ref() {
                EXPIRES => expires.push(value.into_owned()),
                SIG => sig.push(value.into_owned()),
                _ => {}
            }
        }
        if sig.is_empty() {
            return None;
        }
        Some(match (expires.as_slice(), sig.as_slice()) {
            ([expires], [sig]) => LinkParams::parse(expires, sig),
            _ => Err(LinkError::Invalid),
        })
    }

    fn parse(expires: &str, sig: &str) -> Result<LinkParams, LinkError> {
        let n: u64 = expires.parse().map_err(|_| LinkError::Invalid)?;
        // Canonical decimal only (`+5`, `05` parse too): one link, one spelling.
        if n.to_string() != expires {
            return Err(LinkError::Invalid);
        }
        let sig = BASE64URL.decode(sig).map_err(|_| LinkError::Invalid)?;
        if sig.len() != 32 {
            return Err(LinkError::Invalid);
        }
        Ok(LinkParams { expires: n, sig })
    }

    /// The link's expiry, Unix seconds.
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// Whether `sig` is the signature of job `id` and this `expires` under `key`
    /// (constant-time comparison).
    pub fn verify(&self, key: &UrlKey, id: &str) -> Result<(), LinkError> {
        key.mac(id, self.expires)
            .verify_slice(&self.sig)
            .map_err(|_| LinkError::Invalid)
    }

    /// `Expired` once `now` has reached `expires`.
    pub fn check_expiry(&self, now: Millis) -> Result<(), LinkError> {
        let until = i64::try_from(self.expires.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now >= until {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}
