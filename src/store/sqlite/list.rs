//! Listing and purge in the SQLite store: `list` reads one range of the `jobs_tenant`
//! index (schema v5) below the cursor, `purge` deletes one finished job and its
//! deliveries. The page rules (order, cursor, the scan limit) are
//! [`crate::store::listing`]'s; this is their SQL.

use rusqlite::{params, Connection, OptionalExtension};

use super::codec::{job_from, job_from_row, summary_columns};
use super::ops::{load, tombstoned};
use super::tx;
use crate::store::listing::{self, Candidate, Cursor, ListQuery, Page, Purged};
use crate::store::model::{Job, JobStatus, Millis};
use crate::store::StoreError;

/// The entries of tenant `?1` after position `(?2, ?3)` in list order, at most `?4`: the
/// filter columns only. The row-value comparison is the cursor; with the index's order it
/// makes this a range search of `jobs_tenant` with no sort (see the plan test).
pub(super) const CANDIDATES: &str = "SELECT created_at, id, status, route, expires_at \
     FROM jobs WHERE tenant = ?1 AND (created_at, id) < (?2, ?3) \
     ORDER BY created_at DESC, id DESC LIMIT ?4";

/// One listed job by id, as a summary (no bodies).
const SUMMARY_BY_ID: &str = concat!(
    "SELECT ",
    summary_columns!(),
    job_from!(),
    " WHERE j.id = ?1"
);

/// See [`JobStore::list`](crate::store::JobStore::list).
pub(super) fn list(
    conn: &mut Connection,
    tenant: &str,
    query: &ListQuery,
    now: Millis,
) -> Result<Page, StoreError> {
    // One deferred transaction: the candidates and the jobs are read at one instant.
    let tx = tx::read(conn)?;
    // Without a cursor, start above every real position: ids are never compared past a
    // larger `created_at`.
    let (created_at, id) = match &query.after {
        Some(c) => (c.created_at, c.id.as_str()),
        None => (Millis::MAX, ""),
    };
    let read = i64::try_from(listing::SCAN_LIMIT + 1).unwrap_or(i64::MAX);
    let candidates = tx
        .prepare_cached(CANDIDATES)?
        .query_map(params![tenant, created_at, id, read], |row| {
            Ok((
                row.get::<_, Millis>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<Millis>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(created_at, id, status, route, expires_at)| {
            let status = JobStatus::parse(&status)
                .ok_or_else(|| StoreError::new(format!("job {id}: unknown status {status:?}")))?;
            Ok(Candidate {
                at: Cursor { created_at, id },
                status,
                route,
                expires_at,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (chosen, next) = listing::walk(query, now, candidates);
    let mut jobs = Vec::with_capacity(chosen.len());
    for at in &chosen {
        if let Some(job) = summary(&tx, &at.id)? {
            jobs.push(job);
        }
    }
    Ok(Page { jobs, next })
}

fn summary(tx: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    tx.prepare_cached(SUMMARY_BY_ID)?
        .query_row([id], |row| Ok(job_from_row(row)))
        .optional()?
        .transpose()
}

/// See [`JobStore::purge`](crate::store::JobStore::purge). The idempotency key is a column
/// of the row, so it goes with it; `tenant_counts` holds unfinished jobs only and is
/// untouched.
pub(super) fn purge(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    now: Millis,
) -> Result<Purged, StoreError> {
    let tx = tx::write(conn)?;
    match load(&tx, id)? {
        Some(job) if job.tenant != tenant => return Ok(Purged::Missing),
        Some(job) if job.expires_at.is_some_and(|at| at <= now) => return Ok(Purged::Expired),
        Some(job) => {
            if let Err(refused) = listing::purgeable(&job) {
                return Ok(refused);
            }
        }
        None if tombstoned(&tx, Some(tenant), id)? => return Ok(Purged::Expired),
        None => return Ok(Purged::Missing),
    }
    // Deliveries first and explicitly, as in `sweep`: the foreign key's cascade only acts
    // on connections that enabled `foreign_keys`.
    tx.prepare_cached("DELETE FROM deliveries WHERE job_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id])?;
    tx.commit()?;
    Ok(Purged::Done)
}

#[cfg(test)]
mod tests {
    use super::super::migrations;
    use super::*;

    /// A page reads a range of `jobs_tenant` in its own order: no table scan, no sort.
    #[test]
    fn candidates_search_the_tenant_index_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut conn).unwrap();
        super::super::stable_plans(&conn).unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {CANDIDATES}");
        let mut stmt = conn.prepare(&sql).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["t", 1, "x", 10], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert!(
            plan[0].starts_with("SEARCH jobs USING INDEX jobs_tenant (tenant=? AND"),
            "{plan:?}"
        );
    }
}
