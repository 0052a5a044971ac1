//! Shared `JobStore` cases — Purging a job: only a finished job of the caller goes, at
//! once and with everything of it (its callback delivery, its idempotency key, its place in
//! the list), leaving no tombstone, so its id reads as never existing; unfinished jobs and
//! jobs whose admission notice is still owed stay; queue counts and depths do not move.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::model::{AttemptNext, DeliveryKind};
use prefer_gateway::store::{Created, JobStatus, ListQuery, Lookup, NewJob, Purged};

use crate::admission_deliveries::{admitted, attempt};
use crate::listing::{ids, list};
use crate::{create, found, hooked_job, new_job, run_to_success, Store, NO_LIMIT, RET, T0};

pub async fn purge_takes_a_finished_job_and_everything_of_it(store: Store) {
    let keyed = NewJob {
        idempotency_key: Some("k".into()),
        ..hooked_job("t", "r")
    };
    let done = run_to_success(&store, keyed.clone(), T0).await;
    let kept = run_to_success(&store, hooked_job("t", "r"), T0 + 1).await;
    let now = T0 + 10;
    assert_eq!(store.purge("u", &done, now).await.unwrap(), Purged::Missing);
    assert_eq!(
        store.purge("t", "no-such-job", now).await.unwrap(),
        Purged::Missing
    );
    assert_eq!(store.purge("t", &done, now).await.unwrap(), Purged::Done);

    // Gone, and not as an expired job would be: missing, with no tombstone, and never
    // again.
    assert!(matches!(
        store.get("t", &done, now).await.unwrap(),
        Lookup::Missing
    ));
    assert!(matches!(
        store.get_unscoped(&done, now).await.unwrap(),
        Lookup::Missing
    ));
    assert_eq!(store.purge("t", &done, now).await.unwrap(), Purged::Missing);

    // Not listed; the other job is.
    let page = list(&store, "t", ListQuery::default(), now).await;
    assert_eq!(ids(&page), [kept.as_str()]);
    // Its due callback went with it: only the other job's is claimed.
    let (_, claimed) = store
        .claim_delivery(DeliveryKind::Callback, now, 0, now + 1_000)
        .await
        .unwrap()
        .expect("the kept job's callback");
    assert_eq!(claimed.id, kept);
    assert!(store
        .claim_delivery(DeliveryKind::Callback, now, 0, now + 1_000)
        .await
        .unwrap()
        .is_none());
    // Recording an attempt for it now is no error and changes nothing.
    let ok = attempt(Some(200), AttemptNext::Delivered);
    store
        .record_attempt(&done, DeliveryKind::Callback, ok, now)
        .await
        .unwrap();
    // Its idempotency key is free: the same request makes a new job.
    let again = NewJob {
        id: prefer_gateway::store::model::new_id(),
        ..keyed
    };
    assert!(matches!(
        store.create(again, 10, now).await.unwrap(),
        Created::New(_)
    ));
    // The sweeper, once the kept job expires, leaves a tombstone for that one only.
    store.sweep(T0 + 1 + RET, RET, 100).await.unwrap();
    let later = T0 + 1 + RET;
    assert!(matches!(
        store.get("t", &done, later).await.unwrap(),
        Lookup::Missing
    ));
    assert!(matches!(
        store.get("t", &kept, later).await.unwrap(),
        Lookup::Expired
    ));
}

pub async fn purge_refuses_unfinished_jobs_and_keeps_the_counts(store: Store) {
    let running = create(&store, new_job("t", "r", None, "fp"), T0).await.id;
    store
        .claim("r", NO_LIMIT, T0 + 60_000, T0)
        .await
        .unwrap()
        .unwrap();
    let pending = create(&store, new_job("t", "r", None, "fp"), T0 + 1)
        .await
        .id;
    let done = run_to_success(&store, new_job("t", "q", None, "fp"), T0 + 2).await;
    let depths = store.depths().await.unwrap();
    let now = T0 + 10;
    assert_eq!(
        store.purge("t", &pending, now).await.unwrap(),
        Purged::Unfinished(JobStatus::Pending)
    );
    assert_eq!(
        store.purge("t", &running, now).await.unwrap(),
        Purged::Unfinished(JobStatus::Running)
    );
    assert_eq!(
        found(&store, "t", &pending, now).await.status,
        JobStatus::Pending
    );
    assert_eq!(
        found(&store, "t", &running, now).await.status,
        JobStatus::Running
    );
    assert_eq!(store.purge("t", &done, now).await.unwrap(), Purged::Done);
    assert_eq!(store.depths().await.unwrap(), depths, "depths unchanged");
    // Two unfinished jobs still count against the queue limit, no more and no fewer.
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 3, now)
            .await
            .unwrap(),
        Created::New(_)
    ));
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 3, now)
            .await
            .unwrap(),
        Created::QueueFull
    ));
    // Canceled, the job may go.
    store.cancel("t", &pending, RET, now).await.unwrap();
    assert_eq!(store.purge("t", &pending, now).await.unwrap(), Purged::Done);
    // Past retention it answers as `get` does: expired, before and after the sweep.
    let old = run_to_success(&store, new_job("t", "s", None, "fp"), T0).await;
    assert_eq!(
        store.purge("t", &old, T0 + RET).await.unwrap(),
        Purged::Expired
    );
    store.sweep(T0 + RET, RET, 100).await.unwrap();
    assert_eq!(
        store.purge("t", &old, T0 + RET).await.unwrap(),
        Purged::Expired
    );
}

pub async fn purge_waits_for_the_admission_notice(store: Store) {
    let id = run_to_success(&store, admitted("r", Some("res-1")), T0).await;
    assert_eq!(
        store.purge("t", &id, T0 + 1).await.unwrap(),
        Purged::NoticePending(Some(T0)),
        "due since the job finished"
    );
    let retry = attempt(Some(503), AttemptNext::Retry(T0 + 5_000));
    store
        .record_attempt(&id, DeliveryKind::Admission, retry, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.purge("t", &id, T0 + 2).await.unwrap(),
        Purged::NoticePending(Some(T0 + 5_000))
    );
    let delivered = attempt(Some(200), AttemptNext::Delivered);
    store
        .record_attempt(&id, DeliveryKind::Admission, delivered, T0 + 5_000)
        .await
        .unwrap();
    assert_eq!(
        store.purge("t", &id, T0 + 5_001).await.unwrap(),
        Purged::Done
    );
    // A notice that was given up on does not hold a purge either.
    let other = run_to_success(&store, admitted("r", None), T0).await;
    let gave_up = attempt(Some(500), AttemptNext::GiveUp);
    store
        .record_attempt(&other, DeliveryKind::Admission, gave_up, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        store.purge("t", &other, T0 + 2).await.unwrap(),
        Purged::Done
    );
}
