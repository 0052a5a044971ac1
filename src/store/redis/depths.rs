//! [`JobStore::depths`](crate::jobs::JobStore::depths) on the
//! [`RedisStore`](super::RedisStore): unfinished jobs per route, for `/metrics`.
//!
//! The pending queues (`P pending:{route}`) have to be found by name. Two steps:
//!
//! 1. **The route names.** `create` adds every route it queues a job for to the set
//!    `P route-names`, so a scrape reads them with one `SMEMBERS` (O(routes ever used)).
//!    Data written before that set existed is found once: while the marker
//!    `P route-names:scanned` is missing, the routes are collected by **`SCAN`** with
//!    `MATCH P pending:*` (the prefix glob-escaped: `[jobs].key_prefix` is configuration and
//!    may hold `*?[]\`) and `COUNT` [`SCAN_COUNT`] from this process, added to the set, and
//!    the marker is set. Never `KEYS`, and not a `SCAN` loop inside a script: either walks
//!    the whole keyspace in one atomic step and would stall every replica's commands for
//!    that long; `SCAN` steps interleave with other clients. (During a rolling upgrade an
//!    old replica queuing the first job of a brand-new route does not add its name; that
//!    route's pending count is missing from `/metrics` until a new replica queues one.)
//! 2. **One read-only script** (`lua/depths.lua`) then counts everything at one instant:
//!    `ZCARD` of each queue found, and the running jobs from the `P running` index (checking
//!    each job's status). A job moving between pending and running during the scrape
//!    (claim, recover's retry) is thus counted exactly once — separate `ZCARD` / `SCARD`
//!    commands could see it in both states or in neither — and routes with running but no
//!    pending jobs need no scan at all.
//!
//! What concurrency can still do: a route whose first job is queued between the
//! `SMEMBERS` and the script reports no pending jobs for this scrape and is seen by the
//! next one. No count is ever inflated or double-counted.
//!
//! Cost per scrape: one `SMEMBERS` and the script, O(routes + running jobs). The one-time
//! `SCAN` visits every key of the database (measured at about 0.7 µs of Redis time per key,
//! ~0.8 s for a million keys, in ~1000 steps of under a millisecond each).
//!
//! Stores whose prefixes extend one another (`p:` and `p:pending:x`) cannot be told apart
//! by a pattern; the script at least skips keys that are not queues.

use std::collections::BTreeSet;

use redis::Value;

use super::RedisStore;
use crate::store::{RouteDepth, StoreError};

/// Keys `SCAN` looks at per step: large enough to keep round trips few on a big keyspace,
/// small enough that one step holds Redis for under a millisecond (a larger `COUNT` does
/// not make the walk cheaper, only each step longer).
const SCAN_COUNT: usize = 1000;

/// `prefix` with the glob metacharacters of Redis patterns (`*?[]\`) escaped, so the
/// pattern matches it literally.
pub(super) fn glob_escape(prefix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len());
    for b in prefix.bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The routes that have a pending queue, as `SCAN` finds them (deduplicated: `SCAN` may
/// return a key twice).
async fn queued_routes(store: &RedisStore) -> Result<BTreeSet<Vec<u8>>, StoreError> {
    let head = format!("{}pending:", store.prefix).into_bytes();
    let mut pattern = glob_escape(&store.prefix);
    pattern.extend_from_slice(b"pending:*");
    let mut conn = store.conn.clone();
    let mut routes = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::new(format!("Redis: {e}")))?;
        routes.extend(
            keys.into_iter()
                .filter_map(|key| key.strip_prefix(head.as_slice()).map(<[u8]>::to_vec)),
        );
        if next == 0 {
            return Ok(routes);
        }
        cursor = next;
    }
}

/// The names in `P route-names`, after filling the set from a `SCAN` once (see the module
/// notes).
async fn route_names(store: &RedisStore) -> Result<BTreeSet<Vec<u8>>, StoreError> {
    let names = format!("{}route-names", store.prefix);
    let marker = format!("{names}:scanned");
    let mut conn = store.conn.clone();
    let redis_err = |e: redis::RedisError| StoreError::new(format!("Redis: {e}"));
    let scanned: bool = redis::cmd("EXISTS")
        .arg(&marker)
        .query_async(&mut conn)
        .await
        .map_err(redis_err)?;
    if !scanned {
        let found = queued_routes(store).await?;
        if !found.is_empty() {
            redis::cmd("SADD")
                .arg(&names)
                .arg(found.into_iter().collect::<Vec<_>>())
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_err)?;
        }
        redis::cmd("SET")
            .arg(&marker)
            .arg(1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)?;
    }
    let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
        .arg(&names)
        .query_async(&mut conn)
        .await
        .map_err(redis_err)?;
    Ok(members.into_iter().collect())
}

/// Both steps; see the module notes.
pub(super) async fn depths(store: &RedisStore) -> Result<Vec<RouteDepth>, StoreError> {
    let routes = route_names(store).await?;
    let reply = store
        .eval(&store.scripts.depths, routes.into_iter().collect())
        .await?;
    Ok(RouteDepth::tally(triples(reply)?))
}

/// The script's `{route, pending, running, ...}` reply.
fn triples(reply: Value) -> Result<Vec<(String, u64, u64)>, StoreError> {
    let bad = |what: &dyn std::fmt::Debug| {
        StoreError::new(format!("depths: unexpected script reply {what:?}"))
    };
    let Value::Array(items) = reply else {
        return Err(bad(&reply));
    };
    let count = |v: &Value| match v {
        Value::Int(n) => u64::try_from(*n).map_err(|_| bad(v)),
        other => Err(bad(other)),
    };
    items
        .chunks(3)
        .map(|chunk| match chunk {
            [Value::BulkString(route), pending, running] => Ok((
                String::from_utf8_lossy(route).into_owned(),
                count(pending)?,
                count(running)?,
            )),
            other => Err(bad(&other)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("prefer:"), b"prefer:".to_vec());
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), br"a\*b\?c\[d\]e\\f".to_vec());
    }

    #[test]
    fn replies_are_taken_apart_or_refused() {
        let route = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![route("a"), Value::Int(2), Value::Int(0)]);
        assert_eq!(triples(reply).unwrap(), vec![("a".to_owned(), 2, 0)]);
        assert_eq!(triples(Value::Array(Vec::new())).unwrap(), Vec::new());
        assert!(triples(Value::Array(vec![route("a"), Value::Int(2)])).is_err());
        assert!(triples(Value::Array(vec![
            route("a"),
            Value::Int(-1),
            Value::Int(0)
        ]))
        .is_err());
        assert!(triples(Value::Int(1)).is_err());
    }
}
