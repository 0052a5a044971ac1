//! Shared `JobStore` cases — retries within a run (`note_attempt`): the last error and the
//! attempt count are kept on the running job, visible to `get`, only while it runs, and
//! survive a recovery; `complete` replaces the last error with the outcome's.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::{JobStatus, Outcome, Recovery, RunNote};

use crate::{create, failure, found, new_job, response, Store, NO_LIMIT, RET, T0};

pub async fn note_attempt_records_the_last_error_and_counts(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let failed = RunNote::Failed(failure("upstream_unreachable"));
    assert!(
        !store.note_attempt(&job.id, &failed, T0).await.unwrap(),
        "pending: not running"
    );
    assert!(!store
        .note_attempt(&job.id, &RunNote::Next, T0)
        .await
        .unwrap());
    assert!(!store
        .note_attempt("nope", &RunNote::Next, T0)
        .await
        .unwrap());
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 10_000, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.attempts, 1);
    assert!(store.note_attempt(&job.id, &failed, T0 + 2).await.unwrap());
    let seen = found(&store, "t", &job.id, T0 + 3).await;
    assert_eq!(seen.status, JobStatus::Running);
    assert_eq!(seen.error, Some(failure("upstream_unreachable")));
    assert_eq!(seen.attempts, 1);
    assert_eq!(seen.updated_at, T0 + 1, "no state change");
    assert!(store
        .note_attempt(&job.id, &RunNote::Next, T0 + 4)
        .await
        .unwrap());
    let again = RunNote::Failed(failure("upstream_status"));
    assert!(store.note_attempt(&job.id, &again, T0 + 5).await.unwrap());
    assert!(store
        .note_attempt(&job.id, &RunNote::Next, T0 + 6)
        .await
        .unwrap());
    let seen = found(&store, "t", &job.id, T0 + 7).await;
    assert_eq!(seen.attempts, 3);
    assert_eq!(seen.error, Some(failure("upstream_status")));
    // Success clears the last error; nothing more is recorded after the end.
    assert!(store
        .complete(&job.id, Outcome::Answered(response(200)), RET, T0 + 8)
        .await
        .unwrap());
    let done = found(&store, "t", &job.id, T0 + 9).await;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.error, None);
    assert_eq!(done.attempts, 3);
    assert!(!store
        .note_attempt(&job.id, &RunNote::Next, T0 + 10)
        .await
        .unwrap());
    assert_eq!(found(&store, "t", &job.id, T0 + 11).await.attempts, 3);
}

pub async fn the_count_and_last_error_survive_a_recovery(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    let failed = RunNote::Failed(failure("upstream_timeout"));
    assert!(store.note_attempt(&job.id, &failed, T0 + 1).await.unwrap());
    assert!(store
        .note_attempt(&job.id, &RunNote::Next, T0 + 2)
        .await
        .unwrap());
    // The runner dies mid-backoff; its lease runs out and the route re-queues the job.
    let n = store
        .recover(T0 + 500, false, RET, &|_| Recovery::Retry)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let pending = found(&store, "t", &job.id, T0 + 501).await;
    assert_eq!(pending.status, JobStatus::Pending);
    assert_eq!(pending.attempts, 2);
    assert_eq!(pending.error, Some(failure("upstream_timeout")));
    let again = store
        .claim("r", NO_LIMIT, T0 + 10_000, T0 + 600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.attempts, 3,
        "the re-claim counts the attempt it makes"
    );
    // Failing for good: the outcome's error replaces the last one.
    assert!(store
        .complete(
            &job.id,
            Outcome::Failed(failure("upstream_unreachable")),
            RET,
            T0 + 700
        )
        .await
        .unwrap());
    let done = found(&store, "t", &job.id, T0 + 701).await;
    assert_eq!(done.error, Some(failure("upstream_unreachable")));
    assert_eq!(done.attempts, 3);
}
