//! Byte formats of the SQLite store: a `jobs` row (with its `deliveries` rows, if any:
//! callback and admission) ↔ [`Job`]. Header lists are blobs in the format both durable
//! stores share ([`crate::store::headers`]). A row that cannot become a [`Job`] (unknown
//! status, kind or delivery state text, out-of-range number, half a response) is a
//! [`StoreError`], never a panic.

use rusqlite::Row;

use crate::store::model::{
    Admission, Delivery, DeliveryState, Job, JobError, JobKind, JobStatus, StoredRequest,
    StoredResponse,
};
use bytes::Bytes;

use crate::store::headers::decode_headers;
use crate::store::StoreError;

// === Rows ===

/// The columns every job-returning query selects, in [`job_from_row`] order: `jobs` as
/// `j`, then its callback delivery as `d` and its admission delivery as `a`, `j.deadline`,
/// and its `started` event's delivery as `s` (each all `NULL` without one), so it goes with [`job_from!`]. Macros rather than `const`s so
/// queries can `concat!` them into one `&'static str`, which `prepare_cached` then keys
/// on without a `format!` per call.
macro_rules! job_columns {
    () => {
        "j.id, j.tenant, j.route, j.status, j.created_at, j.updated_at, j.expires_at, \
         j.idem_key, j.fingerprint, j.req_method, j.req_target, j.req_headers, j.req_body, \
         j.resp_status, j.resp_headers, j.resp_body, j.error_code, j.error_message, \
         j.lease_until, j.attempts, j.kind, d.url, d.state, d.attempts, d.next_at, \
         d.last_status, d.last_error, d.lease_until, a.url, a.state, a.attempts, a.next_at, \
         a.last_status, a.last_error, a.lease_until, a.reservation, j.deadline, s.url, \
         s.state, s.attempts, s.next_at, s.last_status, s.last_error, s.lease_until"
    };
}
/// [`job_columns!`] for a listing: the same columns in the same order, but the request's
/// header list and body, and the response's (when there is one), replaced by an empty
/// list (`x'00000000'`: a count of zero) and an empty blob, so a page never reads a body
/// into memory. [`job_from_row`] then builds [`Job::summary`](crate::store::Job::summary).
macro_rules! summary_columns {
    () => {
        "j.id, j.tenant, j.route, j.status, j.created_at, j.updated_at, j.expires_at, \
         j.idem_key, j.fingerprint, j.req_method, j.req_target, x'00000000', x'', \
         j.resp_status, \
         CASE WHEN j.resp_status IS NULL THEN NULL ELSE x'00000000' END, \
         CASE WHEN j.resp_status IS NULL THEN NULL ELSE x'' END, \
         j.error_code, j.error_message, \
         j.lease_until, j.attempts, j.kind, d.url, d.state, d.attempts, d.next_at, \
         d.last_status, d.last_error, d.lease_until, a.url, a.state, a.attempts, a.next_at, \
         a.last_status, a.last_error, a.lease_until, a.reservation, j.deadline, s.url, \
         s.state, s.attempts, s.next_at, s.last_status, s.last_error, s.lease_until"
    };
}
/// The `FROM` clause for [`job_columns!`]: one primary-key probe of `deliveries` per kind.
macro_rules! job_from {
    () => {
        " FROM jobs AS j \
         LEFT JOIN deliveries AS d ON d.job_id = j.id AND d.kind = 'callback' \
         LEFT JOIN deliveries AS a ON a.job_id = j.id AND a.kind = 'admission' \
         LEFT JOIN deliveries AS s ON s.job_id = j.id AND s.kind = 'started'"
    };
}

/// Where the callback's columns start in a [`job_columns!`] row.
const CALLBACK_COLUMNS: usize = 21;
/// Where the admission's columns start (its delivery, then `reservation`).
const ADMISSION_COLUMNS: usize = 28;
/// Where `j.deadline` is (after the admission's columns).
const DEADLINE_COLUMN: usize = ADMISSION_COLUMNS + 8;
/// Where the `started` event's delivery columns start (after `j.deadline`).
const STARTED_COLUMNS: usize = DEADLINE_COLUMN + 1;
pub(super) use {job_columns, job_from, summary_columns};

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
        deadline: row.get(DEADLINE_COLUMN).map_err(get)?,
        started: decode_delivery(row, STARTED_COLUMNS)?,
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
