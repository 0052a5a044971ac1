//! Retries within a run in the SQLite store (`JobStore::note_attempt`): a running job's
//! last error, or one more attempt, in one `IMMEDIATE` transaction like those in `ops`.

use rusqlite::{params, Connection};

use super::tx;
use crate::store::model::RunNote;
use crate::store::StoreError;

/// See [`crate::store::JobStore::note_attempt`]; `false` when the job is not running.
pub(super) fn note_attempt(
    conn: &mut Connection,
    id: &str,
    note: &RunNote,
) -> Result<bool, StoreError> {
    let tx = tx::write(conn)?;
    let changed = match note {
        RunNote::Failed(e) => tx
            .prepare_cached(
                "UPDATE jobs SET error_code = ?2, error_message = ?3 \
                 WHERE id = ?1 AND status = 'running'",
            )?
            .execute(params![id, e.code, e.message])?,
        RunNote::Next => tx
            .prepare_cached(
                "UPDATE jobs SET attempts = attempts + 1 WHERE id = ?1 AND status = 'running'",
            )?
            .execute(params![id])?,
    };
    tx.commit()?;
    Ok(changed == 1)
}
