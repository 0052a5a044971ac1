//! Shared `JobStore` cases — Callbacks and kinds: a delivery is stored with its job, made
//! due by every terminal transition (and only those), rescheduled by `redeliver`, swept
//! with its job; the job kind round-trips.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::model::{
    Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, JobKind,
};
use prefer_gateway::store::{Canceled, Created, JobStatus, NewJob, Outcome, Recovery, Redeliver};

use crate::{
    create, found, hooked_job, new_job, response, run_to_success, Store, HOOK, NO_LIMIT, RET, T0,
};

/// A delivery as first stored: waiting, nothing attempted.
fn waiting() -> Delivery {
    Delivery {
        url: HOOK.into(),
        state: DeliveryState::Waiting,
        attempts: 0,
        next_attempt_at: None,
        last_status: None,
        last_error: None,
        lease_until: None,
    }
}

/// A delivery made due at `at` by its job finishing.
fn due(at: i64) -> Delivery {
    Delivery {
        state: DeliveryState::Pending,
        next_attempt_at: Some(at),
        ..waiting()
    }
}

/// Job `id`'s delivery as `get` shows it at `T0 + 1`.
async fn delivery_of(store: &Store, id: &str) -> Option<Delivery> {
    found(store, "t", id, T0 + 1).await.callback
}

pub async fn create_stores_a_waiting_delivery(store: Store) {
    let new = hooked_job("t", "r");
    let job = create(&store, new.clone(), T0).await;
    assert_eq!(job, new.into_job(T0));
    assert_eq!(job.callback, Some(waiting()));
    assert_eq!(found(&store, "t", &job.id, T0).await, job);
    // Running does not touch it; claim returns it with the job.
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.callback, Some(waiting()));
    let plain = create(&store, new_job("t", "r", None, "fp"), T0).await;
    assert_eq!(delivery_of(&store, &plain.id).await, None);
    // An idempotent retry answers with the job, callback included.
    let keyed = NewJob {
        idempotency_key: Some("k".into()),
        ..hooked_job("t", "r")
    };
    create(&store, keyed.clone(), T0).await;
    let Created::Existing(again) = store.create(keyed, 10, T0 + 1).await.unwrap() else {
        panic!("expected Existing")
    };
    assert_eq!(again.callback, Some(waiting()));
}

pub async fn kind_round_trips(store: Store) {
    let watch = NewJob {
        kind: JobKind::Watch,
        ..hooked_job("t", "r")
    };
    let job = create(&store, watch, T0).await;
    assert_eq!(job.kind, JobKind::Watch);
    assert_eq!(found(&store, "t", &job.id, T0).await.kind, JobKind::Watch);
    let call = create(&store, new_job("t", "r", None, "fp"), T0 + 1).await;
    assert_eq!(found(&store, "t", &call.id, T0).await.kind, JobKind::Call);
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 1_000, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.id, claimed.kind), (job.id, JobKind::Watch));
}

pub async fn complete_makes_the_delivery_due_now(store: Store) {
    let id = run_to_success(&store, hooked_job("t", "r"), T0 + 5).await;
    assert_eq!(delivery_of(&store, &id).await, Some(due(T0 + 5)));
    // Failing counts as finishing too.
    let job = create(&store, hooked_job("t", "s"), T0).await;
    store
        .claim("s", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    let outcome = Outcome::Answered(response(500));
    assert!(store.complete(&job.id, outcome, RET, T0 + 7).await.unwrap());
    assert_eq!(delivery_of(&store, &job.id).await, Some(due(T0 + 7)));
    // A complete that does not land (not running any more) does not move it.
    let outcome = Outcome::Answered(response(200));
    assert!(!store.complete(&job.id, outcome, RET, T0 + 9).await.unwrap());
    assert_eq!(delivery_of(&store, &job.id).await, Some(due(T0 + 7)));
}

pub async fn cancel_and_recover_fail_make_it_due_recover_retry_does_not(store: Store) {
    let pending = create(&store, hooked_job("t", "p"), T0).await;
    let Canceled::Done(job) = store.cancel("t", &pending.id, RET, T0 + 3).await.unwrap() else {
        panic!("not canceled")
    };
    assert_eq!(job.callback, Some(due(T0 + 3)));
    assert_eq!(delivery_of(&store, &pending.id).await, Some(due(T0 + 3)));

    let running = create(&store, hooked_job("t", "q"), T0).await;
    store
        .claim("q", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    let Canceled::Done(job) = store.cancel("t", &running.id, RET, T0 + 4).await.unwrap() else {
        panic!("not canceled")
    };
    assert_eq!(job.callback, Some(due(T0 + 4)));

    let retry = create(&store, hooked_job("t", "retry"), T0).await;
    let fail = create(&store, hooked_job("t", "fail"), T0).await;
    store
        .claim("retry", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    store
        .claim("fail", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    let decide = |route: &str| {
        if route == "retry" {
            Recovery::Retry
        } else {
            Recovery::Fail
        }
    };
    assert_eq!(
        store.recover(T0 + 11, false, RET, &decide).await.unwrap(),
        2
    );
    let retried = found(&store, "t", &retry.id, T0 + 12).await;
    assert_eq!(retried.status, JobStatus::Pending);
    assert_eq!(retried.callback, Some(waiting()));
    let failed = found(&store, "t", &fail.id, T0 + 12).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.callback, Some(due(T0 + 11)));
    // Exactly the finished jobs' deliveries are claimable; the waiting one never is,
    // however late it gets.
    let mut claimed = HashSet::new();
    while let Some((_, job)) = store
        .claim_delivery(DeliveryKind::Callback, T0 + RET, 0, T0 + 2 * RET)
        .await
        .unwrap()
    {
        assert!(claimed.insert(job.id), "claimed twice");
    }
    let expected = [pending.id, running.id, fail.id];
    assert_eq!(claimed, HashSet::from(expected));
}

pub async fn redeliver_schedules_a_fresh_delivery(store: Store) {
    let id = run_to_success(&store, hooked_job("t", "r"), T0).await;
    let (_, job) = store
        .claim_delivery(DeliveryKind::Callback, T0, 0, T0 + 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, id);
    let gave_up = Attempt {
        status: Some(503),
        error: Some("the receiver answered 503".into()),
        next: AttemptNext::GiveUp,
    };
    store
        .record_attempt(&id, DeliveryKind::Callback, gave_up, T0 + 1)
        .await
        .unwrap();
    let before = found(&store, "t", &id, T0 + 2).await;
    assert_eq!(before.callback.as_ref().map(|d| d.attempts), Some(1));

    let Redeliver::Scheduled(after) = store.redeliver("t", &id, T0 + 100).await.unwrap() else {
        panic!("expected Scheduled")
    };
    assert_eq!(after.callback, Some(due(T0 + 100)));
    assert_eq!(
        (after.status, after.updated_at),
        (before.status, before.updated_at)
    );
    assert_eq!(found(&store, "t", &id, T0 + 101).await, after);
    // A fresh schedule: the first attempt's delay applies again.
    assert!(store
        .claim_delivery(DeliveryKind::Callback, T0 + 199, 100, T0 + 300)
        .await
        .unwrap()
        .is_none());
    let (delivery, _) = store
        .claim_delivery(DeliveryKind::Callback, T0 + 200, 100, T0 + 300)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.lease_until, Some(T0 + 300));
    // Even while an attempt is in flight, redeliver starts over (and drops the lease).
    let Redeliver::Scheduled(again) = store.redeliver("t", &id, T0 + 201).await.unwrap() else {
        panic!("expected Scheduled")
    };
    assert_eq!(again.callback, Some(due(T0 + 201)));
}

pub async fn redeliver_refuses_unfinished_plain_foreign_and_expired(store: Store) {
    let running = create(&store, hooked_job("t", "r"), T0).await;
    let result = store.redeliver("t", &running.id, T0).await.unwrap();
    assert!(matches!(result, Redeliver::NotFinished(ref j) if j.id == running.id));

    let plain = run_to_success(&store, new_job("t", "p", None, "fp"), T0).await;
    let result = store.redeliver("t", &plain, T0 + 1).await.unwrap();
    assert!(matches!(result, Redeliver::NoCallback(ref j) if j.id == plain));

    let hooked = run_to_success(&store, hooked_job("t", "h"), T0).await;
    for (tenant, id) in [("intruder", hooked.as_str()), ("t", "unknown")] {
        let result = store.redeliver(tenant, id, T0 + 1).await.unwrap();
        assert!(matches!(result, Redeliver::Missing), "{result:?}");
    }
    // Refusals change nothing.
    assert_eq!(delivery_of(&store, &hooked).await, Some(due(T0)));
    assert_eq!(delivery_of(&store, &running.id).await, Some(waiting()));

    let result = store.redeliver("t", &hooked, T0 + RET).await.unwrap();
    assert!(matches!(result, Redeliver::Expired), "{result:?}");
    assert_eq!(store.sweep(T0 + RET, RET, 100).await.unwrap(), 2);
    let result = store.redeliver("t", &hooked, T0 + RET + 1).await.unwrap();
    assert!(
        matches!(result, Redeliver::Expired),
        "after sweep: {result:?}"
    );
    let result = store
        .redeliver("intruder", &hooked, T0 + RET)
        .await
        .unwrap();
    assert!(matches!(result, Redeliver::Missing), "{result:?}");
}

pub async fn sweep_takes_the_delivery_with_it(store: Store) {
    let id = run_to_success(&store, hooked_job("t", "r"), T0).await;
    assert_eq!(store.sweep(T0 + RET, RET, 10).await.unwrap(), 1);
    assert!(store
        .claim_delivery(DeliveryKind::Callback, T0 + RET, 0, T0 + RET + 10)
        .await
        .unwrap()
        .is_none());
    // A worker finishing an attempt of a swept job is not an error.
    let late = Attempt {
        status: Some(200),
        error: None,
        next: AttemptNext::Delivered,
    };
    store
        .record_attempt(&id, DeliveryKind::Callback, late, T0 + RET)
        .await
        .unwrap();
    // The id may come back (tombstones purged) without inheriting anything.
    let mut reused = new_job("t", "r", None, "fp");
    reused.id = id.clone();
    let purge = T0 + RET + prefer_gateway::store::TOMBSTONE_FACTOR * RET;
    store.sweep(purge, RET, 10).await.unwrap();
    let job = create(&store, reused, purge).await;
    assert_eq!(found(&store, "t", &job.id, purge).await.callback, None);
}
