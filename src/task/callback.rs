//! Callback-driven `task` routes: the upstream reports completion to a one-time URL.
//!
//! None of the hosted platforms the gateway follows offers this for *their* clients'
//! backends; it is how Replicate's and fal's own webhooks look from the receiving side,
//! turned around: the gateway is the receiver, and its clients keep `Prefer`.
//!
//! ```toml
//! [routes.task]
//! callback = { json = "/webhook_url" }   # or { header = "X-Callback-Url" }
//! fallback_poll_interval = "30s"         # default
//! ```
//!
//! **The submit.** Before it is forwarded, [`arm`] picks the operation's watch-job id
//! (UUIDv7) and a token of 32 bytes from the OS CSPRNG (two v4 UUIDs: 244 random bits),
//! and puts `{base}{jobs.path}/{id}/upstream-callback/{token}` into the submit: as the
//! header (any value the client sent under that name is replaced), or as the JSON body
//! member at the pointer — replaced if present, created (with any missing parent objects)
//! if absent. A body that is not JSON (by `Content-Type` or by parse), or whose pointer
//! leads through a non-object, is forwarded unchanged: the upstream then has no URL to
//! call and the operation is completed by the fallback poll — never worse than a polling
//! route, and no client error for what may be the route's own mismatch. `{base}` is
//! `server.public_url` (else the request's host): it must be an address the upstream
//! reaches.
//!
//! **The record.** When the upstream answers `202`, the operation becomes a *watch* job
//! ([`super::watch`]) under that id, whatever the client asked, holding the hex SHA-256
//! of the token (never the token) in its `fingerprint`. So every store (memory, SQLite,
//! Redis) holds it durably with no schema change, and any replica can check a `POST`:
//! it reads the job by id and compares hashes. The watch polls the status URL only every
//! `fallback_poll_interval` (instead of `poll_interval`): the slow fallback for an
//! upstream whose callback never comes. A non-202 submit leaves no record; its token
//! dies unused.
//!
//! **Waiting clients.** DEFAULT and WAIT(N) wait on the watch job (woken by its
//! completion, locally at once, from other replicas through the Redis finished feed, else
//! by a once-a-second re-read) instead of polling: a callback answers them with the same
//! `200` and status body a poll would have. The deadline gives the upstream's `202` (with
//! `Link: </jobs/{id}>; rel="monitor"`), as on a polling route. ASYNC gets the `202` with
//! those links too. A client's own callback (`routes[].callback`) rides on the same watch
//! and is delivered from the upstream's status document. If the store cannot take the
//! watch, the request falls back to polling in-process at `poll_interval` (and ASYNC gets
//! the bare 202), so nothing accepted is lost.
//!
//! **The delivery** ([`receive`]): `POST {jobs.path}/{id}/upstream-callback/{token}`, no
//! tenant header (the upstream is calling), body = the operation's status document (what
//! the status URL returns):
//!
//! | answer | when |
//! |---|---|
//! | `200` `{"completed":true,"state":"succeeded"}` | terminal state: the operation is completed now |
//! | `202` `{"completed":false,"state":"running"}` | not terminal: taken as a progress note, nothing changes, the URL stays valid |
//! | `400 task-callback-body` | no readable state at `task.state`; the operation stays open |
//! | `404 task-callback-unknown` | unknown id, not a callback-driven watch, or the token's hash differs |
//! | `405` (`Allow: POST`) | another method |
//! | `410 task-callback-used` | the operation already ended: a repeated delivery, or the fallback poll / a deadline / `DELETE` came first |
//! | `413 body-too-large` | the body exceeds the route's `max_body` (read only after the token checked out) |
//! | `503 store-unavailable` | the store is down; the upstream should retry |
//!
//! `410` rather than `409` for a repeat: the one-time URL is used up for good, and `410`
//! is what webhook senders (Standard Webhooks, Stripe, this gateway's own deliveries)
//! take as "stop retrying"; a `409` would invite retries of a delivery that can never
//! succeed. A `POST` that arrives before the watch is stored (an upstream that calls back
//! before its own `202` reached the gateway) is held: the id is a UUIDv7, so for an id
//! minted within the last [`EARLY_GRACE`] the store is re-read every 100 ms until then;
//! older unknown ids are `404` at once. Should even that miss, the fallback poll completes
//! the operation. (An upstream that waits for the answer to its callback before it sends
//! its own `202` cannot be served: the watch only exists after that `202`, so its
//! callback gets `404` after the grace and the fallback poll completes the operation.)
//!
//! The callback endpoint takes no tenant header — the token is the credential — so under
//! `server.tenant_rate` its calls are counted by the upstream's address.

pub mod receive;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::Request;
use sha2::{Digest, Sha256};

use crate::body::{self, Body};
use crate::config::{FieldSource, TaskCallback};
use crate::problem::Problem;

/// The path segment between the id and the token.
pub const SEGMENT: &str = "upstream-callback";

/// How long after its id was minted an unknown operation's callback is held for the
/// watch to appear (the submit's own time is bounded by `upstream_timeout`, typically
/// much less).
pub const EARLY_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// A callback-driven submit's identity, minted before it is forwarded.
pub struct Armed {
    /// The watch job's id.
    pub id: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
}

/// Hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    use base64::Engine as _;
    let mut raw = [0u8; 32];
    raw[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    raw[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Mints the id and token and puts the callback URL into the submit (see the module doc).
/// `413` when a JSON body must be buffered and exceeds `max_body`.
pub async fn arm(
    cb: &TaskCallback,
    jobs_path: &str,
    base: &str,
    max_body: u64,
    req: Request<Body>,
) -> Result<(Armed, Request<Body>), Problem> {
    let id = crate::store::model::new_id();
    let token = new_token();
    let url = format!("{base}{jobs_path}/{id}/{SEGMENT}/{token}");
    let armed = Armed {
        id,
        token_hash: token_hash(&token),
    };
    let (mut parts, body) = req.into_parts();
    let body = match &cb.at {
        FieldSource::Header(name) => {
            match HeaderValue::from_str(&url) {
                Ok(v) => {
                    parts.headers.remove(name);
                    parts.headers.insert(name.clone(), v);
                }
                Err(_) => tracing::warn!(%url, "callback URL is not a header value; not sent"),
            }
            body
        }
        FieldSource::Json(ptr) if crate::intent::is_json(&parts.headers) => {
            let bytes = body::collect(body, max_body).await?;
            match inject(&bytes, ptr, &url) {
                Some(rewritten) => {
                    parts
                        .headers
                        .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
                    Body::full(rewritten)
                }
                None => Body::full(bytes),
            }
        }
        FieldSource::Json(_) => body,
    };
    Ok((armed, Request::from_parts(parts, body)))
}

/// The body with `url` at `ptr`; `None` when it is not JSON or the pointer cannot be set.
fn inject(body: &[u8], ptr: &crate::config::JsonPointer, url: &str) -> Option<Bytes> {
    let mut doc = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    if !ptr.set(&mut doc, serde_json::Value::String(url.to_owned())) {
        return None;
    }
    serde_json::to_vec(&doc).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::{inject, new_token, token_hash};

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn inject_sets_creates_or_declines() {
        let p = "/hook/url".parse().unwrap();
        let out = inject(br#"{"prompt":"x"}"#, &p, "https://g/cb").unwrap();
        assert_eq!(
            out.as_ref(),
            br#"{"prompt":"x","hook":{"url":"https://g/cb"}}"#
        );
        assert!(inject(b"not json", &p, "u").is_none());
        assert!(inject(b"[1,2]", &p, "u").is_none());
        assert!(inject(br#"{"hook":"str"}"#, &p, "u").is_none());
    }
}
