//! SQLite only: a file written at schema v3 (callbacks, before admission deliveries)
//! migrates to the current schema with its callback deliveries intact — every state and
//! counter, due order, leases — keeps delivering them, and then takes admission deliveries
//! beside them.

use std::path::Path;
use std::sync::Arc;

use prefer_gateway::store::headers::encode_headers;
use prefer_gateway::store::model::{Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState};
use prefer_gateway::store::sqlite::{schema_version, SqliteStore};
use prefer_gateway::store::{JobStatus, NewAdmission, NewJob, Outcome};

use crate::sqlite_file::SHIPPED_V1;
use crate::{found, hooked_job, response, Store, HOOK, RET, T0};

/// Schema steps v2 and v3 as they shipped, copied on purpose (see `SHIPPED_V1`).
const SHIPPED_V2_V3: &str = "
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
CREATE INDEX jobs_running ON jobs (route) WHERE status = 'running';
PRAGMA user_version = 3;
";

/// A v3 file with three hooked jobs, as a v3 gateway would have left them: `v3-due`
/// succeeded, its callback never attempted; `v3-retry` failed, its callback retried once
/// and due again at `T0 + 200`; `v3-running` running (lease `T0 + 50`), its callback
/// waiting.
fn write_v3_file(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SHIPPED_V1).unwrap();
    conn.execute_batch(SHIPPED_V2_V3).unwrap();
    let request = crate::request(3);
    let done = response(200);
    let jobs = [
        ("v3-due", "succeeded", Some(T0 + RET), Some(done.clone()), 1),
        ("v3-retry", "failed", Some(T0 + RET), Some(response(500)), 1),
        ("v3-running", "running", None, None, 1),
    ];
    for (id, status, expires_at, resp, attempts) in jobs {
        conn.execute(
            "INSERT INTO jobs (id, tenant, route, status, created_at, updated_at, expires_at, \
             fingerprint, req_method, req_target, req_headers, req_body, resp_status, \
             resp_headers, resp_body, lease_until, attempts, kind) \
             VALUES (?1, 't', ?1, ?2, ?3, ?3, ?4, 'fp', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
             'call')",
            rusqlite::params![
                id,
                status,
                T0,
                expires_at,
                request.method,
                request.target,
                encode_headers(&request.headers),
                request.body.as_ref(),
                resp.as_ref().map(|r| r.status),
                resp.as_ref().map(|r| encode_headers(&r.headers)),
                resp.as_ref().map(|r| r.body.to_vec()),
                (status == "running").then_some(T0 + 50),
                attempts
            ],
        )
        .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO deliveries (job_id, url, state, attempts, next_at) \
         VALUES ('v3-due', 'https://hooks.example/cb', 'pending', 0, 1700000000000); \
         INSERT INTO deliveries (job_id, url, state, attempts, next_at, last_status, last_error) \
         VALUES ('v3-retry', 'https://hooks.example/cb', 'pending', 1, 1700000000200, 503, \
         'the receiver answered 503'); \
         INSERT INTO deliveries (job_id, url, state) \
         VALUES ('v3-running', 'https://hooks.example/cb', 'waiting'); \
         INSERT INTO tenant_counts (tenant, unfinished) VALUES ('t', 1);",
    )
    .unwrap();
}

#[tokio::test]
async fn a_v3_file_migrates_and_still_delivers_its_callbacks() {
    assert_eq!(T0, 1_700_000_000_000, "the file above spells T0 out");
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("jobs.db");
    write_v3_file(&path);
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema_version());
    drop(conn);

    let pending = |attempts, next_attempt_at| Delivery {
        url: HOOK.into(),
        state: DeliveryState::Pending,
        attempts,
        next_attempt_at: Some(next_attempt_at),
        last_status: None,
        last_error: None,
        lease_until: None,
    };
    let due = found(&store, "t", "v3-due", T0 + 1).await;
    assert_eq!(due.status, JobStatus::Succeeded);
    assert_eq!((due.callback, due.admission), (Some(pending(0, T0)), None));
    let retry = found(&store, "t", "v3-retry", T0 + 1).await;
    let expected = Delivery {
        last_status: Some(503),
        last_error: Some("the receiver answered 503".into()),
        ..pending(1, T0 + 200)
    };
    assert_eq!((retry.callback, retry.admission), (Some(expected), None));
    let running = found(&store, "t", "v3-running", T0 + 1).await;
    assert_eq!(
        running.callback.map(|d| d.state),
        Some(DeliveryState::Waiting)
    );

    // Delivered in due order as before: the first attempt, then the retry at its time.
    let claim = |kind, now| {
        let store = store.clone();
        async move {
            store
                .claim_delivery(kind, now, 0, now + 1_000)
                .await
                .unwrap()
                .map(|(_, job)| job.id)
        }
    };
    let callback = DeliveryKind::Callback;
    assert_eq!(claim(callback, T0 + 100).await.as_deref(), Some("v3-due"));
    assert_eq!(claim(callback, T0 + 100).await, None);
    assert_eq!(claim(callback, T0 + 200).await.as_deref(), Some("v3-retry"));
    assert_eq!(claim(DeliveryKind::Admission, T0 + RET).await, None);
    let delivered = Attempt {
        status: Some(200),
        error: None,
        next: AttemptNext::Delivered,
    };
    store
        .record_attempt("v3-due", callback, delivered, T0 + 101)
        .await
        .unwrap();
    let state = found(&store, "t", "v3-due", T0 + 102).await.callback;
    assert_eq!(state.map(|d| d.state), Some(DeliveryState::Delivered));
    // The running job finishes under the new schema: its callback becomes due.
    let outcome = Outcome::Answered(response(200));
    assert!(store
        .complete("v3-running", outcome, RET, T0 + 300)
        .await
        .unwrap());
    assert_eq!(
        claim(callback, T0 + 300).await.as_deref(),
        Some("v3-running")
    );

    // New jobs on the migrated file carry admissions, which survive reopening.
    let job = NewJob {
        admission: Some(NewAdmission {
            url: "https://billing.internal/admit".into(),
            reservation: Some("res-9".into()),
        }),
        ..hooked_job("t", "new")
    };
    let id = crate::run_to_success(&store, job, T0 + 400).await;
    let before = found(&store, "t", &id, T0 + 401).await;
    drop(store);
    let store: Store = Arc::new(SqliteStore::open(&path).await.unwrap());
    assert_eq!(found(&store, "t", &id, T0 + 401).await, before);
    let (delivery, job) = store
        .claim_delivery(DeliveryKind::Admission, T0 + 400, 0, T0 + 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, id);
    assert_eq!(job.admission.unwrap().reservation.as_deref(), Some("res-9"));
    assert_eq!(delivery.state, DeliveryState::Pending);
}
