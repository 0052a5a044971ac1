//! The SQL of the callback-delivery operations of the SQLite store (`claim_delivery`,
//! `record_attempt`, `redeliver`), each one `IMMEDIATE` transaction like those in `ops`.
//!
//! A claim reads the front of each due index (`deliveries_first` for never-attempted
//! deliveries, bounded by `now - first_delay_ms`; `deliveries_retry` for the others, bounded
//! by `now`) and takes the earlier of the two; see `migrations` for why there are two.
//! Leased rows are still pending and so still in the indexes: the scan steps over them,
//! which costs at most the number of attempts in flight.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::ops::{load, reload, tombstoned, write_tx};
use crate::jobs::model::{Attempt, AttemptNext, Delivery, DeliveryState, Job, Millis};
use crate::jobs::store::{Redeliver, StoreError};

/// The earliest unleased never-attempted delivery with `next_at <= ?1` (`?1` = now minus
/// the first delay, `?2` = now). The literal `attempts = 0` lets SQLite use the partial
/// index `deliveries_first`.
const FIRST_DUE: &str = "SELECT job_id, next_at FROM deliveries \
     WHERE state = 'pending' AND attempts = 0 AND next_at <= ?1 \
     AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at, job_id LIMIT 1";

/// The earliest unleased retried delivery with `next_at <= ?1` (`?2` = now); uses
/// `deliveries_retry`.
const RETRY_DUE: &str = "SELECT job_id, next_at FROM deliveries \
     WHERE state = 'pending' AND attempts > 0 AND next_at <= ?1 \
     AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_at, job_id LIMIT 1";

fn earliest(
    tx: &Transaction<'_>,
    sql: &'static str,
    cutoff: Millis,
    now: Millis,
) -> Result<Option<(Millis, String)>, StoreError> {
    Ok(tx
        .prepare_cached(sql)?
        .query_row(params![cutoff, now], |row| Ok((row.get(1)?, row.get(0)?)))
        .optional()?)
}

pub(super) fn claim_delivery(
    conn: &mut Connection,
    now: Millis,
    first_delay_ms: i64,
    lease_until: Millis,
) -> Result<Option<(Delivery, Job)>, StoreError> {
    let tx = write_tx(conn)?;
    // Due times are compared here rather than in SQL so that the arithmetic saturates
    // exactly as in the memory store.
    let first = earliest(&tx, FIRST_DUE, now.saturating_sub(first_delay_ms), now)?
        .map(|(at, id)| (at.saturating_add(first_delay_ms), id));
    let retry = earliest(&tx, RETRY_DUE, now, now)?;
    let next = match (first, retry) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some((_, id)) = next else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE deliveries SET lease_until = ?2 WHERE job_id = ?1")?
        .execute(params![id, lease_until])?;
    let job = reload(&tx, &id)?;
    let delivery = job
        .callback
        .clone()
        .ok_or_else(|| StoreError::new(format!("job {id} lost its delivery")))?;
    tx.commit()?;
    Ok(Some((delivery, job)))
}

pub(super) fn record_attempt(
    conn: &mut Connection,
    job_id: &str,
    attempt: Attempt,
) -> Result<(), StoreError> {
    let (state, next_at) = match attempt.next {
        AttemptNext::Retry(at) => (DeliveryState::Pending, Some(at)),
        AttemptNext::Delivered => (DeliveryState::Delivered, None),
        AttemptNext::GiveUp => (DeliveryState::Failed, None),
        AttemptNext::Stop => (DeliveryState::Stopped, None),
    };
    let tx = write_tx(conn)?;
    // No row (the job was swept meanwhile, or never had a callback): nothing to record.
    tx.prepare_cached(
        "UPDATE deliveries SET attempts = attempts + 1, last_status = ?2, last_error = ?3, \
         lease_until = NULL, state = ?4, next_at = ?5 WHERE job_id = ?1",
    )?
    .execute(params![
        job_id,
        attempt.status,
        attempt.error,
        state.as_str(),
        next_at
    ])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn redeliver(
    conn: &mut Connection,
    tenant: &str,
    id: &str,
    now: Millis,
) -> Result<Redeliver, StoreError> {
    let tx = write_tx(conn)?;
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
         lease_until = NULL, last_status = NULL, last_error = NULL WHERE job_id = ?1",
    )?
    .execute(params![id, now])?;
    let job = reload(&tx, id)?;
    tx.commit()?;
    Ok(Redeliver::Scheduled(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim queries must be range scans of their partial indexes, never a scan of
    /// every delivery nor a sort.
    #[test]
    fn claim_queries_scan_their_due_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        for (sql, index) in [
            (FIRST_DUE, "deliveries_first"),
            (RETRY_DUE, "deliveries_retry"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(params![0, 0], |row| row.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                plan,
                [format!("SEARCH deliveries USING INDEX {index} (next_at<?)")],
                "{sql}"
            );
        }
    }
}
