//! Shared `JobStore` cases — Delivering callbacks: which delivery a claim takes and when,
//! exclusivity and leases, and what each recorded attempt leaves behind.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::model::{
    Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, Millis,
};
use prefer_gateway::store::{JobStatus, Outcome};

use crate::{
    create, failure, found, hooked_job, new_job, run_to_success, Store, HOOK, NO_LIMIT, RET, T0,
};

/// Claims at `now` with a first delay of `delay`, leasing until `lease`; the job id.
async fn claim_at(store: &Store, now: Millis, delay: i64, lease: Millis) -> Option<String> {
    store
        .claim_delivery(DeliveryKind::Callback, now, delay, lease)
        .await
        .unwrap()
        .map(|(delivery, job)| {
            assert_eq!(job.callback.as_ref(), Some(&delivery));
            assert_eq!(delivery.lease_until, Some(lease));
            job.id
        })
}

fn attempt(status: Option<u16>, error: Option<&str>, next: AttemptNext) -> Attempt {
    Attempt {
        status,
        error: error.map(Into::into),
        next,
    }
}

/// Finishes a hooked job at `at`, claims its delivery at once and records a retry at
/// `retry_at`; returns its id.
async fn retried(store: &Store, route: &str, at: Millis, retry_at: Millis) -> String {
    let id = run_to_success(store, hooked_job("t", route), at).await;
    assert_eq!(claim_at(store, at, 0, at + 10).await, Some(id.clone()));
    let next = AttemptNext::Retry(retry_at);
    let failed = attempt(Some(503), Some("the receiver answered 503"), next);
    store
        .record_attempt(&id, DeliveryKind::Callback, failed, at + 1)
        .await
        .unwrap();
    id
}

pub async fn first_attempt_waits_the_first_delay_retries_do_not(store: Store) {
    let id = run_to_success(&store, hooked_job("t", "r"), T0).await;
    assert_eq!(claim_at(&store, T0 + 999, 1_000, T0 + 5_000).await, None);
    let (delivery, job) = store
        .claim_delivery(DeliveryKind::Callback, T0 + 1_000, 1_000, T0 + 5_000)
        .await
        .unwrap()
        .unwrap();
    let expected = Delivery {
        url: HOOK.into(),
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: Some(T0),
        last_status: None,
        last_error: None,
        lease_until: Some(T0 + 5_000),
    };
    assert_eq!(delivery, expected);
    assert_eq!(
        (job.id.as_str(), job.status),
        (id.as_str(), JobStatus::Succeeded)
    );
    assert_eq!(
        job,
        found(&store, "t", &id, T0 + 1_001).await,
        "as get shows it"
    );

    let retry = attempt(Some(503), Some("503"), AttemptNext::Retry(T0 + 3_000));
    store
        .record_attempt(&id, DeliveryKind::Callback, retry, T0 + 1_001)
        .await
        .unwrap();
    let after = found(&store, "t", &id, T0 + 1_002).await.callback.unwrap();
    let expected = Delivery {
        attempts: 1,
        next_attempt_at: Some(T0 + 3_000),
        last_status: Some(503),
        last_error: Some("503".into()),
        lease_until: None,
        ..expected
    };
    assert_eq!(after, expected);
    // A retry is due at `next_attempt_at` itself: the first delay no longer applies.
    assert_eq!(claim_at(&store, T0 + 2_999, 1_000, T0 + 9_000).await, None);
    assert_eq!(
        claim_at(&store, T0 + 3_000, 1_000, T0 + 9_000).await,
        Some(id)
    );
}

pub async fn claims_take_the_most_overdue_first(store: Store) {
    let b = retried(&store, "b", T0 - 5_000, T0 + 500).await;
    let z = retried(&store, "z", T0 - 4_000, T0 + 1_100).await;
    let a = run_to_success(&store, hooked_job("t", "a"), T0).await;
    let x = run_to_success(&store, hooked_job("t", "x"), T0 + 100).await;
    let y = run_to_success(&store, hooked_job("t", "y"), T0 + 100).await;
    let late = run_to_success(&store, hooked_job("t", "late"), T0 + 4_001).await;
    // Due (first delay 1 s): b at +500 (retry), a at +1000, then x, y (first attempts)
    // and z (retry) all at +1100 in id order; `late` only at +5001.
    let mut tied = [x, y, z];
    tied.sort();
    let mut expected = vec![b, a];
    expected.extend(tied);
    let mut order = Vec::new();
    while let Some(id) = claim_at(&store, T0 + 5_000, 1_000, T0 + 9_000).await {
        order.push(id);
    }
    assert_eq!(order, expected);
    assert_eq!(
        claim_at(&store, T0 + 5_001, 1_000, T0 + 9_000).await,
        Some(late)
    );
}

pub async fn concurrent_claims_never_share_a_delivery(store: Store) {
    for i in 0..5 {
        run_to_success(&store, hooked_job("t", &format!("r{i}")), T0).await;
    }
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_delivery(DeliveryKind::Callback, T0 + 10, 0, T0 + 1_000)
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        if let Some((_, job)) = task.await.unwrap().unwrap() {
            assert!(ids.insert(job.id), "a delivery was claimed twice");
        }
    }
    assert_eq!(ids.len(), 5);
}

pub async fn a_leased_delivery_waits_for_its_lease(store: Store) {
    let id = run_to_success(&store, hooked_job("t", "r"), T0).await;
    assert_eq!(claim_at(&store, T0, 0, T0 + 100).await, Some(id.clone()));
    assert_eq!(claim_at(&store, T0 + 50, 0, T0 + 500).await, None);
    assert_eq!(
        claim_at(&store, T0 + 100, 0, T0 + 500).await,
        None,
        "lease ends after"
    );
    // The worker died: once the lease is over, the delivery is claimed again.
    assert_eq!(
        claim_at(&store, T0 + 101, 0, T0 + 500).await,
        Some(id.clone())
    );
    let again = found(&store, "t", &id, T0 + 102).await.callback.unwrap();
    assert_eq!((again.attempts, again.lease_until), (0, Some(T0 + 500)));
    // Recording the attempt ends the lease: a retry due now is claimable at once.
    let retry = attempt(None, Some("timed out"), AttemptNext::Retry(T0 + 102));
    store
        .record_attempt(&id, DeliveryKind::Callback, retry, T0 + 102)
        .await
        .unwrap();
    assert_eq!(claim_at(&store, T0 + 102, 0, T0 + 600).await, Some(id));
}

pub async fn record_attempt_for_each_outcome(store: Store) {
    let cases = [
        (
            attempt(Some(204), None, AttemptNext::Delivered),
            DeliveryState::Delivered,
            None,
        ),
        (
            attempt(Some(500), Some("500"), AttemptNext::GiveUp),
            DeliveryState::Failed,
            None,
        ),
        (
            attempt(Some(410), Some("gone"), AttemptNext::Stop),
            DeliveryState::Stopped,
            None,
        ),
        (
            attempt(None, Some("timed out"), AttemptNext::Retry(T0 + 777)),
            DeliveryState::Pending,
            Some(T0 + 777),
        ),
    ];
    let mut retry_id = None;
    for (i, (attempt, state, next_attempt_at)) in cases.into_iter().enumerate() {
        let id = run_to_success(&store, hooked_job("t", &format!("r{i}")), T0).await;
        assert_eq!(claim_at(&store, T0, 0, T0 + 50).await, Some(id.clone()));
        let (status, error) = (attempt.status, attempt.error.clone());
        store
            .record_attempt(&id, DeliveryKind::Callback, attempt, T0 + 1)
            .await
            .unwrap();
        let expected = Delivery {
            url: HOOK.into(),
            state,
            attempts: 1,
            next_attempt_at,
            last_status: status,
            last_error: error,
            lease_until: None,
        };
        assert_eq!(
            found(&store, "t", &id, T0 + 2).await.callback,
            Some(expected)
        );
        if state == DeliveryState::Pending {
            retry_id = Some(id);
        }
    }
    // Settled deliveries are never claimed again; the retried one is, once.
    let far = T0 + 10 * RET;
    assert_eq!(claim_at(&store, far, 0, far + RET).await, retry_id);
    assert_eq!(claim_at(&store, far + 1, 0, far + RET).await, None);
    // Unknown job, or one without a callback: nothing to record, not an error.
    let done = attempt(Some(200), None, AttemptNext::Delivered);
    store
        .record_attempt("unknown", DeliveryKind::Callback, done.clone(), T0)
        .await
        .unwrap();
    let plain = run_to_success(&store, new_job("t", "p", None, "fp"), T0).await;
    store
        .record_attempt(&plain, DeliveryKind::Callback, done, T0)
        .await
        .unwrap();
    assert_eq!(found(&store, "t", &plain, T0).await.callback, None);
}

pub async fn jobs_without_a_callback_are_never_claimed(store: Store) {
    run_to_success(&store, new_job("t", "ok", None, "fp"), T0).await;
    let failed = create(&store, new_job("t", "bad", None, "fp"), T0).await;
    store
        .claim("bad", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    let outcome = Outcome::Failed(failure("upstream_unreachable"));
    assert!(store.complete(&failed.id, outcome, RET, T0).await.unwrap());
    let canceled = create(&store, new_job("t", "c", None, "fp"), T0).await;
    store.cancel("t", &canceled.id, RET, T0).await.unwrap();
    // Nor is a callback whose job has not finished.
    create(&store, hooked_job("t", "waiting"), T0).await;
    assert_eq!(claim_at(&store, T0 + RET - 1, 0, T0 + RET).await, None);
}
