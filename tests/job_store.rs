//! The `JobStore` contract, proved once for every store: each case in `job_store/*.rs`
//! is written against `Arc<dyn JobStore>` and instantiated here for [`MemoryStore`], for
//! [`SqliteStore`] on a file in a temporary directory, and for [`RedisStore`] on a real
//! `redis-server` the case starts itself (`support/redis.rs`: a free port, a temporary
//! directory, killed on drop; one server per case, and a key prefix naming the case), so
//! the three cannot drift apart. Deadlines (`job_store/deadlines.rs`), listing and purging (`job_store/listing.rs`,
//! `job_store/purging.rs`) and queue positions (`job_store/queue.rs`) are shared cases too. After the shared suite: what only a file-backed store can
//! show (reopening, schema versions and migrations, corrupt rows), in
//! `job_store/sqlite_file.rs` and (files from before admission deliveries)
//! `job_store/sqlite_v3_file.rs`, and what only the shared Redis store can (restarts,
//! unreachable servers, several replicas racing, key prefixes), in
//! `job_store/redis_shared.rs` and (the delivery and listing key layouts)
//! `job_store/redis_deliveries.rs`, `job_store/redis_listing.rs`.
//!
//! Times are explicit [`Millis`] values passed to the store, so nothing here sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "job_store/admission.rs"]
mod admission;
#[path = "job_store/admission_claims.rs"]
mod admission_claims;
#[path = "job_store/admission_deliveries.rs"]
mod admission_deliveries;
#[path = "job_store/callbacks.rs"]
mod callbacks;
#[path = "job_store/deadlines.rs"]
mod deadlines;
#[path = "job_store/delivering.rs"]
mod delivering;
#[path = "job_store/depths.rs"]
mod depths;
#[path = "job_store/limits.rs"]
mod limits;
#[path = "job_store/listing.rs"]
mod listing;
#[path = "job_store/purging.rs"]
mod purging;
#[path = "job_store/queue.rs"]
mod queue;
#[path = "job_store/redis_deliveries.rs"]
mod redis_deliveries;
#[path = "job_store/redis_listing.rs"]
mod redis_listing;
#[path = "job_store/redis_route_names.rs"]
mod redis_route_names;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "job_store/redis_shared.rs"]
mod redis_shared;
#[path = "job_store/retention.rs"]
mod retention;
#[path = "job_store/retries.rs"]
mod retries;
#[path = "job_store/running.rs"]
mod running;
#[path = "job_store/sqlite_file.rs"]
mod sqlite_file;
#[path = "job_store/sqlite_v3_file.rs"]
mod sqlite_v3_file;
#[path = "job_store/started.rs"]
mod started;
#[path = "job_store/task_callbacks.rs"]
mod task_callbacks;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use prefer_gateway::store::memory::MemoryStore;
use prefer_gateway::store::model::{JobError, JobKind, Millis, StoredRequest, StoredResponse};
use prefer_gateway::store::redis::RedisStore;
use prefer_gateway::store::sqlite::SqliteStore;
use prefer_gateway::store::{Created, Job, JobStore, Lookup, NewJob, Outcome};

/// What every case receives.
pub type Store = Arc<dyn JobStore>;

/// An arbitrary epoch for the tests' clocks.
pub const T0: Millis = 1_700_000_000_000;
/// Retention used throughout.
pub const RET: i64 = 60_000;
/// A `max_running` for claims that are not about the limit.
pub const NO_LIMIT: u32 = u32::MAX;

/// A request with non-UTF-8 header bytes, a duplicate header and a binary body.
pub fn request(n: u32) -> StoredRequest {
    StoredRequest {
        method: "POST".into(),
        target: format!("/orders?n={n}"),
        headers: vec![
            (
                "content-type".into(),
                Bytes::from_static(b"application/octet-stream"),
            ),
            ("x-raw".into(), Bytes::from_static(b"caf\xe9 \xff\x00")),
            ("x-raw".into(), Bytes::from_static(b"again")),
        ],
        body: Bytes::from(vec![0u8, 159, 146, 150, 255, n as u8]),
    }
}

/// A new job for `tenant` on `route`, optionally keyed; `fp` is its fingerprint.
pub fn new_job(tenant: &str, route: &str, key: Option<&str>, fp: &str) -> NewJob {
    NewJob {
        id: prefer_gateway::store::model::new_id(),
        tenant: tenant.into(),
        route: route.into(),
        idempotency_key: key.map(Into::into),
        fingerprint: fp.into(),
        request: request(0),
        kind: JobKind::Call,
        callback: None,
        notify_started: false,
        admission: None,
        deadline: None,
    }
}

/// The callback URL the callback cases register.
pub const HOOK: &str = "https://hooks.example/cb";

/// A new job for `tenant` on `route` with the callback [`HOOK`].
pub fn hooked_job(tenant: &str, route: &str) -> NewJob {
    NewJob {
        callback: Some(HOOK.into()),
        ..new_job(tenant, route, None, "fp")
    }
}

/// Creates `job` at `now` (no queue limit to speak of) and returns it; fails otherwise.
pub async fn create(store: &Store, job: NewJob, now: Millis) -> Job {
    match store.create(job, 1_000_000, now).await.unwrap() {
        Created::New(job) => job,
        other => panic!("expected New, got {other:?}"),
    }
}

/// `get` that must find the job.
pub async fn found(store: &Store, tenant: &str, id: &str, now: Millis) -> Job {
    match store.get(tenant, id, now).await.unwrap() {
        Lookup::Found(job) => job,
        other => panic!("expected Found, got {other:?}"),
    }
}

/// An upstream answer with non-UTF-8 header bytes and a binary body.
pub fn response(status: u16) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![
            (
                "content-type".into(),
                Bytes::from_static(b"application/json"),
            ),
            ("x-bin".into(), Bytes::from_static(b"\x80\x81\xfe")),
        ],
        body: Bytes::from_static(b"{\"ok\":true}\x00\xff"),
    }
}

/// A run failure with this code.
pub fn failure(code: &str) -> JobError {
    JobError {
        code: code.into(),
        message: format!("{code} happened"),
    }
}

/// Creates a job and runs it to `succeeded` at `at`; returns its id.
pub async fn finished(store: &Store, tenant: &str, route: &str, at: i64) -> String {
    run_to_success(store, new_job(tenant, route, None, "fp"), at).await
}

/// Creates `job` and runs it to `succeeded` at `at` (its callback, if any, is then due
/// at `at`); returns its id.
pub async fn run_to_success(store: &Store, job: NewJob, at: i64) -> String {
    let job = create(store, job, at).await;
    let claimed = store
        .claim(&job.route, NO_LIMIT, at + 1_000, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job.id);
    assert!(store
        .complete(&job.id, Outcome::Answered(response(200)), RET, at)
        .await
        .unwrap());
    job.id
}

fn memory_store() -> Store {
    Arc::new(MemoryStore::new())
}

async fn sqlite_store(dir: &Path) -> Store {
    Arc::new(
        SqliteStore::open(&dir.join("nested/dir/jobs.db"))
            .await
            .unwrap(),
    )
}

/// A Redis store on `server`, its keys under a prefix naming `case`.
pub async fn redis_store(server: &redis_server::RedisServer, case: &str) -> Store {
    Arc::new(
        RedisStore::open(&server.url(), &format!("test:{case}:"))
            .await
            .unwrap(),
    )
}

macro_rules! suite {
    ($($group:ident :: $case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::$group::$case(crate::memory_store()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::TempDir::new().unwrap();
                    crate::$group::$case(crate::sqlite_store(dir.path()).await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = crate::redis_server::RedisServer::start();
                    let store = crate::redis_store(&server, stringify!($case)).await;
                    crate::$group::$case(store).await;
                }
            )*
        }
    };
}

suite!(
    task_callbacks::a_callback_watch_keeps_its_token_hash_and_completes_once,
    admission::create_then_get_round_trips_every_field,
    admission::idempotent_create_returns_the_original,
    admission::same_key_other_request_is_a_conflict,
    admission::same_key_other_tenant_or_route_is_new,
    admission::queue_limit_is_per_tenant_and_freed_by_finishing,
    admission::retry_of_an_accepted_key_beats_a_full_queue,
    admission::concurrent_duplicate_creates_make_one_job,
    admission::concurrent_creates_meet_the_queue_limit_exactly,
    running::claim_takes_the_oldest_pending_job_of_its_route,
    running::concurrent_claims_never_share_a_job,
    running::renew_only_while_running,
    running::complete_2xx_succeeds,
    running::complete_non_2xx_fails_and_keeps_the_response,
    running::complete_failed_keeps_the_error_only,
    running::complete_only_while_running,
    running::cancel_pending_and_running,
    running::cancel_terminal_foreign_unknown,
    running::recover_retry_and_fail,
    running::recover_ignoring_leases,
    limits::claims_stop_at_max_running_until_one_leaves,
    limits::limits_are_per_route,
    limits::concurrent_claims_respect_the_limit,
    retention::other_tenant_sees_missing,
    retention::expired_before_and_after_sweep,
    retention::sweep_works_in_batches_oldest_first,
    retention::tombstones_are_purged_then_missing,
    retention::swept_keys_are_free_again,
    retention::unscoped_get_ignores_the_tenant_but_not_retention,
    callbacks::create_stores_a_waiting_delivery,
    callbacks::kind_round_trips,
    callbacks::complete_makes_the_delivery_due_now,
    callbacks::cancel_and_recover_fail_make_it_due_recover_retry_does_not,
    callbacks::redeliver_schedules_a_fresh_delivery,
    callbacks::redeliver_refuses_unfinished_plain_foreign_and_expired,
    callbacks::sweep_takes_the_delivery_with_it,
    delivering::first_attempt_waits_the_first_delay_retries_do_not,
    delivering::claims_take_the_most_overdue_first,
    delivering::concurrent_claims_never_share_a_delivery,
    delivering::a_leased_delivery_waits_for_its_lease,
    delivering::record_attempt_for_each_outcome,
    delivering::jobs_without_a_callback_are_never_claimed,
    depths::depths_count_pending_and_running_per_route,
    admission_deliveries::admission_round_trips_with_and_without_reservation,
    admission_deliveries::admission_waits_while_pending_and_running,
    admission_deliveries::every_terminal_transition_makes_the_admission_due,
    admission_deliveries::recover_retry_leaves_the_admission_waiting,
    admission_claims::claims_by_kind_return_only_that_kind,
    admission_claims::a_leased_admission_waits_for_its_lease,
    admission_claims::concurrent_admission_claims_never_share_a_delivery,
    admission_claims::record_attempt_by_kind_touches_only_that_kind,
    admission_claims::first_delay_and_due_order_are_per_kind,
    admission_deliveries::sweep_takes_admission_deliveries_with_it,
    listing::lists_newest_first_only_the_tenants_own,
    listing::status_and_route_filters,
    listing::pages_follow_the_cursor_while_jobs_arrive,
    listing::a_cursor_outlives_its_job,
    listing::limits_and_retention,
    listing::a_page_looks_at_a_bounded_number_of_jobs,
    purging::purge_takes_a_finished_job_and_everything_of_it,
    purging::purge_refuses_unfinished_jobs_and_keeps_the_counts,
    purging::purge_waits_for_the_admission_notice,
    deadlines::deadline_round_trips,
    deadlines::deadline_cancel_is_a_cancel_with_its_own_reason,
    deadlines::client_cancel_keeps_its_reason,
    queue::positions_follow_claim_order_across_tenants,
    queue::a_cancel_ahead_moves_the_queue_up,
    queue::a_recovered_job_goes_back_to_its_place,
    retries::note_attempt_records_the_last_error_and_counts,
    retries::the_count_and_last_error_survive_a_recovery,
    started::only_when_asked_and_due_at_the_claim,
    started::never_sent_for_a_job_that_never_started,
    started::a_re_run_does_not_send_it_again,
);
