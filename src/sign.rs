//! Webhook signatures: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`) and the GitHub-style `X-Signature`, and per-tenant secrets.
//! Pure: the caller supplies the id, the time and the body.
//!
//! Two signatures go on every delivery so a receiver can verify with whatever it already
//! has: a Standard Webhooks library, or the few lines of HMAC code most webhook
//! consumers (GitHub, Stripe-style) already run. Both use the same key bytes.
//!
//! Decisions:
//!
//! - **Secrets** are `whsec_` + standard base64 of the key (the Standard Webhooks form),
//!   or, without that prefix, plain text whose UTF-8 bytes are the key — so an operator
//!   can configure a GitHub-style passphrase and receivers can use it as-is. Unlike the
//!   Standard Webhooks libraries, a secret *without* the prefix is not base64-decoded:
//!   the prefix is what says "base64". [`Secret::render`] always gives the `whsec_` form,
//!   which every Standard Webhooks library accepts.
//! - **Per-tenant secrets are derived, not stored**: the key for tenant `t` is
//!   `HMAC-SHA256(master, "prefer-gateway/tenant-secret/v1:" + t)` (32 bytes). HMAC is a
//!   PRF, so a tenant's key reveals nothing about the master or about another tenant's
//!   key; the `v1` label leaves room to change the derivation. The empty tenant (a
//!   single-tenant gateway) signs with the master itself, so a single-tenant operator's
//!   receivers use the secret they configured.
//! - **The body is signed as bytes**, not as text: `id.timestamp.` followed by the raw
//!   body, exactly what a receiver reads off the wire.
//! - **The key never appears in `Debug`** output, so a stray `{:?}` cannot log it.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

#[cfg(test)]
mod tests;

/// The prefix of a base64-encoded secret (Standard Webhooks).
const PREFIX: &str = "whsec_";

/// The label that separates tenant-key derivation from any other use of the master key.
const TENANT_LABEL: &str = "prefer-gateway/tenant-secret/v1:";

/// A signing key: the decoded key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Reads a secret: `whsec_` + standard base64, or plain text (its UTF-8 bytes).
    /// An empty key is refused: anyone could forge its signatures.
    pub fn parse(s: &str) -> Result<Secret, String> {
        let key = match s.strip_prefix(PREFIX) {
            Some(b64) => BASE64
                .decode(b64)
                .map_err(|e| format!("a `{PREFIX}` secret must be standard base64: {e}"))?,
            None => s.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err("the signing secret is empty".to_string());
        }
        Ok(Secret(key))
    }

    /// The secret in its `whsec_` + base64 form, as handed to a tenant.
    pub fn render(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.0))
    }

    /// The key bytes (what a receiver's HMAC is keyed with).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A secret made of these key bytes (a derived key; see `jobs::signed_url`).
    pub(crate) fn from_key(key: Vec<u8>) -> Secret {
        Secret(key)
    }

    /// An HMAC-SHA256 instance keyed with this secret.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        // RFC 2104 §2 key preparation: a key longer than the 64-byte block is hashed
        // first, a shorter one is zero-padded. The hmac crate does the same inside its
        // `new_from_slice`, which can therefore never fail but is typed as fallible;
        // handing it the prepared block through the infallible `new` keeps an
        // impossible error branch (and a panic) out of the signing path.
        let mut block = [0u8; 64];
        if self.0.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(&self.0));
        } else {
            block[..self.0.len()].copy_from_slice(&self.0);
        }
        <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
    }

    /// HMAC-SHA256 over the concatenation of `parts`.
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}

/// The secret tenant `tenant` verifies its callbacks with: the master itself for the
/// empty tenant, else `HMAC-SHA256(master, "prefer-gateway/tenant-secret/v1:" + tenant)`
/// as a 32-byte key. Deterministic, so nothing per tenant is stored.
pub fn tenant_secret(master: &Secret, tenant: &str) -> Secret {
    if tenant.is_empty() {
        return master.clone();
    }
    Secret(
        master
            .hmac(&[TENANT_LABEL.as_bytes(), tenant.as_bytes()])
            .to_vec(),
    )
}

/// The Standard Webhooks `webhook-signature` value:
/// `v1,` + base64(HMAC-SHA256(key, `{msg_id}.{timestamp}.{body}`)).
pub fn standard_webhooks_signature(
    secret: &Secret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let prefix = format!("{msg_id}.{timestamp}.");
    let mac = secret.hmac(&[prefix.as_bytes(), body]);
    format!("v1,{}", BASE64.encode(mac))
}

/// The `X-Signature` value: `sha256=` + hex(HMAC-SHA256(key, body)), the scheme of
/// GitHub's `X-Hub-Signature-256`.
pub fn x_signature(secret: &Secret, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(secret.hmac(&[body])))
}

/// Every signing header of one delivery attempt: `webhook-id`, `webhook-timestamp`,
/// `webhook-signature` and `X-Signature`, names in lower case (as HTTP/2 sends them, and
/// as `http::HeaderName::from_static` requires). `msg_id` must stay the same across attempts of one delivery; `timestamp` is the
/// attempt's Unix time in seconds.
pub fn headers(
    secret: &Secret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", msg_id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            standard_webhooks_signature(secret, msg_id, timestamp, body),
        ),
        ("x-signature", x_signature(secret, body)),
    ]
}
