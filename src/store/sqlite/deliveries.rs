//! The SQL of deliveries in the SQLite store (callbacks and admission releases): the rows
//! written with their jobs (`insert_deliveries` at create, `schedule_deliveries` at every
//! terminal transition, both called from `ops` inside its transactions), and the delivery
//! operations (`claim_delivery`, `record_attempt`, `redeliver`), each one `IMMEDIATE`
//! transaction like those in `ops`.
//!
//! A claim is for one kind. It reads the front of that kind's entries in each due index
//! (`deliveries_first` for never-attempted deliveries, bounded by `now - first_delay_ms`;
//! `deliveries_retry` for the others, bounded by `now`) and takes the earlier of the two;
//! see `migrations` for why there are two, and why `kind` leads both. Leased rows are
//! still pending and so still in the indexes: the scan steps over them, which costs at
//! most the number of attempts of that kind in flight.

use rusqlite::{params, Connection, OptionalExtension};

use super::ops::{load, reload, tombstoned};
use super::tx;
use crate::store::model::{Attempt, Delivery, DeliveryKind, Job, Millis};
use crate::store::{Redeliver, StoreError};

/// The earliest unleased never-attempted delivery of kind `?3` with `next_at <= ?1` (`?1`
/// = now minus the first delay, `?2` = now). The literal `attempts = 0` lets SQLite use
/// the partial index `deliveries_first`.
const FIRST_DUE: &str = "SELECT job_id, next_at FROM deliveries \
     WHERE kind = ?3 AND state = 'pending' AND attempts = 0 AND next_at <= ?1 \
     AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at, job_id LIMIT 1";

/// The earliest unleased retried delivery of kind `?3` with `next_at <= ?1` (`?2` = now);
/// uses `deliveries_retry`.
const RETRY_DUE: &str = "SELECT job_id, next_at FROM deliveries \
     WHERE kind = ?3 AND state = 'pending' AND attempts > 0 AND next_at <= ?1 \
     AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at, job_id LIMIT 1";

/// Stores the deliveries a new job carries (waiting; see `NewJob::into_job`).
pub(super) fn insert_deliveries(tx: &Connection, job: &Job) -> Result<(), StoreError> {
    let admission = job.admission.as_ref();
    let rows = [
        (DeliveryKind::Callback, job.callback.as_ref(), None),
        (
            DeliveryKind::Admission,
            admission.map(|a| &a.delivery),
            admission.and_then(|a| a.reservation.as_deref()),
        ),
        (DeliveryKind::Started, job.started.as_ref(), None),
    ];
    for (kind, delivery, reservation) in rows {
        let Some(delivery) = delivery else { continue };
        tx.prepare_cached(
            "INSERT INTO deliveries (job_id, kind, url, state, attempts, reservation) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        )?
        .execute(params![
            job.id,
            kind.as_str(),
            delivery.url,
            delivery.state.as_str(),
            reservation
        ])?;
    }
    Ok(())
}

/// Job `id` was claimed: a waiting `started` event is due now (only the first claim
/// finds it waiting, so a re-run never sends it twice).
pub(super) fn schedule_started(tx: &Connection, id: &str, now: Millis) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'pending', next_at = ?2 \
         WHERE job_id = ?1 AND kind = 'started' AND state = 'waiting'",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Job `id` reached a terminal state: its waiting deliveries are due now — every kind but
/// the `started` event, which a job that never ran leaves unsent.
pub(super) fn schedule_deliveries(
    tx: &Connection,
    id: &str,
    now: Millis,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'pending', next_at = ?2 \
         WHERE job_id = ?1 AND state = 'waiting' AND kind <> 'started'",
    )?
    .execute(params![id, now])?;
    Ok(())
}

fn earliest(
    tx: &Connection,
    sql: &'static str,
    kind: DeliveryKind,
    cutoff: Millis,
    now: Millis,
) -> Result<Option<(Millis, String)>, StoreError> {
    Ok(tx
        .prepare_cached(sql)?
        .query_row(params![cutoff, now, kind.as_str()], |row| {
            Ok((row.get(1)?, row.get(0)?))
        })
        .optional()?)
}

pub(super) fn claim_delivery(
    conn: &mut Connection,
    kind: DeliveryKind,
    now: Millis,
    first_delay_ms: i64,
    lease_until: Millis,
) -> Result<Option<(Delivery, Job)>, StoreError> {
    let tx = tx::write(conn)?;
    // Due times are compared here rather than in SQL so that the arithmetic saturates
    // exactly as in the memory store.
    let first = earliest(
        &tx,
        FIRST_DUE,
        kind,
        now.saturating_sub(first_delay_ms),
        now,
    )?
    .map(|(at, id)| (at.saturating_add(first_delay_ms), id));
    let retry = earliest(&tx, RETRY_DUE, kind, now, now)?;
    let next = match (first, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some((_, id)) = next else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE deliveries SET lease_until = ?3 WHERE job_id = ?1 AND kind = ?2")?
        .execute(params![id, kind.as_str(), lease_until])?;
    let job = reload(&tx, &id)?;
    let delivery = job
        .delivery(kind)
        .cloned()
        .ok_or_else(|| StoreError::new(format!("job {id} lost its {} delivery", kind.as_str())))?;
    tx.commit()?;
    Ok(Some((delivery, job)))
}

pub(super) fn record_attempt(
    conn: &mut Connection,
    job_id: &str,
    kind: DeliveryKind,
    attempt: Attempt,
) -> Result<(), StoreError> {
    let (state, next_at) = attempt.next.state();
    let tx = tx::write(conn)?;
    // No row (the job was swept meanwhile, or never had this delivery): nothing to record.
    tx.prepare_cached(
        "UPDATE deliveries SET attempts = attempts + 1, last_status = ?3, last_error = ?4, \
         lease_until = NULL, state = ?5, next_at = ?6 WHERE job_id = ?1 AND kind = ?2",
    )?
    .execute(params![
        job_id,
        kind.as_str(),
        attempt.status,
        attempt.error,
        state.as_str(),
        next_at
    ])?;
    tx.commit()?;
    Ok(())
}

/// Callbacks only (see the trait).
pub(super) fn redeliver(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    now: Millis,
) -> Result<Redeliver, StoreError> {
    let tx = tx::write(conn)?;
    match load(&tx, id)? {
        Some(job) if job.tenant != tenant => return Ok(Redeliver::Missing),
        Some(job) if job.expires_at.is_some_and(|at| at <= now) => return Ok(Redeliver::Expired),
        Some(job) if !job.status.is_terminal() => return Ok(Redeliver::NotFinished(job)),
        Some(job) if job.callback.is_none() => return Ok(Redeliver::NoCallback(job)),
        Some(_) => {}
        None if tombstoned(&tx, Some(tenant), id)? => return Ok(Redeliver::Expired),
        None => return Ok(Redeliver::Missing),
    }
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?2, \
         lease_until = NULL, last_status = NULL, last_error = NULL \
         WHERE job_id = ?1 AND kind = 'callback'",
    )?
    .execute(params![id, now])?;
    let job = reload(&tx, id)?;
    tx.commit()?;
    Ok(Redeliver::Scheduled(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim queries must be range scans of their kind's entries in their partial
    /// indexes, never a scan of every delivery nor a sort.
    #[test]
    fn claim_queries_scan_their_due_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        super::super::stable_plans(&conn).unwrap();
        for (sql, index) in [
            (FIRST_DUE, "deliveries_first"),
            (RETRY_DUE, "deliveries_retry"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(params![0, 0, "admission"], |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                plan,
                [format!(
                    "SEARCH deliveries USING INDEX {index} (kind=? AND next_at<?)"
                )],
                "{sql}"
            );
        }
    }

    /// Job-returning queries reach each kind's delivery by primary key, never by a scan.
    #[test]
    fn jobs_join_their_deliveries_by_primary_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        super::super::stable_plans(&conn).unwrap();
        let sql = concat!(
            "EXPLAIN QUERY PLAN SELECT ",
            super::super::codec::job_columns!(),
            super::super::codec::job_from!(),
            " WHERE j.id = ?1"
        );
        let mut stmt = conn.prepare(sql).unwrap();
        let plan: Vec<String> = stmt
            .query_map(["x"], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SEARCH j USING INDEX sqlite_autoindex_jobs_1 (id=?)",
                "SEARCH d USING PRIMARY KEY (job_id=? AND kind=?) LEFT-JOIN",
                "SEARCH a USING PRIMARY KEY (job_id=? AND kind=?) LEFT-JOIN",
                "SEARCH s USING PRIMARY KEY (job_id=? AND kind=?) LEFT-JOIN",
            ]
        );
    }
}
