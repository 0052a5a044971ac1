//! The one tenant rule, used by every part that asks "whose request is this": the
//! per-tenant rate limiter, job creation and reads, admission asks and the access log.
//!
//! The tenant is the value of `[jobs].tenant_header`, with surrounding spaces and tabs
//! removed (RFC 9110 §5.5: they are not part of a field value; HTTP/1 parsers drop most of
//! them, HTTP/2 carries a value as the client sent it). A value that is empty after trimming counts as absent. Bytes that
//! are not UTF-8 are kept, replaced by U+FFFD, so two such tenants may collide — but only
//! with each other, never with a well-formed tenant.
//!
//! Before this module the rule was written three times and had drifted: jobs trimmed,
//! the rate limiter and the access log did not, so `"acme\t"` was one tenant for jobs
//! and a second rate-limit bucket.

use http::header::{HeaderMap, HeaderName};

/// The request's tenant under the one rule, as the bytes it was sent as (no copy: the
/// rate limiter and the access log read it on every request); `None` when no header is
/// configured, the request lacks it, or its value is blank.
pub fn bytes_of<'h>(headers: &'h HeaderMap, header: Option<&HeaderName>) -> Option<&'h [u8]> {
    let raw = headers.get(header?)?.as_bytes().trim_ascii();
    let valid = raw
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t');
    (!raw.is_empty() && valid).then_some(raw)
}

/// [`bytes_of`] as text (what jobs are stored under and admission endpoints are told).
pub fn of(headers: &HeaderMap, header: Option<&HeaderName>) -> Option<String> {
    let raw = bytes_of(headers, header)?;
    // Visible ASCII, spaces and tabs only (checked above), so this never replaces a byte.
    std::str::from_utf8(raw).ok().map(str::to_owned)
}

/// The tenant a job is stored under: [`of`], `""` when the gateway is single-tenant, and
/// `Err(header name)` when a tenant header is configured but the request has no tenant.
pub fn required(headers: &HeaderMap, header: Option<&HeaderName>) -> Result<String, String> {
    match header {
        None => Ok(String::new()),
        Some(name) => of(headers, Some(name)).ok_or_else(|| name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(v: &'static [u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-tenant",
            HeaderValue::from_bytes(v).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn trimmed_values_are_one_tenant() {
        let name = HeaderName::from_static("x-tenant");
        for v in [&b"acme"[..], b" acme", b"acme\t", b"\t acme \t"] {
            let mut h = HeaderMap::new();
            h.insert(
                &name,
                HeaderValue::from_bytes(v).unwrap_or(HeaderValue::from_static("x")),
            );
            assert_eq!(of(&h, Some(&name)).as_deref(), Some("acme"), "{v:?}");
        }
    }

    #[test]
    fn undecodable_bytes_are_no_tenant() {
        let name = HeaderName::from_static("x-tenant");
        assert_eq!(of(&with(b"k\xff"), Some(&name)), None);
        assert_eq!(of(&with(b"k\xfe"), Some(&name)), None);
        assert_eq!(bytes_of(&with(b"a\x7fb"), Some(&name)), None);
        assert_eq!(of(&with(b"a b"), Some(&name)).as_deref(), Some("a b"));
    }

    #[test]
    fn blank_is_absent_and_required_names_the_header() {
        let name = HeaderName::from_static("x-tenant");
        assert_eq!(of(&with(b" \t "), Some(&name)), None);
        assert_eq!(
            required(&with(b" "), Some(&name)),
            Err("x-tenant".to_owned())
        );
        assert_eq!(required(&with(b"a"), Some(&name)), Ok("a".to_owned()));
        assert_eq!(required(&with(b"a"), None), Ok(String::new()));
        assert_eq!(of(&with(b"a"), None), None);
    }
}
