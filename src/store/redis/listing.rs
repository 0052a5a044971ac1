//! Listing and purge on the [`RedisStore`](super::RedisStore), one script each.
//!
//! A tenant's jobs are the sorted set `P tenant:{tenant}:jobs` (score `created_at`, member
//! the id), written by `create.lua` and emptied by `sweep.lua` and `purge.lua` in the same
//! scripts that create and delete the jobs, so a listing reads that set and never `SCAN`s.
//! `list.lua` walks it from the cursor by rank (`ZREVRANK` of the cursor's job, or a count
//! of what sorts before its position once that job is gone) under the page rules of
//! [`crate::store::listing`], and returns each chosen job's fields except its header
//! lists and bodies; [`decode_summary`] fills those in empty.
//!
//! Jobs created by a gateway from before this set existed are not in it: they still answer
//! `GET` but are not listed, and leave with their retention. Entries whose job an older
//! gateway swept are skipped, and dropped by the listing that meets them.

use redis::Value;

use super::codec::{arg, decode_job, flag, num};
use super::scripts::{item, items, tagged, unexpected};
use super::RedisStore;
use crate::store::headers::encode_headers;
use crate::store::listing::{self, Cursor, ListQuery, Page, Purged};
use crate::store::model::{Job, JobStatus, Millis};
use crate::store::StoreError;

/// See [`JobStore::list`](crate::store::JobStore::list).
pub(super) async fn list(
    store: &RedisStore,
    tenant: &str,
    query: &ListQuery,
    now: Millis,
) -> Result<Page, StoreError> {
    let after = query.after.as_ref();
    let args = vec![
        arg(tenant),
        arg(query.status.map(JobStatus::as_str).unwrap_or_default()),
        flag(query.route.is_some()),
        arg(query.route.as_deref().unwrap_or_default()),
        num(query.limit()),
        flag(after.is_some()),
        after.map(|c| num(c.created_at)).unwrap_or_default(),
        after.map(|c| arg(&c.id)).unwrap_or_default(),
        num(now),
        num(listing::SCAN_LIMIT),
    ];
    page(store.eval(&store.scripts.list, args).await?)
}

/// The script's `{next_created_at, next_id, {job fields...}, ...}` reply.
fn page(reply: Value) -> Result<Page, StoreError> {
    let bad = |what: &dyn std::fmt::Debug| {
        StoreError::new(format!("list: unexpected script reply {what:?}"))
    };
    let Value::Array(parts) = reply else {
        return Err(bad(&reply));
    };
    let mut parts = parts.into_iter();
    let (Some(at), Some(id)) = (parts.next(), parts.next()) else {
        return Err(bad(&"fewer than two items"));
    };
    let at = String::from_utf8(item(at)?).map_err(|e| bad(&e))?;
    let id = String::from_utf8(item(id)?).map_err(|e| bad(&e))?;
    let next = match (at.as_str(), id) {
        ("", _) => None,
        (at, id) => Some(Cursor {
            created_at: at.parse().map_err(|_| bad(&at))?,
            id,
        }),
    };
    let jobs = parts
        .map(|fields| decode_summary(items(fields)?))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page { jobs, next })
}

/// A job from its hash without the header lists and bodies (`field, value, ...`), as
/// [`Job::summary`] has it: empty lists and bodies, the response's only where it has a
/// status.
fn decode_summary(mut pairs: Vec<Vec<u8>>) -> Result<Job, StoreError> {
    let empty_list = encode_headers(&Vec::new());
    let has_response = pairs.chunks(2).any(|p| p[0] == b"resp_status");
    pairs.extend([
        arg("req_headers"),
        empty_list.clone(),
        arg("req_body"),
        Vec::new(),
    ]);
    if has_response {
        pairs.extend([
            arg("resp_headers"),
            empty_list,
            arg("resp_body"),
            Vec::new(),
        ]);
    }
    decode_job(pairs)
}

/// See [`JobStore::purge`](crate::store::JobStore::purge).
pub(super) async fn purge(
    store: &RedisStore,
    tenant: &str,
    id: &str,
    now: Millis,
) -> Result<Purged, StoreError> {
    let args = vec![arg(tenant), arg(id), num(now)];
    let (tag, rest) = tagged(store.eval(&store.scripts.purge, args).await?)?;
    let text = |i: usize| rest.get(i).map(|v| String::from_utf8_lossy(v).into_owned());
    match tag.as_str() {
        "done" => Ok(Purged::Done),
        "unfinished" => {
            let status = text(0).unwrap_or_default();
            JobStatus::parse(&status)
                .map(Purged::Unfinished)
                .ok_or_else(|| unexpected("purge", &status))
        }
        "notice" => Ok(Purged::NoticePending(
            text(0).and_then(|at| at.parse().ok()),
        )),
        "expired" => Ok(Purged::Expired),
        "missing" => Ok(Purged::Missing),
        other => Err(unexpected("purge", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_are_taken_apart_or_refused() {
        let end = Value::Array(vec![bulk(""), bulk("")]);
        assert_eq!(
            page(end).unwrap(),
            Page {
                jobs: Vec::new(),
                next: None
            }
        );
        let more = Value::Array(vec![bulk("17"), bulk("j")]);
        let next = page(more).unwrap().next;
        assert_eq!(
            next,
            Some(Cursor {
                created_at: 17,
                id: "j".into()
            })
        );
        assert!(page(Value::Array(vec![bulk("x"), bulk("j")])).is_err());
        assert!(page(Value::Array(vec![bulk("")])).is_err());
        assert!(page(Value::Int(1)).is_err());
        let broken = Value::Array(vec![bulk(""), bulk(""), Value::Array(vec![bulk("id")])]);
        assert!(page(broken).is_err());
    }
}
