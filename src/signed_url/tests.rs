//! Unit tests for `signed_url`: the scheme pinned against an independent HMAC, sign/verify
//! round trips, every tampering refused, strict query parsing, expiry rounding and the
//! boundary, key separation from the secret's other uses, redacted `Debug`.
//! The whole file is test-only: its parent declares it as `#[cfg(test)] mod tests;`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;

const SECRET: &str = "result-link-secret";
const ID: &str = "01938f2e-7c5a-7b1e-9d3f-2a4b6c8d0e1f";

fn key() -> UrlKey {
    UrlKey::from_secret(SECRET).unwrap()
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn params(query: &str) -> Result<LinkParams, LinkError> {
    LinkParams::from_query(Some(query)).expect("a signed query")
}

/// The documented scheme, computed with `hmac` directly: K = HMAC(secret, label), sig =
/// base64url-no-pad(HMAC(K, "{id}.{expires}")).
#[test]
fn the_scheme_matches_an_independent_computation() {
    let k = hmac(SECRET.as_bytes(), b"prefer-gateway/result-urls/v1");
    let expected = BASE64URL.encode(hmac(&k, format!("{ID}.1800000000").as_bytes()));
    assert_eq!(signature(&key(), ID, 1_800_000_000), expected);
    assert_eq!(expected.len(), 43);
    assert!(!expected.contains(['=', '+', '/']));
}

#[test]
fn a_whsec_secret_is_base64_decoded_like_the_webhook_secret() {
    let raw = b"0123456789abcdef0123456789abcdef";
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let k = hmac(raw, LABEL.as_bytes());
    let expected = BASE64URL.encode(hmac(&k, format!("{ID}.5").as_bytes()));
    assert_eq!(
        signature(&UrlKey::from_secret(&whsec).unwrap(), ID, 5),
        expected
    );
    assert!(UrlKey::from_secret("").is_err());
    assert!(UrlKey::from_secret("whsec_%%%").is_err());
}

#[test]
fn download_url_round_trips() {
    let url = download_url("/jobs", ID, 1_800_000_000_000, &key());
    let (path, query) = url.split_once('?').unwrap();
    assert_eq!(path, format!("/jobs/{ID}/result"));
    let p = params(query).unwrap();
    assert_eq!(p.expires(), 1_800_000_000);
    assert_eq!(p.verify(&key(), ID), Ok(()));
    assert_eq!(p.check_expiry(1_799_999_999_999), Ok(()));
}

#[test]
fn tampering_with_id_expires_sig_or_key_is_refused() {
    let sig = signature(&key(), ID, 1_800_000_000);
    let good = params(&format!("expires=1800000000&sig={sig}")).unwrap();
    assert_eq!(good.verify(&key(), ID), Ok(()));
    // Another job's id with this job's signature.
    let other = "01938f2e-7c5a-7b1e-9d3f-2a4b6c8d0e20";
    assert_eq!(good.verify(&key(), other), Err(LinkError::Invalid));
    // A later expiry with the same signature.
    let later = params(&format!("expires=1800000001&sig={sig}")).unwrap();
    assert_eq!(later.verify(&key(), ID), Err(LinkError::Invalid));
    // One signature character changed.
    let mut chars: Vec<char> = sig.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    let p = params(&format!("expires=1800000000&sig={flipped}")).unwrap();
    assert_eq!(p.verify(&key(), ID), Err(LinkError::Invalid));
    // Another gateway's key.
    let foreign = UrlKey::from_secret("another secret").unwrap();
    assert_eq!(good.verify(&foreign, ID), Err(LinkError::Invalid));
}

/// The URL key is neither the secret nor a webhook key: a signature made with the raw
/// secret, or with a tenant's webhook secret derived from it, never verifies.
#[test]
fn the_url_key_is_separated_from_other_uses_of_the_secret() {
    let master = Secret::parse(SECRET).unwrap();
    let raw = BASE64URL.encode(hmac(master.as_bytes(), format!("{ID}.5").as_bytes()));
    let p = params(&format!("expires=5&sig={raw}")).unwrap();
    assert_eq!(p.verify(&key(), ID), Err(LinkError::Invalid));
    let tenant = crate::sign::tenant_secret(&master, "acme");
    let t = BASE64URL.encode(hmac(tenant.as_bytes(), format!("{ID}.5").as_bytes()));
    let p = params(&format!("expires=5&sig={t}")).unwrap();
    assert_eq!(p.verify(&key(), ID), Err(LinkError::Invalid));
    assert_ne!(key(), UrlKey(master));
}

#[test]
fn a_query_without_sig_is_not_a_signed_request() {
    assert_eq!(LinkParams::from_query(None), None);
    assert_eq!(LinkParams::from_query(Some("")), None);
    assert_eq!(LinkParams::from_query(Some("expires=5")), None);
    assert_eq!(LinkParams::from_query(Some("signature=x&x=1")), None);
}

#[test]
fn malformed_link_parameters_are_invalid() {
    let sig = signature(&key(), ID, 5);
    let padded = format!("{sig}=");
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(BASE64URL.decode(&sig).unwrap())
        .replace('_', "/")
        .replace('-', "+");
    let short = BASE64URL.encode([0u8; 31]);
    let cases = [
        format!("sig={sig}"),
        format!("expires=&sig={sig}"),
        format!("expires=05&sig={sig}"),
        format!("expires=%2B5&sig={sig}"),
        format!("expires=-5&sig={sig}"),
        format!("expires=5.0&sig={sig}"),
        format!("expires=99999999999999999999999&sig={sig}"),
        format!("expires=5&expires=5&sig={sig}"),
        format!("expires=5&sig={sig}&sig={sig}"),
        "expires=5&sig=".to_owned(),
        format!("expires=5&sig={padded}"),
        format!("expires=5&sig={short}"),
        format!("expires=5&sig={sig}AAAA"),
        "expires=5&sig=not base64!".to_owned(),
    ];
    for q in &cases {
        assert_eq!(params(q), Err(LinkError::Invalid), "{q}");
    }
    // `standard` only differs when the signature has a '-' or '_' to swap.
    if standard != sig {
        assert_eq!(
            params(&format!("expires=5&sig={standard}")),
            Err(LinkError::Invalid)
        );
    }
}

#[test]
fn percent_encoding_and_other_parameters_are_accepted() {
    let sig = signature(&key(), ID, 5);
    let encoded: String = sig.chars().map(|c| format!("%{:02X}", c as u32)).collect();
    let p = params(&format!("download=1&%65xpires=%35&sig={encoded}")).unwrap();
    assert_eq!(p.verify(&key(), ID), Ok(()));
}

#[test]
fn expiry_rounds_up_and_ends_at_expires() {
    assert_eq!(expires_secs(1_800_000_000_000), 1_800_000_000);
    assert_eq!(expires_secs(1_800_000_000_001), 1_800_000_001);
    assert_eq!(expires_secs(1_800_000_000_999), 1_800_000_001);
    assert_eq!(expires_secs(-5), 0);
    let p = params(&format!("expires=100&sig={}", signature(&key(), ID, 100))).unwrap();
    assert_eq!(p.check_expiry(99_999), Ok(()));
    assert_eq!(p.check_expiry(100_000), Err(LinkError::Expired));
    let far = signature(&key(), ID, u64::MAX);
    let p = params(&format!("expires={}&sig={far}", u64::MAX)).unwrap();
    assert_eq!(p.check_expiry(i64::MAX - 1), Ok(()));
}

#[test]
fn debug_shows_a_fingerprint_never_the_key() {
    let shown = format!("{:?}", key());
    assert!(shown.starts_with("UrlKey(fingerprint "), "{shown}");
    assert!(!shown.contains(SECRET));
    let k = hmac(SECRET.as_bytes(), LABEL.as_bytes());
    assert!(!shown.contains(&hex::encode(&k)));
    assert_ne!(
        shown,
        format!("{:?}", UrlKey::from_secret("other").unwrap())
    );
}
