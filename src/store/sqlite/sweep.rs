//! `JobStore::sweep` on SQLite: finished jobs past their retention are deleted in batches,
//! each leaving a tombstone (so its id answers `410`, not `404`) until `purge_at`, and old
//! tombstones go too — one write transaction per batch.

use rusqlite::{params, Connection};

use super::ops::sql_limit;
use super::tx;
use crate::store::model::Millis;
use crate::store::{StoreError, TOMBSTONE_FACTOR};

pub(super) fn sweep(
    conn: &mut Connection,
    now: Millis,
    retention_ms: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    let limit = sql_limit(batch);
    let linger = TOMBSTONE_FACTOR.saturating_mul(retention_ms);
    let tx = tx::write(conn)?;
    // Same selection three times inside one write transaction, so all see the same rows.
    // Deliveries go explicitly rather than by the foreign key's cascade, which only acts
    // on connections that enabled `foreign_keys`.
    tx.prepare_cached(
        "DELETE FROM deliveries WHERE job_id IN (SELECT id FROM jobs WHERE expires_at <= ?1 \
         ORDER BY expires_at, id LIMIT ?2)",
    )?
    .execute(params![now, limit])?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO tombstones (id, tenant, purge_at) \
         SELECT id, tenant, expires_at + ?3 FROM jobs WHERE expires_at <= ?1 \
         ORDER BY expires_at, id LIMIT ?2",
    )?
    .execute(params![now, limit, linger])?;
    let deleted = tx
        .prepare_cached(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE expires_at <= ?1 \
             ORDER BY expires_at, id LIMIT ?2)",
        )?
        .execute(params![now, limit])?;
    tx.prepare_cached(
        "DELETE FROM tombstones WHERE id IN (SELECT id FROM tombstones WHERE purge_at <= ?1 \
         ORDER BY purge_at, id LIMIT ?2)",
    )?
    .execute(params![now, limit])?;
    tx.commit()?;
    Ok(deleted)
}
