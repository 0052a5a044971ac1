//! Fuzzes the `Idempotency-Key` parser (`idempotency::from_header`), the JSON-field key
//! (`idempotency::from_json`) and the request fingerprint (`idempotency::fingerprint`).
//!
//! Input: arbitrary bytes, as the header value (when `http` accepts them as one), as one
//! of two header lines (split at the first `\n`), as a JSON body, and as the text of a key
//! put into a JSON body and into both header forms.
//!
//! Invariants checked (src/idempotency.rs module docs; behaviour.md "`Idempotency-Key`
//! (sf-string, 1–255 chars; else `400`)"):
//!
//! - never panics, on any bytes;
//! - an accepted key is 1–255 characters of visible ASCII (space allowed inside) without
//!   commas and without surrounding spaces;
//! - the parse agrees with an independent model: surrounding whitespace trimmed; a value
//!   starting with `"` is an RFC 8941 sf-string (only `\"` and `\\` escapes, nothing after
//!   the closing quote), anything else the bare key; then the key rules;
//! - an accepted quoted key, serialised back as an sf-string, is the value as sent; an
//!   accepted bare key is the value as sent;
//! - every valid key is accepted as an sf-string, as a bare token (when it does not start
//!   with `"`), and as a JSON string field, each giving the key back; an invalid one is
//!   refused by all three;
//! - two `Idempotency-Key` lines are always refused; no line is `Ok(None)`;
//! - `from_json` never errors on a body that is not JSON or lacks the field, errors on a
//!   non-string field, and returns only valid keys;
//! - `fingerprint` is 64 lowercase hex digits and separates its fields (moving bytes
//!   between method, target and body changes it).
#![no_main]

use http::header::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use prefer_gateway::config::JsonPointer;
use prefer_gateway::idempotency::{
    fingerprint, from_header, from_json, IDEMPOTENCY_KEY, MAX_KEY_LEN,
};

fn valid(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len())
        && key.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',')
        && !key.starts_with(' ')
        && !key.ends_with(' ')
}

/// The sf-string body after the opening quote, by RFC 8941 §4.2.5.
fn sf_unquote(rest: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => return (i + 1 == rest.len()).then_some(out),
            b'\\' => {
                let e = *rest.get(i + 1)?;
                if e != b'"' && e != b'\\' {
                    return None;
                }
                out.push(e as char);
                i += 2;
            }
            b @ 0x20..=0x7e => {
                out.push(b as char);
                i += 1;
            }
            _ => return None,
        }
    }
    None
}

fn sf_quote(key: &str) -> String {
    let mut s = String::from("\"");
    for c in key.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

fn expected(value: &[u8]) -> Option<String> {
    let raw = value.trim_ascii();
    let key = match raw.strip_prefix(b"\"") {
        Some(rest) => sf_unquote(rest)?,
        // Not ASCII → not valid anyway; latin-1 keeps the byte count for the check.
        None => raw.iter().map(|&b| b as char).collect(),
    };
    valid(&key).then_some(key)
}

fn one(value: &HeaderValue) -> Result<Option<String>, String> {
    let mut h = HeaderMap::new();
    h.insert(&IDEMPOTENCY_KEY, value.clone());
    from_header(&h)
}

fn check_value(bytes: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(bytes) else {
        return;
    };
    let got = one(&value);
    let want = expected(bytes);
    assert_eq!(
        got.clone().ok().flatten(),
        want,
        "{:?}",
        String::from_utf8_lossy(bytes)
    );
    if let Ok(Some(key)) = got {
        assert!(valid(&key));
        let raw = bytes.trim_ascii();
        if raw.starts_with(b"\"") {
            assert_eq!(sf_quote(&key).as_bytes(), raw);
        } else {
            assert_eq!(key.as_bytes(), raw);
        }
        check_key(&key);
    }
}

/// A (valid or invalid) key text in every form a client can send it.
fn check_key(key: &str) {
    let ok = valid(key);
    let quoted = sf_quote(key);
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        assert_eq!(
            one(&v).ok().flatten().as_deref(),
            ok.then_some(key),
            "{quoted:?}"
        );
    }
    if !key.starts_with('"') {
        if let Ok(v) = HeaderValue::from_str(key) {
            // A bare value is trimmed first: only keys without surrounding whitespace
            // come back as they are.
            if key.trim_ascii() == key {
                assert_eq!(
                    one(&v).ok().flatten().as_deref(),
                    ok.then_some(key),
                    "{key:?}"
                );
            }
        }
    }
    let ptr: JsonPointer = "/k".parse().expect("a valid pointer");
    let body = serde_json::json!({ "k": key }).to_string();
    let got = from_json(body.as_bytes(), &ptr);
    if ok {
        assert_eq!(got.ok().flatten().as_deref(), Some(key));
    } else {
        assert!(got.is_err(), "{key:?}");
    }
}

fn check_two_lines(data: &[u8]) {
    let Some(i) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (Ok(a), Ok(b)) = (
        HeaderValue::from_bytes(&data[..i]),
        HeaderValue::from_bytes(&data[i + 1..]),
    ) else {
        return;
    };
    let mut h = HeaderMap::new();
    h.append(&IDEMPOTENCY_KEY, a);
    h.append(&IDEMPOTENCY_KEY, b);
    assert!(from_header(&h).is_err());
}

fn check_json(body: &[u8]) {
    let ptr: JsonPointer = "/k".parse().expect("a valid pointer");
    let got = from_json(body, &ptr);
    let doc: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match doc.as_ref().and_then(|d| d.pointer("/k")) {
        None | Some(serde_json::Value::Null) => assert_eq!(got, Ok(None)),
        Some(serde_json::Value::String(s)) => {
            assert_eq!(got.ok().flatten(), valid(s).then(|| s.clone()));
        }
        Some(_) => assert!(got.is_err()),
    }
}

fn check_fingerprint(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (m, t) = text.split_at(mid);
    let f = fingerprint(m, t, data);
    assert_eq!(f.len(), 64);
    assert!(f
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(f, fingerprint(m, t, data));
    let joined = format!("{m}{t}");
    if !m.is_empty() {
        assert_ne!(f, fingerprint("", &joined, data));
    }
    if !t.is_empty() {
        assert_ne!(fingerprint(m, t, b""), fingerprint(m, "", t.as_bytes()));
    }
}

fuzz_target!(|data: &[u8]| {
    check_value(data);
    check_two_lines(data);
    check_json(data);
    check_key(&String::from_utf8_lossy(data));
    check_fingerprint(data);
    assert_eq!(from_header(&HeaderMap::new()), Ok(None));
});
