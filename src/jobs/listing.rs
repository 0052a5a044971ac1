//! `GET {jobs.path}` lists the caller's jobs; `DELETE {jobs.path}/{id}?purge=true` purges
//! one. The store side (order, paging, bounded work, what a purge takes along) is
//! [`crate::store::listing`]; this is the wire.
//!
//! Decisions:
//! - **Query**: `status` (`pending`, `running`, `succeeded`, `failed`, `canceled`),
//!   `route` (a route name), `limit` (1–100, default 20), `cursor` (a `next_cursor` as
//!   given). A malformed value — an unknown status, a limit outside 1–100 or not plain
//!   digits, a cursor this gateway cannot have made, any of the four empty or given twice
//!   — is `400 invalid-query`; other parameters are ignored. Tenant first, as on every job
//!   endpoint: without the tenant header the answer is `401`, whatever the query.
//! - **Answer**: `200` `{"jobs": [status document, ...], "next_cursor": "…" | null}`, each
//!   item exactly the document `GET {jobs.path}/{id}` answers. When there is a next page
//!   the same URL also comes as `Link: <…?limit=…&cursor=…>; rel="next"` (RFC 8288, what
//!   GitHub- and Stripe-style pagination clients follow), absolute like every URL the
//!   gateway hands out, with the filters and limit carried over. The end of the list is
//!   `next_cursor: null` and no `Link` — not a short page: a page stops early after a
//!   bounded number of jobs looked at, when a filter matches few.
//! - **Cursor**: opaque, 32 characters of base64url (no padding) over 24 bytes — the
//!   last listed job's `created_at` (8 bytes, big-endian) and its UUID (16 bytes). Fixed
//!   length, so every 32-character base64url string is *a* valid position (the OpenAPI
//!   document can say exactly which cursors are well-formed), and a position needs no
//!   signature: it only says where to continue in the caller's own list. It stays valid
//!   when its job is swept or purged; pages are stable while jobs are added (new jobs sort
//!   before it).
//! - **Purge** (`DELETE {id}?purge=true`): `204` when the job is gone — it then answers
//!   `404` (no `410` tombstone) and is no longer listed; `409 job-not-finished` while it is
//!   pending or running (cancel it first: a purge never stops work); `409
//!   admission-notice-pending` with `Retry-After` while the route's admission endpoint has
//!   not been told how the job ended (a purge must not skip the billing record); `410`
//!   past retention, `404` for another tenant's or an unknown id, as on `GET`. A callback
//!   not yet delivered is dropped with the job. A signed result URL of a purged job
//!   answers `410` (its signature proves the job existed; see [`super::api`]).
//!   `purge=false` (or no `purge`) is the plain cancel; any other value is `400`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use http::header::{HeaderValue, CONTENT_TYPE, LINK};
use http::{Request, Response, StatusCode};
use serde_json::json;

use super::api::{store_down, tenant};
use super::engine::Engine;
use crate::body::Body;
use crate::problem::Problem;
use crate::store::listing::{Purged, MAX_LIMIT};
use crate::store::{document, Cursor, JobStatus, ListQuery, StoreError};

/// Length of a cursor on the wire: base64url of 24 bytes.
const CURSOR_LEN: usize = 32;

/// `GET {jobs.path}`: a page of the caller's jobs.
pub async fn list<B>(
    engine: &Engine,
    req: &Request<B>,
    base: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    let query = parse(req.uri().query())?;
    let page = engine
        .store
        .list(&tenant, &query, engine.now())
        .await
        .map_err(store_down)?;
    let next = page
        .next
        .as_ref()
        .map(encode_cursor)
        .transpose()
        .map_err(store_down)?;
    let jobs: Vec<_> = page
        .jobs
        .iter()
        .map(|job| document::status_doc(&engine.links(job, base), job))
        .collect();
    let doc = json!({"jobs": jobs, "next_cursor": next});
    let mut resp = Response::new(Body::full(serde_json::to_vec(&doc).unwrap_or_default()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(cursor) = &next {
        let url = next_url(&format!("{base}{}", engine.cfg.path), &query, cursor);
        // A base that is not header text (a public URL with non-ASCII) only loses the
        // header: `next_cursor` says the same.
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
            h.insert(LINK, v);
        }
    }
    Ok(resp)
}

/// `DELETE {jobs.path}/{id}?purge=true`.
pub async fn purge<B>(
    engine: &Engine,
    req: &Request<B>,
    id: &str,
) -> Result<Response<Body>, Problem> {
    let tenant = tenant(engine, req.headers())?;
    let now = engine.now();
    match engine
        .store
        .purge(&tenant, id, now)
        .await
        .map_err(store_down)?
    {
        Purged::Done => {
            let mut resp = Response::new(Body::Empty);
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(resp)
        }
        Purged::Unfinished(status) => Err(Problem::JobUnfinished(status.as_str())),
        Purged::NoticePending(at) => {
            // The notice is attempted at `at`; a second after it, the purge can go through
            // if that attempt succeeds.
            let wait = at.map_or(0, |at| at.saturating_sub(now)).max(0);
            let secs = u64::try_from(wait / 1000).unwrap_or(0).saturating_add(1);
            Err(Problem::NoticePending(secs))
        }
        Purged::Expired => Err(Problem::JobExpired),
        Purged::Missing => Err(Problem::JobNotFound),
    }
}

/// Whether a `DELETE` asks for a purge: `purge=true`; `purge=false` or none is a cancel.
pub fn wants_purge(query: Option<&str>) -> Result<bool, Problem> {
    let mut purge = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "purge" {
            continue;
        }
        let flag = match value.as_ref() {
            "true" => true,
            "false" => false,
            other => {
                return Err(Problem::InvalidQuery(format!(
                    "purge must be true or false (got {:?})",
                    clip(other)
                )))
            }
        };
        if purge.replace(flag).is_some() {
            return Err(twice("purge"));
        }
    }
    Ok(purge.unwrap_or(false))
}

/// The listing query of `GET {jobs.path}?…`; see the module notes for the rules.
pub fn parse(query: Option<&str>) -> Result<ListQuery, Problem> {
    let mut q = ListQuery::default();
    let mut seen = [false; 4];
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "status" => 0,
            "route" => 1,
            "limit" => 2,
            "cursor" => 3,
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(twice(&name));
        }
        if value.is_empty() {
            return Err(Problem::InvalidQuery(format!("{name} must not be empty")));
        }
        match slot {
            0 => {
                q.status = Some(JobStatus::parse(&value).ok_or_else(|| {
                    Problem::InvalidQuery(format!(
                        "status must be one of pending, running, succeeded, failed, canceled \
                         (got {:?})",
                        clip(&value)
                    ))
                })?);
            }
            1 => q.route = Some(value.into_owned()),
            2 => q.limit = limit(&value)?,
            _ => {
                q.after = Some(decode_cursor(&value).ok_or_else(|| {
                    Problem::InvalidQuery(
                        "cursor is not one this gateway hands out; send next_cursor as given"
                            .into(),
                    )
                })?);
            }
        }
    }
    Ok(q)
}

fn limit(value: &str) -> Result<usize, Problem> {
    // Plain digits only (no sign, no spaces): `usize::from_str` would take "+5".
    let n = value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<usize>().ok())
        .flatten()
        .filter(|n| (1..=MAX_LIMIT).contains(n));
    n.ok_or_else(|| {
        Problem::InvalidQuery(format!(
            "limit must be an integer from 1 to {MAX_LIMIT} (got {:?})",
            clip(value)
        ))
    })
}

fn twice(name: &str) -> Problem {
    Problem::InvalidQuery(format!("{name} is given more than once"))
}

/// At most 64 characters of a client's value, for a problem's detail.
fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}

/// The wire form of a position (see the module notes). Job ids are the gateway's own
/// UUIDs; one that is not is a corrupt row, reported as a store error.
pub fn encode_cursor(c: &Cursor) -> Result<String, StoreError> {
    let id = uuid::Uuid::parse_str(&c.id)
        .map_err(|_| StoreError::new(format!("job id {:?} is not a UUID", c.id)))?;
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&c.created_at.to_be_bytes());
    bytes[8..].copy_from_slice(id.as_bytes());
    Ok(BASE64URL.encode(bytes))
}

/// A position from its wire form; `None` unless it is 32 base64url characters.
pub fn decode_cursor(s: &str) -> Option<Cursor> {
    if s.len() != CURSOR_LEN {
        return None;
    }
    let bytes = BASE64URL.decode(s).ok()?;
    let (at, id) = bytes.split_first_chunk::<8>()?;
    let id = uuid::Uuid::from_slice(id).ok()?;
    Some(Cursor {
        created_at: i64::from_be_bytes(*at),
        id: id.to_string(),
    })
}

/// The next page's URL: `prefix` (the absolute job API) with the filters, the limit and
/// the cursor.
fn next_url(prefix: &str, q: &ListQuery, cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(status) = q.status {
        query.append_pair("status", status.as_str());
    }
    if let Some(route) = &q.route {
        query.append_pair("route", route);
    }
    query.append_pair("limit", &q.limit().to_string());
    query.append_pair("cursor", cursor);
    format!("{prefix}?{}", query.finish())
}

#[cfg(test)]
mod tests;
