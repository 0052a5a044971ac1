//! Shared `JobStore` cases — Admission deliveries, their life with the job: a job's
//! second delivery, the settle / release of its admission, is stored with its job
//! (reservation or not), waits while the job is unfinished, becomes due at every terminal
//! transition and only those, and is swept with its job. How releases are claimed and
//! recorded, apart from callbacks, is in `admission_claims.rs`; the helpers both use are
//! here.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::model::{
    Admission, Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, Millis, NewAdmission,
};
use prefer_gateway::store::{Canceled, Created, JobStatus, NewJob, Outcome, Recovery};

use crate::{
    create, failure, found, hooked_job, new_job, response, run_to_success, Store, HOOK, NO_LIMIT,
    RET, T0,
};

/// The admission endpoint the cases register.
pub const ADMIT: &str = "https://billing.internal/admit";

/// A new job on `route` admitted with `reservation`, no callback.
pub fn admitted(route: &str, reservation: Option<&str>) -> NewJob {
    NewJob {
        admission: Some(NewAdmission {
            url: ADMIT.into(),
            reservation: reservation.map(Into::into),
        }),
        ..new_job("t", route, None, "fp")
    }
}

/// A new job on `route` with both a callback and an admission (reservation `res-1`).
pub fn both(route: &str) -> NewJob {
    NewJob {
        callback: Some(HOOK.into()),
        ..admitted(route, Some("res-1"))
    }
}

/// `url`'s delivery as stored with a new job.
pub fn waiting(url: &str) -> Delivery {
    Delivery {
        url: url.into(),
        state: DeliveryState::Waiting,
        attempts: 0,
        next_attempt_at: None,
        last_status: None,
        last_error: None,
        lease_until: None,
    }
}

/// `url`'s delivery made due at `at` by its job ending.
pub fn due(url: &str, at: Millis) -> Delivery {
    Delivery {
        state: DeliveryState::Pending,
        next_attempt_at: Some(at),
        ..waiting(url)
    }
}

/// Job `id`'s admission delivery as `get` shows it.
pub async fn admission_of(store: &Store, id: &str) -> Option<Delivery> {
    found(store, "t", id, T0 + 1)
        .await
        .admission
        .map(|a| a.delivery)
}

/// Claims a delivery of `kind` at `now` (first delay `delay`, lease `lease`); the job id,
/// after checking the claim returned that kind's delivery of the job, leased.
pub async fn claim(
    store: &Store,
    kind: DeliveryKind,
    now: Millis,
    delay: i64,
    lease: Millis,
) -> Option<String> {
    let (delivery, job) = store
        .claim_delivery(kind, now, delay, lease)
        .await
        .unwrap()?;
    assert_eq!(job.delivery(kind), Some(&delivery), "{kind:?}");
    assert_eq!(delivery.lease_until, Some(lease), "{kind:?}");
    Some(job.id)
}

pub fn attempt(status: Option<u16>, next: AttemptNext) -> Attempt {
    Attempt {
        status,
        error: status
            .filter(|s| *s >= 300)
            .map(|s| format!("answered {s}")),
        next,
    }
}
pub async fn admission_round_trips_with_and_without_reservation(store: Store) {
    for reservation in [Some("res-\u{e9}:42"), None] {
        let new = admitted("r", reservation);
        let job = create(&store, new.clone(), T0).await;
        assert_eq!(job, new.into_job(T0));
        let expected = Admission {
            reservation: reservation.map(Into::into),
            delivery: waiting(ADMIT),
        };
        assert_eq!(job.admission, Some(expected));
        assert_eq!(job.callback, None);
        assert_eq!(found(&store, "t", &job.id, T0).await, job);
    }
    let job = create(&store, both("r"), T0).await;
    assert_eq!(job.callback, Some(waiting(HOOK)));
    assert_eq!(found(&store, "t", &job.id, T0).await, job);
    assert_eq!(
        create(&store, hooked_job("t", "r"), T0).await.admission,
        None
    );
    // An idempotent retry answers with the job, admission included.
    let keyed = NewJob {
        idempotency_key: Some("k".into()),
        ..both("r")
    };
    let first = create(&store, keyed.clone(), T0).await;
    let Created::Existing(again) = store.create(keyed, 10, T0 + 1).await.unwrap() else {
        panic!("expected Existing")
    };
    assert_eq!(again, first);
}

pub async fn admission_waits_while_pending_and_running(store: Store) {
    let job = create(&store, both("r"), T0).await;
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.admission, job.admission);
    assert!(store.renew(&job.id, T0 + 20, T0 + 5).await.unwrap());
    assert_eq!(admission_of(&store, &job.id).await, Some(waiting(ADMIT)));
    for kind in DeliveryKind::ALL {
        assert_eq!(claim(&store, kind, T0 + RET, 0, T0 + 2 * RET).await, None);
    }
}

pub async fn every_terminal_transition_makes_the_admission_due(store: Store) {
    // complete: succeeded (settle), failed by status or by error (release).
    let ok = run_to_success(&store, both("ok"), T0 + 1).await;
    let mut ids = vec![(ok, T0 + 1)];
    let outcomes = [
        Outcome::Answered(response(500)),
        Outcome::Failed(failure("upstream_timeout")),
    ];
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let route = format!("bad{i}");
        let job = create(&store, both(&route), T0).await;
        store
            .claim(&route, NO_LIMIT, T0 + 100, T0)
            .await
            .unwrap()
            .unwrap();
        let at = T0 + 2 + i as i64;
        assert!(store.complete(&job.id, outcome, RET, at).await.unwrap());
        assert_eq!(
            found(&store, "t", &job.id, at).await.status,
            JobStatus::Failed
        );
        ids.push((job.id, at));
    }
    // cancel, pending and running.
    let pending = create(&store, both("p"), T0).await;
    let running = create(&store, both("q"), T0).await;
    store
        .claim("q", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    for (job, at) in [(pending, T0 + 4), (running, T0 + 5)] {
        let Canceled::Done(done) = store.cancel("t", &job.id, RET, at).await.unwrap() else {
            panic!("not canceled")
        };
        assert_eq!(done.admission.map(|a| a.delivery), Some(due(ADMIT, at)));
        ids.push((job.id, at));
    }
    // recover → failed (interrupted).
    let stale = create(&store, both("stale"), T0).await;
    store
        .claim("stale", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    let fail = |_: &str| Recovery::Fail;
    assert_eq!(store.recover(T0 + 11, false, RET, &fail).await.unwrap(), 1);
    ids.push((stale.id, T0 + 11));

    for (id, at) in &ids {
        let job = found(&store, "t", id, T0 + 12).await;
        assert!(job.status.is_terminal(), "{:?}", job.status);
        let expected = Admission {
            reservation: Some("res-1".into()),
            delivery: due(ADMIT, *at),
        };
        assert_eq!(job.admission, Some(expected), "{:?}", job.status);
        assert_eq!(job.callback, Some(due(HOOK, *at)), "the callback too");
    }
    // Each finished job's admission is claimable once.
    let mut claimed = HashSet::new();
    while let Some(id) = claim(&store, DeliveryKind::Admission, T0 + 20, 0, T0 + RET).await {
        assert!(claimed.insert(id), "claimed twice");
    }
    let expected: HashSet<String> = ids.into_iter().map(|(id, _)| id).collect();
    assert_eq!(claimed, expected);
}

pub async fn recover_retry_leaves_the_admission_waiting(store: Store) {
    let job = create(&store, both("r"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 10, T0)
        .await
        .unwrap()
        .unwrap();
    let retry = |_: &str| Recovery::Retry;
    assert_eq!(store.recover(T0 + 11, false, RET, &retry).await.unwrap(), 1);
    let requeued = found(&store, "t", &job.id, T0 + 12).await;
    assert_eq!(requeued.status, JobStatus::Pending);
    assert_eq!(admission_of(&store, &job.id).await, Some(waiting(ADMIT)));
    assert_eq!(requeued.callback, Some(waiting(HOOK)));
    for kind in DeliveryKind::ALL {
        assert_eq!(claim(&store, kind, T0 + RET, 0, T0 + 2 * RET).await, None);
    }
    // Its second run ends it: only then is the admission due.
    store
        .claim("r", NO_LIMIT, T0 + 100, T0 + 20)
        .await
        .unwrap()
        .unwrap();
    let outcome = Outcome::Answered(response(200));
    assert!(store
        .complete(&job.id, outcome, RET, T0 + 30)
        .await
        .unwrap());
    assert_eq!(
        admission_of(&store, &job.id).await,
        Some(due(ADMIT, T0 + 30))
    );
}

pub async fn sweep_takes_admission_deliveries_with_it(store: Store) {
    // Swept in each state a release can be in: pending and never attempted (its lease
    // over), retrying, settled.
    let fresh = run_to_success(&store, both("a"), T0).await;
    let retried = run_to_success(&store, admitted("b", Some("res-2")), T0).await;
    let settled = run_to_success(&store, admitted("c", None), T0).await;
    let admission = DeliveryKind::Admission;
    let mut claimed = HashSet::new();
    while let Some(id) = claim(&store, admission, T0, 0, T0 + 1).await {
        claimed.insert(id);
    }
    let all: HashSet<String> = [&fresh, &retried, &settled].map(Clone::clone).into();
    assert_eq!(claimed, all);
    let retry = attempt(Some(503), AttemptNext::Retry(T0 + 5));
    store
        .record_attempt(&retried, admission, retry, T0 + 1)
        .await
        .unwrap();
    let done = attempt(Some(200), AttemptNext::Delivered);
    store
        .record_attempt(&settled, admission, done.clone(), T0 + 1)
        .await
        .unwrap();
    assert_eq!(store.sweep(T0 + RET, RET, 10).await.unwrap(), 3);
    for kind in DeliveryKind::ALL {
        assert_eq!(claim(&store, kind, T0 + RET, 0, T0 + 2 * RET).await, None);
    }
    // A late worker recording an attempt of a swept job is not an error.
    store
        .record_attempt(&retried, admission, done, T0 + RET)
        .await
        .unwrap();
    // A reused id (tombstones purged) inherits nothing.
    let purge = T0 + RET + prefer_gateway::store::TOMBSTONE_FACTOR * RET;
    store.sweep(purge, RET, 10).await.unwrap();
    let mut reused = new_job("t", "a", None, "fp");
    reused.id = fresh.clone();
    let job = create(&store, reused, purge).await;
    let job = found(&store, "t", &job.id, purge).await;
    assert_eq!((job.callback, job.admission), (None, None));
    assert_eq!(
        claim(&store, admission, purge + RET, 0, purge + 2 * RET).await,
        None
    );
}
