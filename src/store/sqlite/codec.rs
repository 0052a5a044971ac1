//! Byte formats of the SQLite store: header lists as blobs, and a `jobs` row (with its
//! `deliveries` rows, if any: callback and admission) ↔ [`Job`].
//!
//! A header list is stored as one blob so a job row stays a single read:
//!
//! ```text
//! count: u32 BE, then count × ( name_len: u32 BE, name: UTF-8, value_len: u32 BE, value )
//! ```
//!
//! Values are raw bytes (HTTP allows obs-text, so they need not be UTF-8); names are the
//! gateway's lower-cased header names. Lengths are fixed-width big-endian so the decoder
//! can check every length against what is left *before* slicing: malformed input (a
//! truncated blob, a length pointing past the end, trailing bytes, a non-UTF-8 name) is a
//! [`StoreError`], never a panic or an oversized allocation. A row that cannot become a
//! [`Job`] (unknown status, kind or delivery state text, out-of-range number, half a
//! response) is one too.

use bytes::Bytes;
use rusqlite::Row;

use crate::store::model::{
    Admission, Delivery, DeliveryState, HeaderList, Job, JobError, JobKind, JobStatus,
    StoredRequest, StoredResponse,
};
use crate::store::StoreError;

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

// === Rows ===

/// The columns every job-returning query selects, in [`job_from_row`] order: `jobs` as
/// `j`, then its callback delivery as `d` and its admission delivery as `a` (each all
/// `NULL` without one), so it goes with [`job_from!`]. Macros rather than `const`s so
/// queries can `concat!` them into one `&'static str`, which `prepare_cached` then keys
/// on without a `format!` per call.
macro_rules! job_columns {
    () => {
        "j.id, j.tenant, j.route, j.status, j.created_at, j.updated_at, j.expires_at, \
         j.idem_key, j.fingerprint, j.req_method, j.req_target, j.req_headers, j.req_body, \
         j.resp_status, j.resp_headers, j.resp_body, j.error_code, j.error_message, \
         j.lease_until, j.attempts, j.kind, d.url, d.state, d.attempts, d.next_at, \
         d.last_status, d.last_error, d.lease_until, a.url, a.state, a.attempts, a.next_at, \
         a.last_status, a.last_error, a.lease_until, a.reservation"
    };
}
/// The `FROM` clause for [`job_columns!`]: one primary-key probe of `deliveries` per kind.
macro_rules! job_from {
    () => {
        " FROM jobs AS j \
         LEFT JOIN deliveries AS d ON d.job_id = j.id AND d.kind = 'callback' \
         LEFT JOIN deliveries AS a ON a.job_id = j.id AND a.kind = 'admission'"
    };
}

/// Where the callback's columns start in a [`job_columns!`] row.
const CALLBACK_COLUMNS: usize = 21;
/// Where the admission's columns start (its delivery, then `reservation`).
const ADMISSION_COLUMNS: usize = 28;
pub(super) use {job_columns, job_from};

/// Builds a [`Job`] from a row selected with `job_columns!()`. Never panics: a corrupt row
/// is a [`StoreError`] naming the job.
pub fn job_from_row(row: &Row<'_>) -> Result<Job, StoreError> {
    let id: String = row.get(0).map_err(StoreError::new)?;
    decode_row(row).map_err(|e| StoreError::new(format!("job {id}: {e}")))
}

fn decode_row(row: &Row<'_>) -> Result<Job, StoreError> {
    let get = |e: rusqlite::Error| StoreError::new(e);
    let status: String = row.get(3).map_err(get)?;
    let status = JobStatus::parse(&status)
        .ok_or_else(|| StoreError::new(format!("unknown status {status:?}")))?;
    let response = match row.get::<_, Option<i64>>(13).map_err(get)? {
        None => None,
        Some(code) => {
            let status = u16::try_from(code)
                .map_err(|_| StoreError::new(format!("response status {code} out of range")))?;
            let headers: Option<Vec<u8>> = row.get(14).map_err(get)?;
            let body: Option<Vec<u8>> = row.get(15).map_err(get)?;
            let (Some(headers), Some(body)) = (headers, body) else {
                return Err(StoreError::new("response status without headers or body"));
            };
            Some(StoredResponse {
                status,
                headers: decode_headers(&headers)?,
                body: Bytes::from(body),
            })
        }
    };
    let error = match row.get::<_, Option<String>>(16).map_err(get)? {
        None => None,
        Some(code) => {
            let message: Option<String> = row.get(17).map_err(get)?;
            let message = message.ok_or_else(|| StoreError::new("error code without a message"))?;
            Some(JobError { code, message })
        }
    };
    let attempts: i64 = row.get(19).map_err(get)?;
    let attempts = u32::try_from(attempts)
        .map_err(|_| StoreError::new(format!("attempts {attempts} out of range")))?;
    let req_headers: Vec<u8> = row.get(11).map_err(get)?;
    let req_body: Vec<u8> = row.get(12).map_err(get)?;
    let kind: String = row.get(20).map_err(get)?;
    let kind =
        JobKind::parse(&kind).ok_or_else(|| StoreError::new(format!("unknown kind {kind:?}")))?;
    Ok(Job {
        id: row.get(0).map_err(get)?,
        tenant: row.get(1).map_err(get)?,
        route: row.get(2).map_err(get)?,
        status,
        created_at: row.get(4).map_err(get)?,
        updated_at: row.get(5).map_err(get)?,
        expires_at: row.get(6).map_err(get)?,
        idempotency_key: row.get(7).map_err(get)?,
        fingerprint: row.get(8).map_err(get)?,
        request: StoredRequest {
            method: row.get(9).map_err(get)?,
            target: row.get(10).map_err(get)?,
            headers: decode_headers(&req_headers)?,
            body: Bytes::from(req_body),
        },
        response,
        error,
        lease_until: row.get(18).map_err(get)?,
        attempts,
        kind,
        callback: decode_delivery(row, CALLBACK_COLUMNS)?,
        admission: decode_admission(row)?,
    })
}

/// The admission columns of a `job_columns!()` row: its delivery, then the reservation.
fn decode_admission(row: &Row<'_>) -> Result<Option<Admission>, StoreError> {
    let Some(delivery) = decode_delivery(row, ADMISSION_COLUMNS)? else {
        return Ok(None);
    };
    let reservation = row.get(ADMISSION_COLUMNS + 7).map_err(StoreError::new)?;
    Ok(Some(Admission {
        reservation,
        delivery,
    }))
}

/// The seven delivery columns of a `job_columns!()` row starting at `at`; no URL means no
/// `deliveries` row of that kind.
fn decode_delivery(row: &Row<'_>, at: usize) -> Result<Option<Delivery>, StoreError> {
    let get = |e: rusqlite::Error| StoreError::new(e);
    let Some(url) = row.get::<_, Option<String>>(at).map_err(get)? else {
        return Ok(None);
    };
    let state: String = row.get(at + 1).map_err(get)?;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| StoreError::new(format!("unknown delivery state {state:?}")))?;
    let attempts: i64 = row.get(at + 2).map_err(get)?;
    let attempts = u32::try_from(attempts)
        .map_err(|_| StoreError::new(format!("delivery attempts {attempts} out of range")))?;
    let last_status = match row.get::<_, Option<i64>>(at + 4).map_err(get)? {
        None => None,
        Some(code) => Some(
            u16::try_from(code)
                .map_err(|_| StoreError::new(format!("delivery status {code} out of range")))?,
        ),
    };
    Ok(Some(Delivery {
        url,
        state,
        attempts,
        next_attempt_at: row.get(at + 3).map_err(get)?,
        last_status,
        last_error: row.get(at + 5).map_err(get)?,
        lease_until: row.get(at + 6).map_err(get)?,
    }))
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
