//! A pending job's queue position in the SQLite store: the job's own place in claim order
//! by primary key, then a count over the partial index `jobs_pending (route, created_at,
//! id) WHERE status = 'pending'` up to it — the same index and order `claim` takes from,
//! so position 1 is the job the next claim returns. Both reads in one deferred
//! transaction (one snapshot), so a claim in between cannot make the count disagree with
//! the job's own row. Cost: O(position) index entries, no job row but the caller's.

use rusqlite::{params, Connection, OptionalExtension};

use super::tx;
use crate::store::StoreError;

/// The job's claim-order key, when it is pending on the route.
const ME: &str = "SELECT created_at FROM jobs WHERE id = ?1 AND route = ?2 AND status = 'pending'";

/// The route's pending jobs up to and including `(created_at, id)` in claim order. A
/// row-value range with both values bound, so the search is bounded on both columns of
/// the index (see the plan test).
pub(super) const AHEAD: &str = "SELECT COUNT(*) FROM jobs \
     WHERE route = ?1 AND status = 'pending' AND (created_at, id) <= (?2, ?3)";

/// See [`JobStore::queue_position`](crate::store::JobStore::queue_position).
pub(super) fn position(
    conn: &mut Connection,
    route: &str,
    id: &str,
) -> Result<Option<u64>, StoreError> {
    let tx = tx::read(conn)?;
    let created_at: Option<i64> = tx
        .prepare_cached(ME)?
        .query_row(params![id, route], |row| row.get(0))
        .optional()?;
    let Some(created_at) = created_at else {
        return Ok(None);
    };
    let n: i64 = tx
        .prepare_cached(AHEAD)?
        .query_row(params![route, created_at, id], |row| row.get(0))?;
    tx.commit()?;
    Ok(u64::try_from(n).ok().filter(|&n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::super::migrations;
    use super::*;

    /// The count is a range search of the pending index, bounded by the row value.
    #[test]
    fn ahead_searches_the_pending_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut conn).unwrap();
        super::super::stable_plans(&conn).unwrap();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {AHEAD}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["r", 1, "x"], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert!(
            plan[0].starts_with("SEARCH jobs USING")
                && plan[0].contains("INDEX jobs_pending (route=? AND (created_at,id)<"),
            "{plan:?}"
        );
    }
}
