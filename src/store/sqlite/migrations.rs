//! Versioned schema of the SQLite store, applied on open.
//!
//! The file's `PRAGMA user_version` is the number of [`MIGRATIONS`] already applied. Opening
//! applies the missing ones in order, each in its own transaction together with the
//! `user_version` bump (the version lives in the database header, so it commits or rolls
//! back with the step). A file whose version is newer than this binary knows is refused:
//! an older gateway must not write rows a newer schema reads differently.
//!
//! Never edit a released step; append a new one.

use rusqlite::Connection;

use crate::store::StoreError;

/// Schema v1.
///
/// - `jobs`: one row per job; request and response kept verbatim (header lists as blobs,
///   see `codec`). `STRICT` so a wrong type is an error at write time, not a surprise at
///   read time. A rowid table (not `WITHOUT ROWID`): rows carry bodies, which would bloat
///   the primary-key B-tree.
/// - `jobs_idem`: unique `(tenant, route, idem_key)` for keyed jobs — the last line of
///   defence behind the check in `create`.
/// - `jobs_pending`: partial index of pending jobs by `(route, created_at, id)`, the exact
///   claim order; partial because finished jobs (the bulk of the table) never need it.
/// - `jobs_expiry`: finished jobs by `expires_at` for the sweeper and its "oldest first".
/// - `jobs_leases`: running jobs by `lease_until` for recovery.
/// - `tenant_counts`: unfinished jobs per tenant, kept in the same transactions that
///   create and finish jobs, so the queue-limit check is one primary-key read. A row is
///   deleted when it reaches zero.
/// - `tombstones`: swept jobs' ids and tenants until `purge_at`, so `get` still says
///   "expired" (`410`) rather than "never existed" (`404`).
const V1: &str = "
CREATE TABLE jobs (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    route         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    idem_key      TEXT,
    fingerprint   TEXT    NOT NULL,
    req_method    TEXT    NOT NULL,
    req_target    TEXT    NOT NULL,
    req_headers   BLOB    NOT NULL,
    req_body      BLOB    NOT NULL,
    resp_status   INTEGER,
    resp_headers  BLOB,
    resp_body     BLOB,
    error_code    TEXT,
    error_message TEXT,
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX jobs_idem ON jobs (tenant, route, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX jobs_pending ON jobs (route, created_at, id) WHERE status = 'pending';
CREATE INDEX jobs_expiry ON jobs (expires_at, id) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'running';
CREATE TABLE tenant_counts (
    tenant     TEXT    NOT NULL PRIMARY KEY,
    unfinished INTEGER NOT NULL
) STRICT;
CREATE TABLE tombstones (
    id       TEXT    NOT NULL PRIMARY KEY,
    tenant   TEXT    NOT NULL,
    purge_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tombstones_purge ON tombstones (purge_at, id);
";

/// Schema v2: job kinds and callback deliveries.
///
/// - `jobs.kind`: `call` or `watch`; rows written by v1 were all calls, hence the default.
/// - `deliveries`: a job's callback and the state of its delivery, at most one row per job
///   (keyed by `job_id`). A table of its own rather than columns on `jobs`: claiming and
///   recording attempts update a small row instead of rewriting a job row that carries
///   request and response bodies (SQLite rewrites the whole record, overflow pages
///   included, when its size changes), and the claim's lease check reads that small row
///   rather than columns stored after the bodies. `WITHOUT ROWID` because the rows are
///   small and always found by `job_id`. `sweep` deletes a job's row with the job; the
///   foreign key (with `ON DELETE CASCADE`) backs that up.
/// - `deliveries_first` / `deliveries_retry`: pending deliveries by `(next_at, job_id)`,
///   split by "never attempted" and "attempted". A first attempt is due `first_delay_ms`
///   (a claim-time setting) after `next_at`, a retry at `next_at`, so neither order can be
///   baked into one index; within each index the order *is* the due order, and a claim is
///   one range scan of each (partial, so waiting and settled deliveries are not in them).
const V2: &str = "
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'call';
CREATE TABLE deliveries (
    job_id      TEXT    NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    url         TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    last_status INTEGER,
    last_error  TEXT,
    lease_until INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_first ON deliveries (next_at, job_id)
    WHERE state = 'pending' AND attempts = 0;
CREATE INDEX deliveries_retry ON deliveries (next_at, job_id)
    WHERE state = 'pending' AND attempts > 0;
";

/// Schema v3: the claim limit.
///
/// - `jobs_running`: running jobs by `route`, so the count `claim` checks against the
///   route's `max_running` reads only that route's entries of a covering index. Partial
///   like `jobs_pending`: finished jobs never count. `jobs_leases` holds the same rows but
///   ordered by lease, so counting through it would visit every running job of every
///   route and read each row's `route` from the table.
const V3: &str = "
CREATE INDEX jobs_running ON jobs (route) WHERE status = 'running';
";

/// Schema v4: a second delivery per job, the admission release.
///
/// - `deliveries` gains `kind` (`callback` or `admission`) and is keyed by `(job_id,
///   kind)`: a job has at most one delivery of each kind. The default is `callback`,
///   what every delivery was before, so a row written the v3 way still means the same. SQLite cannot change a primary
///   key in place, so the table is rebuilt: create `deliveries_v4`, copy every v3 row as
///   `kind = 'callback'` (all v3 deliveries were callbacks), drop the old table (its
///   indexes go with it), rename. Only rows whose job exists are copied: an orphan could
///   only come from a connection that deleted jobs without foreign keys on, nothing ever
///   read it (every query reaches deliveries through their job), and copying it would
///   trip the foreign key. The rename is safe: no other table, index, view or trigger
///   names `deliveries_v4`, and the foreign key it declares points at `jobs`, not at
///   itself.
/// - `deliveries.reservation`: the reservation id the admission endpoint granted (`NULL`
///   for callbacks, and for admissions that got none). On the delivery row rather than on
///   `jobs` because it belongs to the admission and only the admission release reads it:
///   a job without an admission carries nothing for it, the release's claim finds it in
///   the row it leases, and `jobs` rows — which carry bodies — stay untouched.
/// - `deliveries_first` / `deliveries_retry` are recreated with `kind` first: a claim is
///   for one kind, so it is one range scan of that kind's entries in due order, and a
///   backlog of one kind is never stepped over by claims for the other.
const V4: &str = "
CREATE TABLE deliveries_v4 (
    job_id      TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL DEFAULT 'callback',
    url         TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    last_status INTEGER,
    last_error  TEXT,
    lease_until INTEGER,
    reservation TEXT,
    PRIMARY KEY (job_id, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO deliveries_v4 (job_id, kind, url, state, attempts, next_at, last_status,
    last_error, lease_until)
    SELECT job_id, 'callback', url, state, attempts, next_at, last_status, last_error,
        lease_until
    FROM deliveries WHERE job_id IN (SELECT id FROM jobs);
DROP TABLE deliveries;
ALTER TABLE deliveries_v4 RENAME TO deliveries;
CREATE INDEX deliveries_first ON deliveries (kind, next_at, job_id)
    WHERE state = 'pending' AND attempts = 0;
CREATE INDEX deliveries_retry ON deliveries (kind, next_at, job_id)
    WHERE state = 'pending' AND attempts > 0;
";

/// Schema v5: listing a tenant's jobs.
///
/// - `jobs_tenant`: every job by `(tenant, created_at DESC, id DESC)` — exactly the list
///   order (newest first, ties by id), so a page is one range of this index below the
///   cursor, read in order and stopped after the page (see `list`), never a scan of the
///   table or a sort. Not partial: every retained job is listed. `status`, `route` and
///   `expires_at` are not in it: the filters read them from the row (they sit before the
///   bodies, so no overflow page is touched), and keeping them out means a job's status
///   changes never rewrite this index. Creating it on an existing file reads the table
///   once, at the upgrade.
const V5: &str = "
CREATE INDEX jobs_tenant ON jobs (tenant, created_at DESC, id DESC);
";

/// Schema v6: `jobs.deadline`, the client's `Cancel-After` as an absolute time (ms since
/// the epoch; `NULL` without one). Not indexed: it is read with the job it belongs to when
/// that job is claimed or its run starts, never searched (see `store::deadline`).
const V6: &str = "
ALTER TABLE jobs ADD COLUMN deadline INTEGER;
";

/// The ordered schema steps; step `i` takes the file from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this binary writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the schema of `conn` up to [`latest`]; refuses a newer file.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, MIGRATIONS)
}

/// Applies the missing steps of `steps` (a prefix of [`MIGRATIONS`] in tests, to build an
/// old file).
fn migrate_to(conn: &mut Connection, steps: &[&str]) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(StoreError::new)?;
    let latest = i64::try_from(steps.len()).unwrap_or(i64::MAX);
    if current > latest {
        return Err(StoreError::new(format!(
            "the database schema is version {current}, newer than this binary knows \
             (version {latest}); upgrade the gateway"
        )));
    }
    if current < 0 {
        return Err(StoreError::new(format!(
            "the database schema version {current} is not valid"
        )));
    }
    for (from, step) in (current..).zip(steps.iter().skip(usize::try_from(current).unwrap_or(0))) {
        let tx = conn.transaction().map_err(StoreError::new)?;
        tx.execute_batch(step).map_err(|e| {
            StoreError::new(format!("schema migration to version {}: {e}", from + 1))
        })?;
        tx.pragma_update(None, "user_version", from + 1)
            .map_err(StoreError::new)?;
        tx.commit().map_err(StoreError::new)?;
        tracing::info!(version = from + 1, "job store schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
