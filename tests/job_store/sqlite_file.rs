//! SQLite only: what a file-backed store can show — reopening, schema versions and the
//! migration of files written by earlier releases, corrupt rows.

use std::path::Path;
use std::sync::Arc;

use prefer_gateway::store::headers::encode_headers;
use prefer_gateway::store::model::{Attempt, AttemptNext, DeliveryKind, DeliveryState, JobKind};
use prefer_gateway::store::sqlite::{schema_version, SqliteStore};
use prefer_gateway::store::{Created, JobStatus, Outcome};

use crate::{
    create, found, hooked_job, new_job, response, run_to_success, Store, NO_LIMIT, RET, T0,
};

#[tokio::test]
async fn jobs_survive_closing_and_reopening() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let job = create(&store, new_job("t", "r", Some("k"), "fp"), T0).await;
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 500, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    drop(store);

    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    assert_eq!(found(&store, "t", &job.id, T0 + 2).await, claimed);
    // The counters and the key index came back too.
    assert!(matches!(
        store.create(new_job("t", "r", Some("k"), "fp"), 1, T0 + 3).await.unwrap(),
        Created::Existing(j) if j.id == job.id
    ));
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 1, T0 + 3)
            .await
            .unwrap(),
        Created::QueueFull
    ));
}

#[tokio::test]
async fn a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let future = prefer_gateway::store::sqlite::schema_version() + 1;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", future).unwrap();
    drop(conn);

    let err = SqliteStore::open(&path).await.unwrap_err().to_string();
    assert!(err.contains(&format!("version {future}")), "{err}");
    let known = prefer_gateway::store::sqlite::schema_version();
    assert!(err.contains(&format!("version {known}")), "{err}");
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let a = create(&store, new_job("t", "r", None, "a"), T0).await;
    let b = create(&store, new_job("t", "r", None, "b"), T0).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE jobs SET status = 'bogus' WHERE id = ?1", [&a.id])
        .unwrap();
    conn.execute(
        "UPDATE jobs SET req_headers = x'0000' WHERE id = ?1",
        [&b.id],
    )
    .unwrap();
    drop(conn);

    let err = store.get("t", &a.id, T0).await.unwrap_err().to_string();
    assert!(err.contains("bogus") && err.contains(&a.id), "{err}");
    assert!(store.get("t", &b.id, T0).await.is_err());
    assert!(store.ping().await.is_ok());
}

#[tokio::test]
async fn open_fails_cleanly_on_a_file_that_is_not_a_database() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    assert!(SqliteStore::open(&path).await.is_err());
}

/// The schema v1 as it shipped, copied on purpose rather than taken from the migrations:
/// files on users' disks look like this whatever later edits do to the source.
pub const SHIPPED_V1: &str = "
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
PRAGMA user_version = 1;
";

/// Writes a v1 file at `path` holding one pending keyed job (`v1-pending`, counted in
/// `tenant_counts`) and one succeeded job (`v1-done`), as a v1 gateway would have.
fn write_v1_file(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SHIPPED_V1).unwrap();
    let request = crate::request(3);
    let insert = "INSERT INTO jobs (id, tenant, route, status, created_at, updated_at, \
                  expires_at, idem_key, fingerprint, req_method, req_target, req_headers, \
                  req_body, resp_status, resp_headers, resp_body, attempts) \
                  VALUES (?1, 't', 'r', ?2, ?3, ?3, ?4, ?5, 'fp', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
    let done = response(200);
    conn.execute(
        insert,
        rusqlite::params![
            "v1-pending",
            "pending",
            T0,
            None::<i64>,
            Some("k"),
            request.method,
            request.target,
            encode_headers(&request.headers),
            request.body.as_ref(),
            None::<i64>,
            None::<Vec<u8>>,
            None::<Vec<u8>>,
            0
        ],
    )
    .unwrap();
    conn.execute(
        insert,
        rusqlite::params![
            "v1-done",
            "succeeded",
            T0,
            Some(T0 + RET),
            None::<String>,
            request.method,
            request.target,
            encode_headers(&request.headers),
            request.body.as_ref(),
            Some(done.status),
            Some(encode_headers(&done.headers)),
            Some(done.body.to_vec()),
            1
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tenant_counts (tenant, unfinished) VALUES ('t', 1)",
        [],
    )
    .unwrap();
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_v1_file_migrates_keeping_its_jobs_and_then_keeps_deliveries() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    write_v1_file(&path);
    assert_eq!(user_version(&path), 1);

    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    assert_eq!(user_version(&path), schema_version());
    let pending = found(&store, "t", "v1-pending", T0 + 1).await;
    assert_eq!(
        (pending.status, pending.kind, pending.callback),
        (JobStatus::Pending, JobKind::Call, None)
    );
    assert_eq!(pending.request, crate::request(3));
    let done = found(&store, "t", "v1-done", T0 + 1).await;
    assert_eq!(
        (done.status, done.kind),
        (JobStatus::Succeeded, JobKind::Call)
    );
    assert_eq!((done.response, done.callback), (Some(response(200)), None));
    // Key index and queue counts carried over.
    let retry = store
        .create(new_job("t", "r", Some("k"), "fp"), 1, T0 + 2)
        .await
        .unwrap();
    assert!(matches!(retry, Created::Existing(ref j) if j.id == "v1-pending"));
    let full = store
        .create(new_job("t", "r", None, "fp"), 1, T0 + 2)
        .await
        .unwrap();
    assert!(matches!(full, Created::QueueFull));
    // Old jobs run and finish like new ones, with no delivery to make.
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 100, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, "v1-pending");
    let outcome = Outcome::Answered(response(201));
    assert!(store
        .complete("v1-pending", outcome, RET, T0 + 4)
        .await
        .unwrap());
    assert!(store
        .claim_delivery(DeliveryKind::Callback, T0 + RET, 0, T0 + RET + 1)
        .await
        .unwrap()
        .is_none());

    // New jobs get deliveries, and those survive reopening.
    let hooked = run_to_success(&store, hooked_job("t", "h"), T0 + 5).await;
    let before = found(&store, "t", &hooked, T0 + 6).await;
    drop(store);
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    assert_eq!(found(&store, "t", &hooked, T0 + 6).await, before);
    let (_, job) = store
        .claim_delivery(DeliveryKind::Callback, T0 + 5, 0, T0 + 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, hooked);
}

#[tokio::test]
async fn deliveries_and_leases_survive_reopening() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let leased = run_to_success(&store, hooked_job("t", "a"), T0).await;
    store
        .claim_delivery(DeliveryKind::Callback, T0, 0, T0 + 1_000)
        .await
        .unwrap()
        .unwrap();
    let retried = run_to_success(&store, hooked_job("t", "b"), T0).await;
    store
        .claim_delivery(DeliveryKind::Callback, T0, 0, T0 + 1_000)
        .await
        .unwrap()
        .unwrap();
    let retry = Attempt {
        status: None,
        error: Some("timed out".into()),
        next: AttemptNext::Retry(T0 + 200),
    };
    store
        .record_attempt(&retried, DeliveryKind::Callback, retry, T0 + 1)
        .await
        .unwrap();
    let waiting = create(&store, hooked_job("t", "c"), T0).await;
    let mut before = Vec::new();
    for id in [&leased, &retried, &waiting.id] {
        before.push(found(&store, "t", id, T0 + 2).await);
    }
    drop(store);

    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    for job in &before {
        assert_eq!(&found(&store, "t", &job.id, T0 + 2).await, job);
    }
    let states: Vec<_> = before
        .iter()
        .map(|j| j.callback.as_ref().map(|d| d.state))
        .collect();
    let pending = Some(DeliveryState::Pending);
    assert_eq!(states, [pending, pending, Some(DeliveryState::Waiting)]);
    // The retry is due at +200; the leased one only after its lease.
    let claim = |now| {
        let store = store.clone();
        async move {
            store
                .claim_delivery(DeliveryKind::Callback, now, 0, now + 5_000)
                .await
                .unwrap()
                .map(|(_, job)| job.id)
        }
    };
    assert_eq!(claim(T0 + 200).await, Some(retried));
    assert_eq!(claim(T0 + 1_000).await, None);
    assert_eq!(claim(T0 + 1_001).await, Some(leased));
}

#[tokio::test]
async fn corrupt_kinds_and_delivery_states_are_errors() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let a = create(&store, hooked_job("t", "r"), T0).await;
    let b = create(&store, hooked_job("t", "r"), T0).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE jobs SET kind = 'sorcery' WHERE id = ?1", [&a.id])
        .unwrap();
    conn.execute(
        "UPDATE deliveries SET state = 'lost' WHERE job_id = ?1",
        [&b.id],
    )
    .unwrap();
    drop(conn);

    let err = store.get("t", &a.id, T0).await.unwrap_err().to_string();
    assert!(err.contains("sorcery") && err.contains(&a.id), "{err}");
    let err = store.get("t", &b.id, T0).await.unwrap_err().to_string();
    assert!(err.contains("lost") && err.contains(&b.id), "{err}");
}
