//! Unit tests of the schema steps: fresh files, upgrades from each earlier version, the
//! plans the hot queries get from the indexes.

use super::*;

#[test]
fn migrates_a_fresh_database_and_is_idempotent() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    migrate(&mut conn).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, latest());
}

#[test]
fn v1_file_gains_kinds_and_deliveries_keeping_its_jobs() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    migrate_to(&mut conn, &MIGRATIONS[..1]).unwrap();
    conn.execute_batch(
        "INSERT INTO jobs (id, tenant, route, status, created_at, updated_at, fingerprint, \
         req_method, req_target, req_headers, req_body) \
         VALUES ('j1', 't', 'r', 'pending', 1, 1, 'fp', 'POST', '/', x'00000000', x'')",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let kind: String = conn
        .query_row("SELECT kind FROM jobs WHERE id = 'j1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "call");
    conn.execute(
        "INSERT INTO deliveries (job_id, url, state) VALUES ('j1', 'https://x/', 'waiting')",
        [],
    )
    .unwrap();
    // The foreign key takes a job's delivery with it.
    conn.execute("DELETE FROM jobs WHERE id = 'j1'", [])
        .unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

/// A v3 file's callback deliveries survive the v4 rebuild of `deliveries` field for
/// field, as callbacks; orphans are dropped; the new key allows one row per kind.
#[test]
fn v3_file_keeps_its_callback_deliveries_as_callbacks() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    migrate_to(&mut conn, &MIGRATIONS[..3]).unwrap();
    conn.execute_batch(
        "INSERT INTO jobs (id, tenant, route, status, created_at, updated_at, expires_at, \
         fingerprint, req_method, req_target, req_headers, req_body) \
         VALUES ('j1', 't', 'r', 'failed', 1, 2, 99, 'fp', 'POST', '/', x'00000000', x''); \
         INSERT INTO deliveries (job_id, url, state, attempts, next_at, last_status, \
         last_error, lease_until) VALUES ('j1', 'https://x/', 'pending', 2, 50, 503, \
         'the receiver answered 503', 60); \
         PRAGMA foreign_keys = OFF; \
         INSERT INTO deliveries (job_id, url, state) VALUES ('gone', 'https://y/', 'waiting'); \
         PRAGMA foreign_keys = ON;",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let row: (
        String,
        String,
        String,
        i64,
        i64,
        i64,
        String,
        i64,
        Option<String>,
    ) = conn
        .query_row(
            "SELECT kind, url, state, attempts, next_at, last_status, last_error, \
             lease_until, reservation FROM deliveries WHERE job_id = 'j1'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .unwrap();
    let expected = (
        "callback".to_owned(),
        "https://x/".to_owned(),
        "pending".to_owned(),
        2,
        50,
        503,
        "the receiver answered 503".to_owned(),
        60,
        None,
    );
    assert_eq!(row, expected);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the orphan is not carried over");
    // One row per kind: an admission beside the callback, never a second callback.
    conn.execute(
        "INSERT INTO deliveries (job_id, kind, url, state, reservation) \
         VALUES ('j1', 'admission', 'https://a/', 'waiting', 'res-1')",
        [],
    )
    .unwrap();
    assert!(conn
        .execute(
            "INSERT INTO deliveries (job_id, kind, url, state) \
             VALUES ('j1', 'callback', 'https://z/', 'waiting')",
            [],
        )
        .is_err());
    let check: String = conn
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .unwrap_or_default();
    assert_eq!(check, "", "no foreign key violations");
}

/// `claim`'s running count reads only the covering partial index, never the table.
#[test]
fn running_count_uses_its_covering_index() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    let sql = format!("EXPLAIN QUERY PLAN {}", super::super::ops::RUNNING_COUNT);
    let mut stmt = conn.prepare(&sql).unwrap();
    let plan: Vec<String> = stmt
        .query_map(["r"], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        plan,
        ["SEARCH jobs USING COVERING INDEX jobs_running (route=?)"]
    );
}

#[test]
fn refuses_a_newer_schema_naming_both_versions() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "user_version", latest() + 5)
        .unwrap();
    let err = migrate(&mut conn).unwrap_err().to_string();
    assert!(err.contains(&(latest() + 5).to_string()), "{err}");
    assert!(err.contains(&format!("version {}", latest())), "{err}");
}
