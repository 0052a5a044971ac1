//! Byte formats of the Redis store: a [`Job`] ↔ the fields of its hash.
//!
//! A job is one hash (`{prefix}job:{id}`) so that every read is one `HGETALL` and every
//! script can change single fields. Fields, all stored as bytes:
//!
//! ```text
//! id tenant route status kind fingerprint        text
//! created_at updated_at attempts                 decimal integers
//! expires_at lease_until idem_key                absent when None
//! req_method req_target                          text
//! req_headers resp_headers                       header blobs (see sqlite's codec)
//! req_body resp_body                             raw bytes
//! resp_status | error_code error_message         absent when None
//! cb_url cb_state cb_attempts                    the callback, absent without one;
//! cb_next_at cb_last_status cb_last_error          its optional parts absent when None
//! cb_lease_until
//! adm_url adm_state adm_attempts                 the admission release, likewise
//! adm_next_at adm_last_status adm_last_error
//! adm_lease_until adm_reservation
//! st_url st_state st_attempts …                  the `started` event, likewise
//! deadline                                       decimal integer, absent when None
//! ```
//!
//! The delivery fields are encoded in `deliveries`.
//!
//! Header lists reuse the SQLite store's length-prefixed blob
//! ([`encode_headers`]/[`decode_headers`]): values are raw bytes, and one tested format is
//! better than two. Decoding never panics: a missing field, a non-numeric number or an
//! unknown state is a [`StoreError`] naming the job.

mod deliveries;

use std::collections::HashMap;
use std::str::FromStr;

use bytes::Bytes;

use crate::store::headers::{decode_headers, encode_headers};
use crate::store::model::{Job, JobError, JobKind, JobStatus, StoredRequest, StoredResponse};
use crate::store::StoreError;

/// Hash fields as `(name, value)` pairs, ready to become `HSET` arguments.
pub(super) type FieldList = Vec<(&'static str, Vec<u8>)>;

/// Script arguments: the byte strings after the key prefix.
pub(super) type Args = Vec<Vec<u8>>;

pub(super) fn num(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

pub(super) fn arg(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub(super) fn flag(b: bool) -> Vec<u8> {
    arg(if b { "1" } else { "0" })
}

/// `field, value, ...` as script arguments.
pub(super) fn flatten(fields: FieldList) -> Args {
    fields
        .into_iter()
        .flat_map(|(name, value)| [arg(name), value])
        .collect()
}

/// Every field of `job` that has a value (the hash of a job as stored).
pub(super) fn job_fields(job: &Job) -> FieldList {
    let mut f: FieldList = vec![
        ("id", job.id.clone().into_bytes()),
        ("tenant", job.tenant.clone().into_bytes()),
        ("route", job.route.clone().into_bytes()),
        ("status", job.status.as_str().into()),
        ("kind", job.kind.as_str().into()),
        ("fingerprint", job.fingerprint.clone().into_bytes()),
        ("created_at", num(job.created_at)),
        ("updated_at", num(job.updated_at)),
        ("attempts", num(job.attempts)),
        ("req_method", job.request.method.clone().into_bytes()),
        ("req_target", job.request.target.clone().into_bytes()),
        ("req_headers", encode_headers(&job.request.headers)),
        ("req_body", job.request.body.to_vec()),
    ];
    if let Some(at) = job.expires_at {
        f.push(("expires_at", num(at)));
    }
    if let Some(at) = job.lease_until {
        f.push(("lease_until", num(at)));
    }
    if let Some(key) = &job.idempotency_key {
        f.push(("idem_key", key.clone().into_bytes()));
    }
    if let Some(at) = job.deadline {
        f.push(("deadline", num(at)));
    }
    f.extend(outcome_fields(job.response.as_ref(), job.error.as_ref()));
    deliveries::push_fields(job, &mut f);
    f
}

/// The response and error fields a finished job carries.
pub(super) fn outcome_fields(
    response: Option<&StoredResponse>,
    error: Option<&JobError>,
) -> FieldList {
    let mut f = FieldList::new();
    if let Some(r) = response {
        f.push(("resp_status", num(r.status)));
        f.push(("resp_headers", encode_headers(&r.headers)));
        f.push(("resp_body", r.body.to_vec()));
    }
    if let Some(e) = error {
        f.push(("error_code", e.code.clone().into_bytes()));
        f.push(("error_message", e.message.clone().into_bytes()));
    }
    f
}

// === Decoding ===

/// A hash read as `field, value, ...`, taken apart field by field.
struct Fields(HashMap<String, Vec<u8>>);

impl Fields {
    fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        self.0.remove(name)
    }

    fn text(&mut self, name: &str) -> Result<String, StoreError> {
        self.opt_text(name)?
            .ok_or_else(|| StoreError::new(format!("field {name} is missing")))
    }

    fn opt_text(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        self.take(name)
            .map(|v| {
                String::from_utf8(v)
                    .map_err(|_| StoreError::new(format!("field {name} is not UTF-8")))
            })
            .transpose()
    }

    fn number<T: FromStr>(&mut self, name: &str) -> Result<T, StoreError> {
        self.opt_number(name)?
            .ok_or_else(|| StoreError::new(format!("field {name} is missing")))
    }

    fn opt_number<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, StoreError> {
        self.opt_text(name)?
            .map(|s| {
                s.parse()
                    .map_err(|_| StoreError::new(format!("field {name} = {s:?} is out of range")))
            })
            .transpose()
    }

    fn bytes(&mut self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.take(name)
            .ok_or_else(|| StoreError::new(format!("field {name} is missing")))
    }
}

/// Builds a [`Job`] from its hash as a script returned it (`field, value, ...`).
pub(super) fn decode_job(pairs: Vec<Vec<u8>>) -> Result<Job, StoreError> {
    let mut map = HashMap::with_capacity(pairs.len() / 2);
    let mut items = pairs.into_iter();
    while let Some(name) = items.next() {
        let value = items
            .next()
            .ok_or_else(|| StoreError::new("job hash reply has an odd number of items"))?;
        let name = String::from_utf8(name)
            .map_err(|_| StoreError::new("job hash has a non-UTF-8 field name"))?;
        map.insert(name, value);
    }
    let mut f = Fields(map);
    let id = f.text("id")?;
    decode_fields(id.clone(), &mut f).map_err(|e| StoreError::new(format!("job {id}: {}", e.0)))
}

fn decode_fields(id: String, f: &mut Fields) -> Result<Job, StoreError> {
    let status = f.text("status")?;
    let status = JobStatus::parse(&status)
        .ok_or_else(|| StoreError::new(format!("unknown status {status:?}")))?;
    let kind = f.text("kind")?;
    let kind =
        JobKind::parse(&kind).ok_or_else(|| StoreError::new(format!("unknown kind {kind:?}")))?;
    let response = match f.opt_number::<u16>("resp_status")? {
        None => None,
        Some(status) => Some(StoredResponse {
            status,
            headers: decode_headers(&f.bytes("resp_headers")?)?,
            body: Bytes::from(f.bytes("resp_body")?),
        }),
    };
    let error = match f.opt_text("error_code")? {
        None => None,
        Some(code) => Some(JobError {
            code,
            message: f.text("error_message")?,
        }),
    };
    Ok(Job {
        id,
        tenant: f.text("tenant")?,
        route: f.text("route")?,
        status,
        created_at: f.number("created_at")?,
        updated_at: f.number("updated_at")?,
        expires_at: f.opt_number("expires_at")?,
        idempotency_key: f.opt_text("idem_key")?,
        fingerprint: f.text("fingerprint")?,
        request: StoredRequest {
            method: f.text("req_method")?,
            target: f.text("req_target")?,
            headers: decode_headers(&f.bytes("req_headers")?)?,
            body: Bytes::from(f.bytes("req_body")?),
        },
        response,
        error,
        lease_until: f.opt_number("lease_until")?,
        attempts: f.number("attempts")?,
        kind,
        callback: deliveries::decode_callback(f)?,
        admission: deliveries::decode_admission(f)?,
        deadline: f.opt_number("deadline")?,
        started: deliveries::decode_started(f)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::{Delivery, DeliveryState, JobKind, NewAdmission, NewJob};

    fn full_job() -> Job {
        let mut job = NewJob {
            id: "0190-id".into(),
            tenant: "acme:eu".into(),
            route: "orders".into(),
            idempotency_key: Some("key-1".into()),
            fingerprint: "fp".into(),
            request: StoredRequest {
                method: "POST".into(),
                target: "/orders?x=1".into(),
                headers: vec![("x-raw".into(), Bytes::from_static(b"\xff\x00caf\xe9"))],
                body: Bytes::from_static(b"\x00\x9f\x92\x96\xff"),
            },
            kind: JobKind::Watch,
            callback: Some("https://hooks.example/cb".into()),
            notify_started: true,
            admission: Some(NewAdmission {
                url: "https://billing.internal/admit".into(),
                reservation: Some("res-\u{e9}-1".into()),
            }),
            deadline: None,
        }
        .into_job(1_700_000_000_000);
        job.status = JobStatus::Failed;
        job.expires_at = Some(1_700_000_060_000);
        job.lease_until = Some(1_700_000_030_000);
        job.attempts = 3;
        job.response = Some(StoredResponse {
            status: 502,
            headers: vec![("x-bin".into(), Bytes::from_static(b"\x80\x81"))],
            body: Bytes::from_static(b"{}\x00\xff"),
        });
        job.error = Some(JobError {
            code: "upstream_status".into(),
            message: "the upstream answered 502".into(),
        });
        job.callback = Some(Delivery {
            url: "https://hooks.example/cb".into(),
            state: DeliveryState::Pending,
            attempts: 2,
            next_attempt_at: Some(1_700_000_070_000),
            last_status: Some(503),
            last_error: Some("the receiver answered 503".into()),
            lease_until: Some(1_700_000_080_000),
        });
        if let Some(admission) = job.admission.as_mut() {
            admission.delivery = Delivery {
                state: DeliveryState::Failed,
                attempts: 5,
                last_status: Some(500),
                last_error: Some("the endpoint answered 500".into()),
                ..admission.delivery.clone()
            };
        }
        job
    }

    fn as_reply(fields: FieldList) -> Vec<Vec<u8>> {
        fields
            .into_iter()
            .flat_map(|(k, v)| [k.as_bytes().to_vec(), v])
            .collect()
    }

    #[test]
    fn every_field_round_trips() {
        let job = full_job();
        assert_eq!(decode_job(as_reply(job_fields(&job))).unwrap(), job);
        // No key, callback, admission, response, error, lease or expiry: the optional
        // fields absent.
        let plain = NewJob {
            id: "b".into(),
            tenant: String::new(),
            route: "r".into(),
            idempotency_key: None,
            fingerprint: "fp".into(),
            request: job.request,
            kind: JobKind::Call,
            callback: None,
            notify_started: false,
            admission: None,
            deadline: None,
        }
        .into_job(5);
        assert_eq!(decode_job(as_reply(job_fields(&plain))).unwrap(), plain);
        // An admission without a reservation, and no callback beside it.
        let admitted = NewJob {
            id: "c".into(),
            tenant: String::new(),
            route: "r".into(),
            idempotency_key: None,
            fingerprint: "fp".into(),
            request: plain.request.clone(),
            kind: JobKind::Call,
            callback: None,
            notify_started: false,
            admission: Some(NewAdmission {
                url: "https://billing.internal/admit".into(),
                reservation: None,
            }),
            deadline: None,
        }
        .into_job(6);
        let fields = job_fields(&admitted);
        assert!(
            fields.iter().all(|(k, _)| !k.starts_with("cb_")),
            "{fields:?}"
        );
        assert_eq!(decode_job(as_reply(fields)).unwrap(), admitted);
    }

    /// `job`'s fields with `name` replaced by `value` (or removed when `None`).
    fn altered(name: &'static str, value: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut fields = job_fields(&full_job());
        fields.retain(|(k, _)| *k != name);
        if let Some(v) = value {
            fields.push((name, v.to_vec()));
        }
        as_reply(fields)
    }

    #[test]
    fn corrupt_hashes_are_errors_naming_the_job() {
        let cases: [(&'static str, Option<&[u8]>); 11] = [
            ("status", Some(b"sleeping")),
            ("kind", Some(b"dance")),
            ("created_at", Some(b"soon")),
            ("attempts", Some(b"-1")),
            ("resp_status", Some(b"70000")),
            ("resp_headers", None),
            ("error_message", None),
            ("cb_state", Some(b"lost")),
            ("adm_state", Some(b"lost")),
            ("adm_attempts", None),
            ("req_headers", Some(b"\x00\x00\x00\x09")),
        ];
        for (name, value) in cases {
            let err = decode_job(altered(name, value)).unwrap_err().to_string();
            assert!(err.contains("job 0190-id"), "{name}: {err}");
        }
        assert!(decode_job(altered("id", None)).is_err());
        let mut odd = as_reply(job_fields(&full_job()));
        odd.push(b"dangling".to_vec());
        assert!(decode_job(odd).is_err());
    }
}
