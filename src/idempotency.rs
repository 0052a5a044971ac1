//! Idempotency keys and request fingerprints.
//!
//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header) is an RFC 8941 sf-string
//! (`"abc"`); many clients send a bare token (`abc`), which is accepted too. Either way the
//! key is 1–255 characters of visible ASCII without commas (a comma would make the header
//! ambiguous as a list); more than one `Idempotency-Key` line is refused rather than
//! guessed. A key may instead come from a JSON body field configured on the route; the
//! header wins when both are present.
//!
//! "The same request" is the same method, target (path and query) and body: their
//! SHA-256 is the fingerprint stored with the job.

use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::JsonPointer;

/// `Idempotency-Key`.
pub static IDEMPOTENCY_KEY: http::HeaderName = http::HeaderName::from_static("idempotency-key");

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The key from the `Idempotency-Key` header: `Ok(None)` when absent, `Err(why)` when
/// malformed (→ `400`).
pub fn from_header(headers: &HeaderMap) -> Result<Option<String>, String> {
    let mut lines = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err("send one Idempotency-Key header, not several".into());
    }
    let raw = value.as_bytes().trim_ascii();
    let key = match raw.strip_prefix(b"\"") {
        Some(rest) => sf_string(rest)?,
        None => raw.iter().map(|&b| b as char).collect(),
    };
    check(&key).map(Some)
}

/// The key from a JSON body field: `Ok(None)` when the body is not JSON or lacks the field.
pub fn from_json(body: &[u8], ptr: &JsonPointer) -> Result<Option<String>, String> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(None);
    };
    match ptr.get(&doc) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => check(s).map(Some),
        Some(_) => Err(format!("the idempotency field {ptr} must be a string")),
    }
}

/// Parses the rest of an sf-string after its opening quote.
fn sf_string(rest: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    let mut iter = rest.iter();
    while let Some(&b) = iter.next() {
        match b {
            b'"' => {
                return if iter.next().is_none() {
                    Ok(out)
                } else {
                    Err("text after the closing quote of Idempotency-Key".into())
                }
            }
            b'\\' => match iter.next() {
                Some(&e @ (b'"' | b'\\')) => out.push(e as char),
                _ => return Err("bad escape in Idempotency-Key".into()),
            },
            0x20..=0x7e => out.push(b as char),
            _ => return Err("Idempotency-Key must be visible ASCII".into()),
        }
    }
    Err("unterminated quoted Idempotency-Key".into())
}

fn check(key: &str) -> Result<String, String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "an idempotency key has 1 to {MAX_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',') {
        return Err("an idempotency key is visible ASCII without commas".into());
    }
    if key.starts_with(' ') || key.ends_with(' ') {
        return Err("an idempotency key has no surrounding spaces".into());
    }
    Ok(key.to_owned())
}

/// SHA-256 over method, target and body (length-prefixed, so fields cannot run together).
pub fn fingerprint(method: &str, target: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [method.as_bytes(), target.as_bytes(), body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key(v: &[u8]) -> Result<Option<String>, String> {
        let mut h = HeaderMap::new();
        h.insert(&IDEMPOTENCY_KEY, HeaderValue::from_bytes(v).unwrap());
        from_header(&h)
    }

    #[test]
    fn sf_strings_and_bare_tokens() {
        assert_eq!(key(b"\"abc-123\"").unwrap().as_deref(), Some("abc-123"));
        assert_eq!(key(b"abc-123").unwrap().as_deref(), Some("abc-123"));
        assert_eq!(
            key(b"\"a \\\"q\\\" b\"").unwrap().as_deref(),
            Some("a \"q\" b")
        );
        assert_eq!(from_header(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            &b"\"\""[..],
            b"\"abc",
            b"\"a\"b",
            b"a,b",
            b"\"a,b\"",
            b"\"\\x\"",
            b"\xff",
            b"",
        ] {
            assert!(key(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(key(&[b'k'; 256]).is_err());
        assert!(key(&[b'k'; 255]).is_ok());
        let mut h = HeaderMap::new();
        h.append(&IDEMPOTENCY_KEY, HeaderValue::from_static("a"));
        h.append(&IDEMPOTENCY_KEY, HeaderValue::from_static("b"));
        assert!(from_header(&h).is_err());
    }

    #[test]
    fn json_field() {
        let p: JsonPointer = "/client_request_id".parse().unwrap();
        assert_eq!(
            from_json(br#"{"client_request_id":"r1"}"#, &p)
                .unwrap()
                .as_deref(),
            Some("r1")
        );
        assert_eq!(from_json(br#"{"x":1}"#, &p).unwrap(), None);
        assert_eq!(from_json(b"not json", &p).unwrap(), None);
        assert!(from_json(br#"{"client_request_id":5}"#, &p).is_err());
        assert!(from_json(br#"{"client_request_id":""}"#, &p).is_err());
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b"")
        );
        assert_eq!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/a", b"b")
        );
    }
}
