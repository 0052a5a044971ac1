//! Fuzzes signed result URLs (`signed_url`): `LinkParams::from_query`, `verify`,
//! `check_expiry`, and the signer (`signature`, `download_url`, `expires_secs`).
//!
//! Input: the first line is the signing secret (`[jobs].signing_secret`), the second a job
//! id, the third the retention end in milliseconds (decimal); the rest is a query string
//! verified as it stands. Lines that do not fit fall back to fixed values.
//!
//! Invariants checked (src/signed_url.rs module docs):
//!
//! - never panics, on any query, id, secret or time;
//! - `from_query` is `None` exactly when no parameter is named `sig`; `Some(Ok(p))` only
//!   for exactly one `expires` in canonical decimal and exactly one `sig` of strict
//!   base64url over 32 bytes (so printing them back gives the values as given);
//! - a link made by the signer parses and verifies for its id and key, with `expires` the
//!   retention end rounded up to whole seconds (never before the result's end, less than
//!   a second after it), also when read back out of `download_url`;
//! - any change breaks it: another id, another `expires`, another key, a flipped bit of
//!   the signature, a non-canonical `expires` spelling, a padded or re-spelled signature,
//!   a second `expires` or `sig`;
//! - an arbitrary query verifies only if its `sig` is the signer's signature for that id
//!   and `expires`;
//! - `check_expiry(now)` is `Expired` exactly when `now >= expires * 1000` (saturating).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prefer_gateway::signed_url::{
    download_url, expires_secs, signature, LinkError, LinkParams, UrlKey, EXPIRES, SIG,
};

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let vals: Vec<u32> = s
        .bytes()
        .map(|c| B64URL.iter().position(|&x| x == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &v)| acc | (v << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    // Strict: re-encoding must give the same text (no stray bits).
    (b64_encode(&out) == s).then_some(out)
}

fn params(query: &str) -> (Vec<String>, Vec<String>) {
    let mut expires = Vec::new();
    let mut sig = Vec::new();
    for (n, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if n == EXPIRES {
            expires.push(v.into_owned());
        } else if n == SIG {
            sig.push(v.into_owned());
        }
    }
    (expires, sig)
}

/// Any query: the parse agrees with the documented shape, and verification with the signer.
fn check_query(query: &str, key: &UrlKey, id: &str, now: i64) {
    let got = LinkParams::from_query(Some(query));
    let (expires, sig) = params(query);
    if sig.is_empty() {
        assert_eq!(got, None, "{query:?}");
        return;
    }
    let Some(got) = got else {
        panic!("a sig parameter but None: {query:?}");
    };
    let well_formed = match (expires.as_slice(), sig.as_slice()) {
        ([e], [s]) => {
            e.parse::<u64>().is_ok_and(|n| n.to_string() == *e)
                && b64_decode(s).is_some_and(|b| b.len() == 32)
        }
        _ => false,
    };
    assert_eq!(got.is_ok(), well_formed, "{query:?}");
    let Ok(p) = got else {
        assert_eq!(got, Err(LinkError::Invalid));
        return;
    };
    assert_eq!(p.expires().to_string(), expires[0]);
    let genuine = signature(key, id, p.expires()) == sig[0];
    assert_eq!(p.verify(key, id).is_ok(), genuine, "{query:?} id {id:?}");
    let until = i64::try_from(p.expires().saturating_mul(1000)).unwrap_or(i64::MAX);
    assert_eq!(
        p.check_expiry(now),
        if now >= until {
            Err(LinkError::Expired)
        } else {
            Ok(())
        }
    );
}

fn parsed(query: &str) -> LinkParams {
    match LinkParams::from_query(Some(query)) {
        Some(Ok(p)) => p,
        other => panic!("signer's link {query:?} does not parse: {other:?}"),
    }
}

fn refused(query: &str, key: &UrlKey, id: &str) {
    match LinkParams::from_query(Some(query)) {
        Some(Ok(p)) => assert_eq!(p.verify(key, id), Err(LinkError::Invalid), "{query:?}"),
        Some(Err(e)) => assert_eq!(e, LinkError::Invalid),
        None => panic!("{query:?} lost its sig"),
    }
}

fn check_signed(key: &UrlKey, other: &UrlKey, id: &str, expires_at: i64) {
    let e = expires_secs(expires_at);
    // Rounded up to whole seconds: never before the result's end, under a second after.
    let ms = i128::from(expires_at.max(0));
    assert!(i128::from(e) * 1000 >= ms && i128::from(e) * 1000 - ms < 1000);
    let sig = signature(key, id, e);
    assert_eq!(sig.len(), 43);
    let q = format!("{EXPIRES}={e}&{SIG}={sig}");
    let p = parsed(&q);
    assert_eq!(p.expires(), e);
    assert_eq!(p.verify(key, id), Ok(()));

    // The same link read out of the URL the status document hands out.
    let url = download_url("/jobs", id, expires_at, key);
    assert!(url.starts_with("/jobs/"));
    if !id.contains('?') && !id.contains('#') {
        let (_, query) = url.split_once('?').unwrap_or_default();
        assert_eq!(parsed(query), p);
    }

    // Mutations.
    assert!(p.verify(key, &format!("{id}x")).is_err());
    if let Some(shorter) = id.get(..id.len().saturating_sub(1)).filter(|s| *s != id) {
        assert!(p.verify(key, shorter).is_err());
    }
    if other != key {
        assert!(p.verify(other, id).is_err());
    }
    for e2 in [e.wrapping_add(1), e.wrapping_sub(1), e ^ 1 << 40] {
        refused(&format!("{EXPIRES}={e2}&{SIG}={sig}"), key, id);
    }
    refused(&format!("{EXPIRES}=0{e}&{SIG}={sig}"), key, id);
    refused(&format!("{EXPIRES}=%2B{e}&{SIG}={sig}"), key, id);
    refused(&format!("{EXPIRES}={e}&{SIG}={sig}="), key, id);
    refused(&format!("{EXPIRES}={e}&{EXPIRES}={e}&{SIG}={sig}"), key, id);
    refused(&format!("{EXPIRES}={e}&{SIG}={sig}&{SIG}={sig}"), key, id);
    refused(&format!("{SIG}={sig}"), key, id);
    let raw = b64_decode(&sig).unwrap_or_default();
    assert_eq!(raw.len(), 32);
    let bit = (e as usize ^ id.len()) % 256;
    let mut flipped = raw.clone();
    flipped[bit / 8] ^= 1 << (bit % 8);
    refused(
        &format!("{EXPIRES}={e}&{SIG}={}", b64_encode(&flipped)),
        key,
        id,
    );
    // The last character carries 2 stray bits (43 × 6 = 258): another spelling of the same bytes.
    let mut respelled = sig.clone().into_bytes();
    respelled[42] = B64URL[(B64URL.iter().position(|&c| c == respelled[42]).unwrap_or(0) ^ 1) & 63];
    refused(
        &format!(
            "{EXPIRES}={e}&{SIG}={}",
            String::from_utf8_lossy(&respelled)
        ),
        key,
        id,
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(4, '\n');
    let secret = lines.next().unwrap_or_default();
    let id = lines.next().unwrap_or_default();
    let at = lines.next().unwrap_or_default();
    let query = lines.next().unwrap_or_default();

    let key = UrlKey::from_secret(secret)
        .unwrap_or_else(|_| UrlKey::from_secret("fallback secret").expect("a plain secret"));
    let other = UrlKey::from_secret("fuzz: another key").expect("a plain secret");
    let expires_at: i64 = at.trim().parse().unwrap_or(1_700_000_000_123);
    let now = expires_at
        .wrapping_mul(7)
        .wrapping_sub(i64::from(data.len() as u32));

    check_signed(&key, &other, id, expires_at);
    check_query(query, &key, id, now);
    check_query(&text, &key, id, now);
    let _ = LinkParams::from_query(None);
});
