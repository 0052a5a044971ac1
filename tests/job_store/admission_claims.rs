//! Shared `JobStore` cases — Admission deliveries, claimed and recorded by kind: a claim
//! for one kind returns only that kind's deliveries, in that kind's own due order and with
//! that kind's first delay; leases and recorded attempts touch only the delivery of that
//! kind, never the callback beside it.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::model::{AttemptNext, Delivery, DeliveryKind, DeliveryState};

use crate::admission_deliveries::{admission_of, admitted, attempt, both, claim, due, ADMIT};
use crate::{found, hooked_job, run_to_success, Store, HOOK, RET, T0};

pub async fn claims_by_kind_return_only_that_kind(store: Store) {
    let two = run_to_success(&store, both("both"), T0).await;
    let hook_only = run_to_success(&store, hooked_job("t", "hook"), T0 + 1).await;
    let admit_only = run_to_success(&store, admitted("admit", None), T0 + 2).await;
    let now = T0 + 10;
    let admission = DeliveryKind::Admission;
    assert_eq!(
        claim(&store, admission, now, 0, now + 50).await,
        Some(two.clone())
    );
    // The admission's lease is its own: the callback beside it is untouched.
    let job = found(&store, "t", &two, now).await;
    assert_eq!(job.callback, Some(due(HOOK, T0)));
    assert_eq!(
        claim(&store, admission, now, 0, now + 50).await,
        Some(admit_only.clone())
    );
    assert_eq!(claim(&store, admission, now, 0, now + 50).await, None);
    let callback = DeliveryKind::Callback;
    assert_eq!(
        claim(&store, callback, now, 0, now + 60).await,
        Some(two.clone())
    );
    assert_eq!(
        claim(&store, callback, now, 0, now + 60).await,
        Some(hook_only)
    );
    assert_eq!(claim(&store, callback, now, 0, now + 60).await, None);
    // Both leases held on one job at once, each where it belongs.
    let job = found(&store, "t", &two, now).await;
    assert_eq!(job.callback.unwrap().lease_until, Some(now + 60));
    assert_eq!(job.admission.unwrap().delivery.lease_until, Some(now + 50));
    let job = found(&store, "t", &admit_only, now).await;
    assert_eq!((job.callback, job.admission.is_some()), (None, true));
}

pub async fn a_leased_admission_waits_for_its_lease(store: Store) {
    let id = run_to_success(&store, admitted("r", Some("res-1")), T0).await;
    let admission = DeliveryKind::Admission;
    assert_eq!(
        claim(&store, admission, T0, 0, T0 + 100).await,
        Some(id.clone())
    );
    assert_eq!(claim(&store, admission, T0 + 50, 0, T0 + 500).await, None);
    assert_eq!(claim(&store, admission, T0 + 100, 0, T0 + 500).await, None);
    // The worker died: after the lease, the release is claimed again, not yet attempted.
    assert_eq!(
        claim(&store, admission, T0 + 101, 0, T0 + 500).await,
        Some(id.clone())
    );
    let again = admission_of(&store, &id).await.unwrap();
    assert_eq!((again.attempts, again.lease_until), (0, Some(T0 + 500)));
}

pub async fn concurrent_admission_claims_never_share_a_delivery(store: Store) {
    for i in 0..5 {
        run_to_success(&store, both(&format!("r{i}")), T0).await;
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            // Callback claims race alongside and must not take admission deliveries.
            let kind = DeliveryKind::ALL[i % 2];
            tokio::spawn(async move {
                let claimed = store.claim_delivery(kind, T0 + 10, 0, T0 + 1_000).await;
                (kind, claimed.unwrap().map(|(_, job)| job.id))
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        if let (kind, Some(id)) = task.await.unwrap() {
            assert!(ids.insert((kind, id)), "a delivery was claimed twice");
        }
    }
    assert_eq!(ids.len(), 10);
}

pub async fn record_attempt_by_kind_touches_only_that_kind(store: Store) {
    let cases = [
        (
            attempt(Some(204), AttemptNext::Delivered),
            DeliveryState::Delivered,
        ),
        (
            attempt(Some(500), AttemptNext::GiveUp),
            DeliveryState::Failed,
        ),
        (
            attempt(Some(410), AttemptNext::Stop),
            DeliveryState::Stopped,
        ),
        (
            attempt(None, AttemptNext::Retry(T0 + 777)),
            DeliveryState::Pending,
        ),
    ];
    let admission = DeliveryKind::Admission;
    let mut retried = None;
    for (i, (attempt, state)) in cases.into_iter().enumerate() {
        let id = run_to_success(&store, both(&format!("r{i}")), T0).await;
        assert_eq!(
            claim(&store, admission, T0, 0, T0 + 50).await,
            Some(id.clone())
        );
        let expected = Delivery {
            state,
            attempts: 1,
            next_attempt_at: (state == DeliveryState::Pending).then_some(T0 + 777),
            last_status: attempt.status,
            last_error: attempt.error.clone(),
            lease_until: None,
            url: ADMIT.into(),
        };
        store
            .record_attempt(&id, admission, attempt, T0 + 1)
            .await
            .unwrap();
        let job = found(&store, "t", &id, T0 + 2).await;
        assert_eq!(job.admission.unwrap().delivery, expected);
        assert_eq!(
            job.callback,
            Some(due(HOOK, T0)),
            "the callback is untouched"
        );
        if state == DeliveryState::Pending {
            retried = Some(id);
        }
    }
    // Settled releases are never claimed again; the retried one is, at its time.
    assert_eq!(claim(&store, admission, T0 + 776, 0, T0 + RET).await, None);
    assert_eq!(
        claim(&store, admission, T0 + 777, 0, T0 + RET).await,
        retried
    );
    // The callbacks are all still due, each once.
    let mut hooks = 0;
    while claim(&store, DeliveryKind::Callback, T0, 0, T0 + 50)
        .await
        .is_some()
    {
        hooks += 1;
    }
    assert_eq!(hooks, 4);
    // No admission (or no job): nothing to record, not an error, the callback untouched.
    let hooked = run_to_success(&store, hooked_job("t", "h"), T0).await;
    let done = attempt(Some(200), AttemptNext::Delivered);
    store
        .record_attempt(&hooked, admission, done.clone(), T0)
        .await
        .unwrap();
    store
        .record_attempt("unknown", admission, done, T0)
        .await
        .unwrap();
    let job = found(&store, "t", &hooked, T0).await;
    assert_eq!((job.callback, job.admission), (Some(due(HOOK, T0)), None));
}

pub async fn first_delay_and_due_order_are_per_kind(store: Store) {
    // A backlog of overdue callbacks...
    for i in 0..3 {
        run_to_success(&store, hooked_job("t", &format!("h{i}")), T0 - 10_000).await;
    }
    // ...does not come before a later admission, nor does its delay apply to it.
    let late = run_to_success(&store, admitted("a", None), T0 + 5).await;
    let early = run_to_success(&store, admitted("b", None), T0).await;
    let admission = DeliveryKind::Admission;
    assert_eq!(claim(&store, admission, T0 + 4, 5, T0 + 100).await, None);
    assert_eq!(
        claim(&store, admission, T0 + 5, 5, T0 + 100).await,
        Some(early)
    );
    assert_eq!(claim(&store, admission, T0 + 9, 5, T0 + 100).await, None);
    assert_eq!(
        claim(&store, admission, T0 + 10, 5, T0 + 100).await,
        Some(late)
    );
    // The callbacks wait their own (longer) first delay, unaffected by the claims above.
    let callback = DeliveryKind::Callback;
    assert_eq!(
        claim(&store, callback, T0 - 1, 10_000, T0 + 100).await,
        None
    );
    for _ in 0..3 {
        assert!(claim(&store, callback, T0, 10_000, T0 + 100)
            .await
            .is_some());
    }
    assert_eq!(claim(&store, callback, T0, 10_000, T0 + 100).await, None);
}
