//! The SQL of each [`JobStore`](crate::jobs::JobStore) operation, on a plain connection.
//!
//! Every function is one transaction: writes use `IMMEDIATE` so the write lock is taken
//! before the first read (no `SQLITE_BUSY` half-way through a read-then-write), reads a
//! deferred one so a job and its tombstone are seen at one instant. The caller holds the
//! connection's mutex and runs this on the blocking pool. Deliveries (callback, admission)
//! change in the same transactions as their jobs: created with them, made due by every
//! terminal transition, swept with them (their SQL, and the delivery operations
//! themselves, are in `deliveries`).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::codec::{job_columns, job_from, job_from_row};
use super::deliveries::{insert_deliveries, schedule_deliveries, schedule_started};
use super::tx;
use crate::store::headers::encode_headers;
use crate::store::model::{Job, JobError, Millis, NewJob, Outcome};
use crate::store::{Canceled, Created, Lookup, Recovery, StoreError};

const SELECT_BY_ID: &str = concat!("SELECT ", job_columns!(), job_from!(), " WHERE j.id = ?1");

/// How many jobs of route `?1` are running: `claim`'s limit check (index `jobs_running`).
pub(super) const RUNNING_COUNT: &str =
    "SELECT COUNT(*) FROM jobs WHERE route = ?1 AND status = 'running'";

/// Job `id` with its delivery, as `get` returns it.
pub(super) fn load(tx: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    tx.prepare_cached(SELECT_BY_ID)?
        .query_row([id], |row| Ok(job_from_row(row)))
        .optional()?
        .transpose()
}

/// Whether a swept job `id` of `tenant` (`None`: of any tenant) left a tombstone.
pub(super) fn tombstoned(
    tx: &Connection,
    tenant: Option<&str>,
    id: &str,
) -> Result<bool, StoreError> {
    let owner: Option<String> = tx
        .prepare_cached("SELECT tenant FROM tombstones WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(owner.is_some() && (tenant.is_none() || owner.as_deref() == tenant))
}

/// One fewer unfinished job for `tenant`; the row goes at zero so the table only holds
/// tenants with work in flight.
fn decrement(tx: &Connection, tenant: &str) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE tenant_counts SET unfinished = unfinished - 1 WHERE tenant = ?1")?
        .execute([tenant])?;
    tx.prepare_cached("DELETE FROM tenant_counts WHERE tenant = ?1 AND unfinished <= 0")?
        .execute([tenant])?;
    Ok(())
}

/// `load` for a job this transaction just changed, so it must exist.
pub(super) fn reload(tx: &Connection, id: &str) -> Result<Job, StoreError> {
    load(tx, id)?.ok_or_else(|| StoreError::new(format!("job {id} vanished mid-transaction")))
}

fn expiry(now: Millis, retention_ms: i64) -> Millis {
    now.saturating_add(retention_ms)
}

pub(super) fn sql_limit(batch: usize) -> i64 {
    i64::try_from(batch).unwrap_or(i64::MAX)
}

/// `create`'s statements inside the caller's write transaction (or a savepoint of it:
/// `group` runs many in one transaction, one fsync for all).
pub(super) fn insert_job(
    tx: &Connection,
    job: NewJob,
    max_queued: u64,
    now: Millis,
) -> Result<Created, StoreError> {
    // The key check comes first: a retry of an accepted job is answered with that job even
    // when the tenant's queue is full now.
    if let Some(key) = &job.idempotency_key {
        let existing = tx
            .prepare_cached(concat!(
                "SELECT ",
                job_columns!(),
                job_from!(),
                " WHERE j.tenant = ?1 AND j.route = ?2 AND j.idem_key = ?3"
            ))?
            .query_row(params![job.tenant, job.route, key], |row| {
                Ok(job_from_row(row))
            })
            .optional()?
            .transpose()?;
        if let Some(existing) = existing {
            return Ok(if existing.fingerprint == job.fingerprint {
                Created::Existing(existing)
            } else {
                Created::KeyConflict
            });
        }
    }
    let unfinished: i64 = tx
        .prepare_cached("SELECT unfinished FROM tenant_counts WHERE tenant = ?1")?
        .query_row([&job.tenant], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    if u64::try_from(unfinished).unwrap_or(0) >= max_queued {
        return Ok(Created::QueueFull);
    }
    let job = job.into_job(now);
    tx.prepare_cached(
        "INSERT INTO jobs (id, tenant, route, status, created_at, updated_at, idem_key, \
         fingerprint, req_method, req_target, req_headers, req_body, attempts, kind, deadline) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13)",
    )?
    .execute(params![
        job.id,
        job.tenant,
        job.route,
        job.status.as_str(),
        job.created_at,
        job.idempotency_key,
        job.fingerprint,
        job.request.method,
        job.request.target,
        encode_headers(&job.request.headers),
        job.request.body.as_ref(),
        job.kind.as_str(),
        job.deadline,
    ])?;
    insert_deliveries(tx, &job)?;
    tx.prepare_cached(
        "INSERT INTO tenant_counts (tenant, unfinished) VALUES (?1, 1) \
         ON CONFLICT (tenant) DO UPDATE SET unfinished = unfinished + 1",
    )?
    .execute([&job.tenant])?;
    Ok(Created::New(job))
}

pub(super) fn get(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    now: Millis,
) -> Result<Lookup, StoreError> {
    let tx = tx::read(conn)?;
    Ok(match load(&tx, id)? {
        Some(job) if job.tenant != tenant => Lookup::Missing,
        Some(job) if job.expires_at.is_some_and(|at| at <= now) => Lookup::Expired,
        Some(job) => Lookup::Found(job),
        None if tombstoned(&tx, Some(tenant), id)? => Lookup::Expired,
        None => Lookup::Missing,
    })
}

/// [`get`] without the tenant check (signed result URLs): any tombstone means expired.
pub(super) fn get_unscoped(
    conn: &mut Connection,
    id: &str,
    now: Millis,
) -> Result<Lookup, StoreError> {
    let tx = tx::read(conn)?;
    Ok(match load(&tx, id)? {
        Some(job) if job.expires_at.is_some_and(|at| at <= now) => Lookup::Expired,
        Some(job) => Lookup::Found(job),
        None if tombstoned(&tx, None, id)? => Lookup::Expired,
        None => Lookup::Missing,
    })
}

pub(super) fn claim(
    conn: &mut Connection,
    route: &str,
    max_running: u32,
    lease_until: Millis,
    now: Millis,
) -> Result<Option<Job>, StoreError> {
    let tx = tx::write(conn)?;
    // Counted inside the `IMMEDIATE` transaction: no other process can start a job of this
    // route between the count and the claim, so the limit holds across processes.
    let running: i64 = tx
        .prepare_cached(RUNNING_COUNT)?
        .query_row(params![route], |row| row.get(0))?;
    if running >= i64::from(max_running) {
        return Ok(None);
    }
    // `RETURNING` cannot join the delivery, so the claimed row is read back by id.
    let id: Option<String> = tx
        .prepare_cached(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?2, \
             updated_at = ?3 WHERE id = (SELECT id FROM jobs WHERE route = ?1 \
             AND status = 'pending' ORDER BY created_at, id LIMIT 1) RETURNING id",
        )?
        .query_row(params![route, lease_until, now], |row| row.get(0))
        .optional()?;
    if let Some(id) = &id {
        schedule_started(&tx, id, now)?;
    }
    let job = id.map(|id| reload(&tx, &id)).transpose()?;
    tx.commit()?;
    Ok(job)
}

pub(super) fn renew(
    conn: &mut Connection,
    id: &str,
    lease_until: Millis,
) -> Result<bool, StoreError> {
    let tx = tx::write(conn)?;
    let changed = tx
        .prepare_cached("UPDATE jobs SET lease_until = ?2 WHERE id = ?1 AND status = 'running'")?
        .execute(params![id, lease_until])?;
    tx.commit()?;
    Ok(changed == 1)
}

pub(super) fn complete(
    conn: &mut Connection,
    id: &str,
    outcome: Outcome,
    retention_ms: i64,
    now: Millis,
) -> Result<bool, StoreError> {
    let (status, response, error) = outcome.into_parts();
    let tx = tx::write(conn)?;
    let tenant: Option<String> = tx
        .prepare_cached(
            "UPDATE jobs SET status = ?2, updated_at = ?3, expires_at = ?4, lease_until = NULL, \
             resp_status = ?5, resp_headers = ?6, resp_body = ?7, error_code = ?8, \
             error_message = ?9 WHERE id = ?1 AND status = 'running' RETURNING tenant",
        )?
        .query_row(
            params![
                id,
                status.as_str(),
                now,
                expiry(now, retention_ms),
                response.as_ref().map(|r| r.status),
                response.as_ref().map(|r| encode_headers(&r.headers)),
                response.as_ref().map(|r| r.body.as_ref()),
                error.as_ref().map(|e| e.code.as_str()),
                error.as_ref().map(|e| e.message.as_str()),
            ],
            |row| row.get(0),
        )
        .optional()?;
    let Some(tenant) = tenant else {
        return Ok(false);
    };
    decrement(&tx, &tenant)?;
    schedule_deliveries(&tx, id, now)?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn cancel(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    why: &JobError,
    retention_ms: i64,
    now: Millis,
) -> Result<Canceled, StoreError> {
    let tx = tx::write(conn)?;
    match load(&tx, id)? {
        Some(job) if job.tenant != tenant => return Ok(Canceled::Missing),
        Some(job) if job.expires_at.is_some_and(|at| at <= now) => return Ok(Canceled::Expired),
        Some(job) if job.status.is_terminal() => return Ok(Canceled::AlreadyTerminal(job)),
        Some(_) => {}
        None if tombstoned(&tx, Some(tenant), id)? => return Ok(Canceled::Expired),
        None => return Ok(Canceled::Missing),
    }
    tx.prepare_cached(
        "UPDATE jobs SET status = 'canceled', updated_at = ?2, expires_at = ?3, \
         lease_until = NULL, error_code = ?4, error_message = ?5 WHERE id = ?1",
    )?
    .execute(params![
        id,
        now,
        expiry(now, retention_ms),
        why.code,
        why.message
    ])?;
    decrement(&tx, tenant)?;
    schedule_deliveries(&tx, id, now)?;
    let job = reload(&tx, id)?;
    tx.commit()?;
    Ok(Canceled::Done(job))
}

/// Running jobs due for recovery (`?1` now, `?2` ignore leases); a missing lease counts as
/// expired so that no job can stay running forever. A macro so queries can `concat!` it.
macro_rules! stale_where {
    () => {
        " WHERE status = 'running' AND (?2 OR lease_until IS NULL OR lease_until < ?1)"
    };
}

/// The routes of the jobs `recover` would handle now.
pub(super) fn stale_routes(
    conn: &mut Connection,
    now: Millis,
    ignore_leases: bool,
) -> Result<Vec<String>, StoreError> {
    let tx = tx::read(conn)?;
    let mut stmt = tx.prepare_cached(concat!("SELECT DISTINCT route FROM jobs", stale_where!()))?;
    let routes = stmt
        .query_map(params![now, ignore_leases], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(routes)
}

pub(super) fn recover(
    conn: &mut Connection,
    now: Millis,
    ignore_leases: bool,
    retention_ms: i64,
    decisions: &HashMap<String, Recovery>,
) -> Result<usize, StoreError> {
    let tx = tx::write(conn)?;
    let stale = {
        let mut stmt = tx.prepare_cached(concat!(
            "SELECT id, tenant, route FROM jobs",
            stale_where!()
        ))?;
        let rows = stmt.query_map(params![now, ignore_leases], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let mut handled = 0;
    for (id, tenant, route) in stale {
        match decisions.get(&route) {
            Some(Recovery::Retry) => {
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'pending', lease_until = NULL, updated_at = ?2 \
                     WHERE id = ?1",
                )?
                .execute(params![id, now])?;
            }
            Some(Recovery::Fail) => {
                tx.prepare_cached(
                    "UPDATE jobs SET status = 'failed', lease_until = NULL, updated_at = ?2, \
                     expires_at = ?3, error_code = 'interrupted', \
                     error_message = 'the gateway stopped while this job was running' \
                     WHERE id = ?1",
                )?
                .execute(params![id, now, expiry(now, retention_ms)])?;
                decrement(&tx, &tenant)?;
                schedule_deliveries(&tx, &id, now)?;
            }
            // Its route turned stale after `decide` was asked: the next run handles it.
            None => continue,
        }
        handled += 1;
    }
    tx.commit()?;
    Ok(handled)
}
