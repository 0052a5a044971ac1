//! [`SqliteStore`]: the embedded, durable [`JobStore`] — one SQLite file per gateway.
//!
//! Decisions:
//! - **One connection behind a `std::sync::Mutex`**, used for reads and writes. SQLite
//!   serialises writers anyway, and every job operation is a few indexed row accesses, so a
//!   pool would add contention, not throughput. The mutex also makes each method atomic
//!   in-process; the explicit `IMMEDIATE` transactions make it atomic against any other
//!   process that opens the file (the write lock is taken up front, so a read-then-write
//!   never fails half-way with `SQLITE_BUSY`).
//! - **All SQLite calls run on `spawn_blocking`** (fsync can take milliseconds); the lock
//!   is only ever taken there, never held across an `.await`. A poisoned lock is recovered:
//!   the panicking call's transaction was rolled back when it unwound.
//! - **Durability**: WAL journal with `synchronous = FULL`, so the commit of `create` is on
//!   disk before it returns `New` and the gateway answers `202`. Concurrent creates share
//!   one transaction and one fsync (`group`: group commit, each still answered only after
//!   the commit that holds it).
//! - **Schema** (v5, see `migrations` for the DDL and each index's purpose): versioned with
//!   `PRAGMA user_version`; a newer file is refused. `jobs` holds one row per job, request
//!   and response verbatim; header lists are length-prefixed blobs (see `codec`) because
//!   values are raw bytes. Queue limits read `tenant_counts`, kept in the same
//!   transactions as the job changes, so `429` never scans. Swept jobs leave `tombstones`
//!   so `get` can still say `Expired`. Departures from the first sketch: tables are
//!   `STRICT`; the claim index is *partial* (`(route, created_at, id) WHERE status =
//!   'pending'`) rather than `(route, status, created_at)`, so it only holds the few
//!   pending rows and already has the tie-break; `tenant_counts` rows are deleted at zero.
//! - **Claim limit** (v3): `claim` counts the route's running jobs in its `IMMEDIATE`
//!   transaction (a covering read of the partial index `jobs_running`) and claims only
//!   under the caller's `max_running`, so the limit holds for every process on the file.
//! - **Callbacks** (v2): a job's callback and its delivery state live in a `deliveries`
//!   table keyed by job id, not in columns on `jobs` — attempts and leases then rewrite a
//!   small row instead of one carrying bodies. Job-returning queries `LEFT JOIN` it
//!   (one primary-key probe); it is written in the same transactions as the job (create,
//!   every terminal transition, sweep). Two partial indexes, "never attempted" and
//!   "attempted", make `claim_delivery` a range scan of each in due order (the first
//!   attempt's extra delay is a claim-time setting, so one index cannot hold both orders).
//!   `jobs.kind` is a column with default `'call'`, which is what every v1 job was.
//! - **Admission releases** (v4): the second delivery a job may carry lives in the same
//!   `deliveries` table, now keyed by `(job_id, kind)`, with the admission's reservation
//!   id on its row; job-returning queries join it as a second primary-key probe. The two
//!   due indexes lead with `kind`, so a claim for one kind is a range scan of only that
//!   kind's due entries.
//! - **Listing** (v5, see `list`): the index `jobs_tenant (tenant, created_at DESC, id
//!   DESC)` is the list order, so a page reads a range of it below the cursor in one
//!   deferred transaction (one snapshot): the candidates' filter columns first, at most
//!   `SCAN_LIMIT` + 1 of them, then only the chosen jobs, without their bodies. A purge
//!   deletes the job row and its delivery rows in one `IMMEDIATE` transaction and writes
//!   no tombstone.
//! - **Queue position** (see `queue`): the job's row by primary key, then a count over
//!   `jobs_pending` up to it, in one read transaction; no schema change.
//! - `renew` moves only the lease, not `updated_at` (it is not a state change).
//! - Every statement goes through `prepare_cached`; a corrupt row is a [`StoreError`].
//! - `recover` asks `decide` per *route* before its transaction (the callback is not
//!   `'static`, so it cannot travel to the blocking thread); the transaction re-selects the
//!   jobs and leaves any route it has no decision for to the next run.
//! - `depths` is one statement (one snapshot): a `UNION ALL` of two `GROUP BY route`
//!   counts, `status = 'pending'` and `status = 'running'`, rather than one `status IN
//!   (...)` query — each half then reads only its partial covering index (`jobs_pending`,
//!   `jobs_running`: unfinished rows, no bodies) instead of scanning every retained job.

mod attempts;
mod codec;
mod deliveries;
mod group;
mod list;
mod migrations;
mod ops;
mod queue;
mod sweep;
mod tx;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;

use super::model::{
    Attempt, Delivery, DeliveryKind, Job, JobError, Millis, NewJob, Outcome, RunNote,
};
use super::{
    Canceled, Created, JobStore, ListQuery, Lookup, Page, Purged, Recovery, Redeliver, RouteDepth,
    StoreError,
};

pub use migrations::latest as schema_version;

/// Unfinished jobs per route; see the module notes for the shape.
const DEPTHS: &str = "SELECT route, COUNT(*), 0 FROM jobs WHERE status = 'pending' GROUP BY route \
     UNION ALL \
     SELECT route, 0, COUNT(*) FROM jobs WHERE status = 'running' GROUP BY route";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection; comfortably above the number of distinct
/// statements in `ops`, so none is ever re-prepared.
const STATEMENT_CACHE: usize = 64;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::new(e)
    }
}

/// The embedded durable job store. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Creates waiting for the next group commit (see `group`).
    creates: Arc<group::Creates>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (or creates) the store at `path`: creates missing parent directories, sets
    /// WAL + `synchronous = FULL`, and migrates the schema. A file written by a newer
    /// gateway (higher schema version) is an error naming both versions.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || open_blocking(&path))
            .await
            .map_err(|e| StoreError::new(format!("opening the store failed: {e}")))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            creates: Arc::default(),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::new(format!("store task failed: {e}")))?
    }
}

/// The query-planner stability guarantee: a plan never depends on the values bound to a
/// statement. Without it, SQLite (built with STAT4, as libsqlite3-sys bundles it) marks
/// statements whose parameters *could* steer the plan — a `LIMIT ?`, a parameter beside a
/// partial index's column — to be re-prepared on every bind, and callgrind showed 4
/// re-prepares per accepted job costing 65 % of its instructions. Every statement here
/// names its partial-index predicates as literals (`status = 'pending'`), so no plan needs
/// a bound value to pick its index; the query-plan tests run with it set.
pub(super) fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    // No path in this error: callers name the file they asked for.
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some file systems (network mounts) cannot do WAL; SQLite then keeps its rollback
        // journal, which is just as durable, only slower with concurrent readers.
        tracing::warn!(path = %path.display(), %mode, "job store is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    stable_plans(&conn)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

// === impl JobStore ===

#[async_trait]
impl JobStore for SqliteStore {
    async fn create(
        &self,
        job: NewJob,
        max_queued: u64,
        now: Millis,
    ) -> Result<Created, StoreError> {
        self.creates.submit(&self.conn, job, max_queued, now).await
    }

    async fn get(&self, tenant: &str, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |conn| ops::get(conn, &tenant, &id, now))
            .await
    }

    async fn get_unscoped(&self, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| ops::get_unscoped(conn, &id, now))
            .await
    }

    async fn claim(
        &self,
        route: &str,
        max_running: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Job>, StoreError> {
        let route = route.to_owned();
        self.with(move |conn| ops::claim(conn, &route, max_running, lease_until, now))
            .await
    }

    async fn renew(&self, id: &str, lease_until: Millis, _now: Millis) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| ops::renew(conn, &id, lease_until))
            .await
    }

    async fn note_attempt(
        &self,
        id: &str,
        note: &RunNote,
        _now: Millis,
    ) -> Result<bool, StoreError> {
        let (id, note) = (id.to_owned(), note.clone());
        self.with(move |conn| attempts::note_attempt(conn, &id, &note))
            .await
    }

    async fn complete(
        &self,
        id: &str,
        outcome: Outcome,
        retention_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |conn| ops::complete(conn, &id, outcome, retention_ms, now))
            .await
    }

    async fn cancel_with(
        &self,
        tenant: &str,
        id: &str,
        why: &JobError,
        retention_ms: i64,
        now: Millis,
    ) -> Result<Canceled, StoreError> {
        let (tenant, id, why) = (tenant.to_owned(), id.to_owned(), why.clone());
        self.with(move |conn| ops::cancel(conn, &tenant, &id, &why, retention_ms, now))
            .await
    }

    async fn recover(
        &self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> Result<usize, StoreError> {
        let routes = self
            .with(move |conn| ops::stale_routes(conn, now, ignore_leases))
            .await?;
        if routes.is_empty() {
            return Ok(0);
        }
        let decisions: HashMap<String, Recovery> = routes
            .into_iter()
            .map(|route| {
                let decision = decide(&route);
                (route, decision)
            })
            .collect();
        self.with(move |conn| ops::recover(conn, now, ignore_leases, retention_ms, &decisions))
            .await
    }

    async fn sweep(
        &self,
        now: Millis,
        retention_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.with(move |conn| sweep::sweep(conn, now, retention_ms, batch))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.prepare_cached("SELECT 1")?
                .query_row([], |row| row.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    async fn depths(&self) -> Result<Vec<RouteDepth>, StoreError> {
        self.with(|conn| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let counts = conn
                .prepare_cached(DEPTHS)?
                .query_map([], |row| {
                    Ok((row.get(0)?, count(row.get(1)?), count(row.get(2)?)))
                })?
                .collect::<Result<Vec<(String, u64, u64)>, _>>()?;
            Ok(RouteDepth::tally(counts))
        })
        .await
    }

    async fn queue_position(&self, route: &str, id: &str) -> Result<Option<u64>, StoreError> {
        let (route, id) = (route.to_owned(), id.to_owned());
        self.with(move |conn| queue::position(conn, &route, &id))
            .await
    }

    async fn claim_delivery(
        &self,
        kind: DeliveryKind,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Result<Option<(Delivery, Job)>, StoreError> {
        self.with(move |conn| {
            deliveries::claim_delivery(conn, kind, now, first_delay_ms, lease_until)
        })
        .await
    }

    async fn record_attempt(
        &self,
        job_id: &str,
        kind: DeliveryKind,
        attempt: Attempt,
        _now: Millis,
    ) -> Result<(), StoreError> {
        let job_id = job_id.to_owned();
        self.with(move |conn| deliveries::record_attempt(conn, &job_id, kind, attempt))
            .await
    }

    async fn redeliver(
        &self,
        tenant: &str,
        job_id: &str,
        now: Millis,
    ) -> Result<Redeliver, StoreError> {
        let (tenant, job_id) = (tenant.to_owned(), job_id.to_owned());
        self.with(move |conn| deliveries::redeliver(conn, &tenant, &job_id, now))
            .await
    }

    async fn list(&self, tenant: &str, query: &ListQuery, now: Millis) -> Result<Page, StoreError> {
        let (tenant, query) = (tenant.to_owned(), query.clone());
        self.with(move |conn| list::list(conn, &tenant, &query, now))
            .await
    }

    async fn purge(&self, tenant: &str, id: &str, now: Millis) -> Result<Purged, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |conn| list::purge(conn, &tenant, &id, now))
            .await
    }
}

#[cfg(test)]
mod tests;
