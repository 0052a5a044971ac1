//! Fuzzes the durable stores' record decoders: the header blob both stores keep header
//! lists in (`store::headers::{encode_headers, decode_headers}`, the SQLite columns
//! `req_headers`/`resp_headers` and the Redis fields of the same names) and the Redis job
//! hash codec (`store::redis::fuzzing::{job_fields, decode_job}`), plus the text forms of
//! the enums both stores write (`JobStatus`, `JobKind`, `DeliveryState`).
//!
//! The SQLite row decoder itself reads typed columns through `rusqlite` (integers are
//! integers there); what it decodes from bytes is the header blob and these enum names,
//! which is what this target covers.
//!
//! Input: the first byte picks a mode, the rest drives it:
//! 0. the rest as a header blob;
//! 1. a header list built from the rest, encoded;
//! 2. the rest as a Redis hash reply (`field, value, ...`, items split at `0xff 0x00`);
//! 3. a job built from the rest, as `create` writes it, in the order written and shuffled;
//! 4. the rest as an enum name.
//!
//! Invariants checked (src/store/headers.rs, src/store/redis/codec.rs module docs):
//!
//! - never panics, on any bytes (no slicing past the end, no allocation sized by a bogus
//!   length);
//! - a blob decodes only if it is exactly `encode_headers` of the result (a truncated
//!   blob, a length past the end, trailing bytes, a non-UTF-8 name are errors), so
//!   `encode(decode(b)) == b`; `decode(encode(x)) == x` for any list (order, duplicates,
//!   raw non-UTF-8 values kept), and every proper prefix of an encoding is an error;
//! - a hash decodes only into a job whose fields encode back to a hash that decodes to the
//!   same job; `decode_job(job_fields(j)) == j` for any job, whatever the field order;
//!   an error on a hash with a valid `id` names the job;
//! - `parse(s)` of each enum is `Some(x)` exactly when `x.as_str() == s`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use prefer_gateway::store::headers::{decode_headers, encode_headers};
use prefer_gateway::store::model::{
    Admission, Delivery, DeliveryState, HeaderList, Job, JobError, JobKind, JobStatus,
    StoredRequest, StoredResponse,
};
use prefer_gateway::store::redis::fuzzing::{decode_job, job_fields};

const STATUSES: [JobStatus; 5] = [
    JobStatus::Pending,
    JobStatus::Running,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Canceled,
];
const KINDS: [JobKind; 2] = [JobKind::Call, JobKind::Watch];
const STATES: [DeliveryState; 5] = [
    DeliveryState::Waiting,
    DeliveryState::Pending,
    DeliveryState::Delivered,
    DeliveryState::Failed,
    DeliveryState::Stopped,
];

fn check_blob(blob: &[u8]) {
    if let Ok(list) = decode_headers(blob) {
        assert_eq!(
            encode_headers(&list),
            blob,
            "a blob decoded but is not canonical"
        );
    }
}

fn check_list(list: &HeaderList, cut: usize) {
    let blob = encode_headers(list);
    assert_eq!(decode_headers(&blob).ok().as_ref(), Some(list));
    let cut = cut % blob.len().max(1);
    if cut < blob.len() {
        assert!(
            decode_headers(&blob[..cut]).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
}

fn header_list(u: &mut Unstructured<'_>) -> ArbResult<HeaderList> {
    let n = u.int_in_range(0..=6)?;
    (0..n)
        .map(|_| {
            let name: String = u.arbitrary()?;
            let value: Vec<u8> = u.arbitrary()?;
            Ok((name, Bytes::from(value)))
        })
        .collect()
}

fn delivery(u: &mut Unstructured<'_>) -> ArbResult<Delivery> {
    Ok(Delivery {
        url: u.arbitrary()?,
        state: *u.choose(&STATES)?,
        attempts: u.arbitrary()?,
        next_attempt_at: u.arbitrary()?,
        last_status: u.arbitrary()?,
        last_error: u.arbitrary()?,
        lease_until: u.arbitrary()?,
    })
}

fn job(u: &mut Unstructured<'_>) -> ArbResult<Job> {
    Ok(Job {
        id: u.arbitrary()?,
        tenant: u.arbitrary()?,
        route: u.arbitrary()?,
        status: *u.choose(&STATUSES)?,
        created_at: u.arbitrary()?,
        updated_at: u.arbitrary()?,
        expires_at: u.arbitrary()?,
        idempotency_key: u.arbitrary()?,
        fingerprint: u.arbitrary()?,
        request: StoredRequest {
            method: u.arbitrary()?,
            target: u.arbitrary()?,
            headers: header_list(u)?,
            body: Bytes::from(u.arbitrary::<Vec<u8>>()?),
        },
        response: if u.arbitrary()? {
            Some(StoredResponse {
                status: u.arbitrary()?,
                headers: header_list(u)?,
                body: Bytes::from(u.arbitrary::<Vec<u8>>()?),
            })
        } else {
            None
        },
        error: if u.arbitrary()? {
            Some(JobError {
                code: u.arbitrary()?,
                message: u.arbitrary()?,
            })
        } else {
            None
        },
        lease_until: u.arbitrary()?,
        attempts: u.arbitrary()?,
        kind: *u.choose(&KINDS)?,
        callback: if u.arbitrary()? {
            Some(delivery(u)?)
        } else {
            None
        },
        admission: if u.arbitrary()? {
            Some(Admission {
                reservation: u.arbitrary()?,
                delivery: delivery(u)?,
            })
        } else {
            None
        },        deadline: u.arbitrary()?,
        started: if u.arbitrary()? {
            Some(delivery(u)?)
        } else {
            None
        },
    })
}

fn reply(fields: &[(&'static str, Vec<u8>)]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .flat_map(|(k, v)| [k.as_bytes().to_vec(), v.clone()])
        .collect()
}

fn check_hash(items: Vec<Vec<u8>>) {
    let valid_id = hash_id(&items);
    match decode_job(items) {
        Ok(job) => {
            let again = decode_job(reply(&job_fields(&job)));
            assert_eq!(again.as_ref().ok(), Some(&job), "{again:?}");
        }
        Err(e) => {
            if let Some(id) = valid_id {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("job {id}")),
                    "{msg:?} does not name {id:?}"
                );
            }
        }
    }
}

/// The `id` a reply carries when it is well-formed enough to name one: an even number of
/// items, UTF-8 field names, a UTF-8 `id` (the last one wins, as in a map).
fn hash_id(items: &[Vec<u8>]) -> Option<String> {
    if items.len() % 2 != 0 {
        return None;
    }
    let mut id = None;
    for pair in items.chunks(2) {
        let name = std::str::from_utf8(&pair[0]).ok()?;
        if name == "id" {
            id = Some(String::from_utf8(pair[1].clone()).ok());
        }
    }
    id.flatten()
}

fn check_job(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let job = job(u)?;
    let mut fields = job_fields(&job);
    assert_eq!(decode_job(reply(&fields)).as_ref().ok(), Some(&job));
    // A hash has no order: any order of the fields decodes the same.
    let n = fields.len();
    for i in 0..n {
        let j = u.int_in_range(i..=n - 1)?;
        fields.swap(i, j);
    }
    assert_eq!(decode_job(reply(&fields)).as_ref().ok(), Some(&job));
    Ok(())
}

fn check_names(s: &str) {
    let status = JobStatus::parse(s);
    assert_eq!(status, STATUSES.into_iter().find(|x| x.as_str() == s));
    let kind = JobKind::parse(s);
    assert_eq!(kind, KINDS.into_iter().find(|x| x.as_str() == s));
    let state = DeliveryState::parse(s);
    assert_eq!(state, STATES.into_iter().find(|x| x.as_str() == s));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut u = Unstructured::new(rest);
    match mode % 5 {
        0 => check_blob(rest),
        1 => {
            if let Ok(list) = header_list(&mut u) {
                let cut = u.arbitrary::<usize>().unwrap_or(0);
                check_list(&list, cut);
            }
        }
        2 => {
            let items: Vec<Vec<u8>> = split(rest);
            check_hash(items);
        }
        3 => {
            let _ = check_job(&mut u);
        }
        _ => check_names(&String::from_utf8_lossy(rest)),
    }
});

/// Items of a hash reply: the input split at `0xff 0x00` (bytes a field name never holds).
fn split(data: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xff && data[i + 1] == 0 {
            items.push(data[start..i].to_vec());
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    items.push(data[start..].to_vec());
    items
}
