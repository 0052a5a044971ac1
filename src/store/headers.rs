//! Header lists: to and from `HeaderMap` ([`list_of`], [`append_to`]), and as blobs — the
//! one format both durable stores (SQLite, Redis) keep them in,
//! so a job row or hash stays a single read:
//!
//! ```text
//! count: u32 BE, then count × ( name_len: u32 BE, name: UTF-8, value_len: u32 BE, value )
//! ```
//!
//! Values are raw bytes (HTTP allows obs-text, so they need not be UTF-8); names are the
//! gateway's lower-cased header names. Lengths are fixed-width big-endian so the decoder
//! can check every length against what is left *before* slicing: malformed input (a
//! truncated blob, a length pointing past the end, trailing bytes, a non-UTF-8 name) is a
//! [`StoreError`], never a panic or an oversized allocation.

use bytes::Bytes;

use super::model::HeaderList;
use super::StoreError;

/// Encodes a header list as a length-prefixed blob.
pub fn encode_headers(headers: &HeaderList) -> Vec<u8> {
    let size: usize = headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(4 + size);
    put_len(&mut out, headers.len());
    for (name, value) in headers {
        put_len(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
        put_len(&mut out, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// Decodes a blob written by [`encode_headers`]; malformed input is an error.
pub fn decode_headers(blob: &[u8]) -> Result<HeaderList, StoreError> {
    let mut rest = blob;
    let count = take_len(&mut rest)?;
    // Every entry needs at least 8 bytes, so a bogus huge count cannot make us reserve
    // more than the blob could hold.
    let mut headers = Vec::with_capacity(count.min(rest.len() / 8));
    for _ in 0..count {
        let name = take_bytes(&mut rest)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| StoreError::new("corrupt header blob: a header name is not UTF-8"))?;
        let value = take_bytes(&mut rest)?;
        headers.push((name.to_owned(), Bytes::copy_from_slice(value)));
    }
    if !rest.is_empty() {
        return Err(StoreError::new(format!(
            "corrupt header blob: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(headers)
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Header lists come from hyper, which caps a head far below 4 GiB; saturating keeps
    // the encoder total, and the decoder would then reject the blob rather than misread it.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

fn take_len(rest: &mut &[u8]) -> Result<usize, StoreError> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(StoreError::new("corrupt header blob: truncated length"));
    };
    *rest = tail;
    usize::try_from(u32::from_be_bytes(*head))
        .map_err(|_| StoreError::new("corrupt header blob: length overflows usize"))
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let len = take_len(rest)?;
    if len > rest.len() {
        return Err(StoreError::new(format!(
            "corrupt header blob: {len} bytes announced, {} left",
            rest.len()
        )));
    }
    let (bytes, tail) = rest.split_at(len);
    *rest = tail;
    Ok(bytes)
}

/// A header map as the stores keep it: `(name, value)` pairs in order, duplicates kept.
pub fn list_of(headers: &http::HeaderMap) -> HeaderList {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

/// Appends a stored header list to `into`; a pair that no longer parses (stored by an older
/// version, or corrupted) is skipped rather than failing the request it belongs to.
pub fn append_to(list: &HeaderList, into: &mut http::HeaderMap) {
    for (name, value) in list {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            into.append(n, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HeaderList {
        vec![
            (
                "content-type".into(),
                Bytes::from_static(b"application/json"),
            ),
            ("x-raw".into(), Bytes::from_static(b"\xff\x00caf\xe9")),
            ("x-empty".into(), Bytes::new()),
            ("x-raw".into(), Bytes::from_static(b"second")),
        ]
    }

    #[test]
    fn round_trip_keeps_order_duplicates_and_raw_bytes() {
        let headers = sample();
        assert_eq!(decode_headers(&encode_headers(&headers)).unwrap(), headers);
        assert_eq!(
            decode_headers(&encode_headers(&Vec::new())).unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let blob = encode_headers(&sample());
        for cut in 0..blob.len() {
            assert!(
                decode_headers(&blob[..cut]).is_err(),
                "cut at {cut} decoded"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut blob = encode_headers(&sample());
        blob.push(0);
        assert!(decode_headers(&blob).is_err());
    }

    #[test]
    fn huge_counts_and_lengths_are_errors_not_allocations() {
        assert!(decode_headers(&[0xff, 0xff, 0xff, 0xff]).is_err());
        let mut blob = 1u32.to_be_bytes().to_vec();
        blob.extend_from_slice(&u32::MAX.to_be_bytes());
        blob.extend_from_slice(b"abc");
        assert!(decode_headers(&blob).is_err());
    }

    #[test]
    fn non_utf8_name_is_an_error() {
        let mut blob = 1u32.to_be_bytes().to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        blob.push(0xff);
        blob.extend_from_slice(&0u32.to_be_bytes());
        assert!(decode_headers(&blob).is_err());
    }
}
