//! Unit tests for `sign`: the published Standard Webhooks and GitHub vectors, RFC 4231
//! HMAC vectors, secret parsing and rendering, tenant derivation, the header set.
//! The whole file is test-only: its parent declares it as `#[cfg(test)] mod tests;`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;

/// Standard Webhooks' published vector: the `sign function works` test of the reference
/// JavaScript library (standard-webhooks/standard-webhooks, libraries/javascript).
#[test]
fn standard_webhooks_published_vector() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let signature = standard_webhooks_signature(
        &secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        br#"{"test": 2432232314}"#,
    );
    assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/// The reference Rust library's `test_sign` vector (libraries/rust/src/lib.rs).
#[test]
fn standard_webhooks_rust_library_vector() {
    let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let signature = standard_webhooks_signature(
        &secret,
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1_649_367_553,
        br#"{"email":"test@example.com","username":"test_user"}"#,
    );
    assert_eq!(signature, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
}

/// GitHub's documented `X-Hub-Signature-256` example ("Validating webhook deliveries",
/// "Testing the webhook payload validation"): a plain-text secret is used as-is.
#[test]
fn github_documented_vector() {
    let secret = Secret::parse("It's a Secret to Everybody").unwrap();
    assert_eq!(
        x_signature(&secret, b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

/// RFC 4231 test cases 2 (short key) and 6 (key longer than the 64-byte block, which
/// HMAC hashes first) — the two branches of `Secret::mac`'s key preparation.
#[test]
fn rfc_4231_vectors() {
    let jefe = Secret::parse("Jefe").unwrap();
    assert_eq!(
        x_signature(&jefe, b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let long = Secret(vec![0xaa; 131]);
    assert_eq!(
        x_signature(
            &long,
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// The prepared-block keying equals the hmac crate's own `new_from_slice` at every key
/// length around the block size.
#[test]
fn key_preparation_matches_the_hmac_crate() {
    for len in 1..=200 {
        let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        let mut reference = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        reference.update(b"body");
        let expected = hex::encode(reference.finalize().into_bytes());
        assert_eq!(
            x_signature(&Secret(key), b"body"),
            format!("sha256={expected}"),
            "key length {len}"
        );
    }
}

#[test]
fn parse_and_render() {
    // Prefixed: base64 decoded; renders back to the same text.
    let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(s.as_bytes().len(), 24);
    assert_eq!(s.render(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    // Plain text: its UTF-8 bytes, even when it happens to look like base64.
    let s = Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(s.as_bytes(), b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let s = Secret::parse("pässwörd").unwrap();
    assert_eq!(s.as_bytes(), "pässwörd".as_bytes());
    // Rendering a plain-text secret gives a prefixed one with the same key.
    let rendered = s.render();
    assert!(rendered.starts_with("whsec_"), "{rendered}");
    assert_eq!(Secret::parse(&rendered).unwrap(), s);
}

#[test]
fn parse_errors() {
    for bad in [
        "",
        "whsec_",
        "whsec_not base64!",
        "whsec_MfKQ9r8G*",
        "whsec_YWJj=",
    ] {
        assert!(Secret::parse(bad).is_err(), "{bad:?}");
    }
    let err = Secret::parse("whsec_%%%").unwrap_err();
    assert!(err.contains("base64"), "{err}");
    assert_eq!(
        Secret::parse("").unwrap_err(),
        "the signing secret is empty"
    );
}

#[test]
fn debug_does_not_show_the_key() {
    let s = Secret::parse("It's a Secret to Everybody").unwrap();
    let shown = format!("{s:?}");
    assert_eq!(shown, "Secret(26 bytes, redacted)");
    assert!(!shown.contains("Secret to"));
}

#[test]
fn tenant_secrets() {
    let master = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    // The empty tenant is the single-tenant gateway: the master itself.
    assert_eq!(tenant_secret(&master, ""), master);
    let acme = tenant_secret(&master, "acme");
    // Deterministic: nothing is stored per tenant.
    assert_eq!(tenant_secret(&master, "acme"), acme);
    assert_eq!(acme.as_bytes().len(), 32);
    // The documented derivation, computed with the hmac crate directly.
    let mut mac = Hmac::<Sha256>::new_from_slice(master.as_bytes()).unwrap();
    mac.update(b"prefer-gateway/tenant-secret/v1:acme");
    assert_eq!(acme.as_bytes(), mac.finalize().into_bytes().as_slice());
    // Distinct per tenant, and from the master.
    let tenants = [
        "acme",
        "Acme",
        "acme ",
        "globex",
        "a",
        "b",
        "prefer-gateway",
    ];
    let keys: Vec<Secret> = tenants.iter().map(|t| tenant_secret(&master, t)).collect();
    for (i, a) in keys.iter().enumerate() {
        assert_ne!(a, &master);
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Distinct per master.
    let other = Secret::parse("another master").unwrap();
    assert_ne!(tenant_secret(&other, "acme"), acme);
    // A tenant secret survives the render/parse round trip it goes through on its way
    // to the tenant.
    assert_eq!(Secret::parse(&acme.render()).unwrap(), acme);
}

#[test]
fn signatures_cover_id_timestamp_and_body() {
    let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let base = standard_webhooks_signature(&s, "msg_1", 1_700_000_000, b"{}");
    assert_ne!(
        base,
        standard_webhooks_signature(&s, "msg_2", 1_700_000_000, b"{}")
    );
    assert_ne!(
        base,
        standard_webhooks_signature(&s, "msg_1", 1_700_000_001, b"{}")
    );
    assert_ne!(
        base,
        standard_webhooks_signature(&s, "msg_1", 1_700_000_000, b"{ }")
    );
    assert_ne!(x_signature(&s, b"{}"), x_signature(&s, b"{ }"));
    // The body is signed as bytes: not-UTF-8 bodies sign too.
    let raw = x_signature(&s, &[0xff, 0xfe, 0x00]);
    assert_eq!(raw.len(), "sha256=".len() + 64);
}

#[test]
fn header_set() {
    let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let body = br#"{"test": 2432232314}"#;
    let headers = headers(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-signature"
        ]
    );
    for name in names {
        // Lower case, so `HeaderName::from_static` accepts them.
        assert_eq!(name, name.to_ascii_lowercase());
    }
    assert_eq!(headers[0].1, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_eq!(headers[1].1, "1614265330");
    assert_eq!(
        headers[2].1,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    assert_eq!(headers[3].1, x_signature(&s, body));
}
