//! Request ids: the client's own `X-Request-Id` when it is sane, otherwise a cheap unique
//! one — a random per-process prefix and a counter — built without `core::fmt`, because
//! this runs on every request.

use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{HeaderName, HeaderValue};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a client's id can be kept: 1–200 visible ASCII bytes.
pub(crate) fn sane_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic())
}

/// Cheap unique request ids: a random per-process prefix and a counter.
pub(crate) struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> Self {
        let r = uuid::Uuid::new_v4().simple().to_string();
        RequestIds {
            prefix: r[..12].to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    /// `{prefix}-{counter as at least 8 hex digits}`, built by hand: this runs once per
    /// request and `format!` costs more than the rest of the id handling together.
    pub(crate) fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let digits = (16 - (n.leading_zeros() as usize) / 4).max(8);
        let mut out = Vec::with_capacity(self.prefix.len() + 1 + digits);
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(b'-');
        for i in (0..digits).rev() {
            out.push(HEX[((n >> (i * 4)) & 0xf) as usize]);
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_prefix_dash_hex_counter() {
        let ids = RequestIds::new();
        let first = ids.next();
        let first = first.to_str().unwrap();
        assert_eq!(first, format!("{}-00000000", ids.prefix));
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-00000001", ids.prefix)
        );
        ids.counter.store(0x1_2345_6789, Ordering::Relaxed);
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-{:08x}", ids.prefix, 0x1_2345_6789u64)
        );
        ids.counter.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            ids.next().to_str().unwrap(),
            format!("{}-{:08x}", ids.prefix, u64::MAX)
        );
    }
}
