//! Shared `JobStore` cases — Running jobs: claim order and exclusivity, leases, completion, cancellation, recovery.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::{Canceled, Created, JobStatus, Outcome, Recovery};

use crate::{create, failure, finished, found, new_job, response, Store, NO_LIMIT, RET, T0};

pub async fn claim_takes_the_oldest_pending_job_of_its_route(store: Store) {
    let late = create(&store, new_job("t", "a", None, "fp"), T0 + 20).await;
    let early = create(&store, new_job("t", "a", None, "fp"), T0 + 10).await;
    let other = create(&store, new_job("t", "b", None, "fp"), T0).await;
    // Same millisecond: the id breaks the tie (UUIDv7 ids are time-ordered).
    let tie1 = create(&store, new_job("t", "c", None, "fp"), T0).await;
    let tie2 = create(&store, new_job("t", "c", None, "fp"), T0).await;
    let (first, second) = if tie1.id < tie2.id {
        (tie1, tie2)
    } else {
        (tie2, tie1)
    };

    let claim = |route: &'static str| {
        let store = store.clone();
        async move {
            store
                .claim(route, NO_LIMIT, T0 + 1_000, T0 + 30)
                .await
                .unwrap()
                .map(|j| j.id)
        }
    };
    assert_eq!(claim("a").await, Some(early.id));
    assert_eq!(claim("a").await, Some(late.id));
    assert_eq!(claim("a").await, None);
    assert_eq!(claim("c").await, Some(first.id));
    assert_eq!(claim("c").await, Some(second.id));
    assert_eq!(claim("b").await, Some(other.id));
    assert_eq!(claim("nope").await, None);
}

pub async fn concurrent_claims_never_share_a_job(store: Store) {
    for i in 0..20 {
        create(&store, new_job("t", "r", None, "fp"), T0 + i).await;
    }
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim("r", NO_LIMIT, T0 + 1_000, T0 + 50)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        if let Some(job) = task.await.unwrap() {
            assert_eq!(job.attempts, 1);
            assert!(ids.insert(job.id), "a job was claimed twice");
        }
    }
    assert_eq!(ids.len(), 20);
}

pub async fn renew_only_while_running(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    assert!(
        !store.renew(&job.id, T0 + 9_000, T0).await.unwrap(),
        "pending"
    );
    store
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(store.renew(&job.id, T0 + 9_000, T0 + 500).await.unwrap());
    assert_eq!(
        found(&store, "t", &job.id, T0 + 501).await.lease_until,
        Some(T0 + 9_000)
    );
    store.cancel("t", &job.id, RET, T0 + 600).await.unwrap();
    assert!(
        !store.renew(&job.id, T0 + 9_999, T0 + 700).await.unwrap(),
        "canceled"
    );
    assert!(!store.renew("unknown", T0 + 9_999, T0 + 700).await.unwrap());
}

pub async fn complete_2xx_succeeds(store: Store) {
    let id = finished(&store, "t", "r", T0).await;
    let job = found(&store, "t", &id, T0 + 1).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!((job.response, job.error), (Some(response(200)), None));
    assert_eq!((job.expires_at, job.lease_until), (Some(T0 + RET), None));
}

pub async fn complete_non_2xx_fails_and_keeps_the_response(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .complete(&job.id, Outcome::Answered(response(404)), RET, T0 + 5)
        .await
        .unwrap());
    let job = found(&store, "t", &job.id, T0 + 6).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.response, Some(response(404)));
    let error = job.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("upstream_status", "the upstream answered 404")
    );
    assert_eq!(job.expires_at, Some(T0 + 5 + RET));
}

pub async fn complete_failed_keeps_the_error_only(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    let outcome = Outcome::Failed(failure("upstream_unreachable"));
    assert!(store.complete(&job.id, outcome, RET, T0 + 5).await.unwrap());
    let job = found(&store, "t", &job.id, T0 + 6).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        (job.response, job.error),
        (None, Some(failure("upstream_unreachable")))
    );
}

pub async fn complete_only_while_running(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let ok = Outcome::Answered(response(200));
    assert!(
        !store.complete(&job.id, ok.clone(), RET, T0).await.unwrap(),
        "pending"
    );
    store
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    store.cancel("t", &job.id, RET, T0 + 1).await.unwrap();
    assert!(
        !store
            .complete(&job.id, ok.clone(), RET, T0 + 2)
            .await
            .unwrap(),
        "canceled"
    );
    let after = found(&store, "t", &job.id, T0 + 3).await;
    assert_eq!((after.status, after.response), (JobStatus::Canceled, None));
    assert!(!store.complete("unknown", ok, RET, T0).await.unwrap());
    // The count was decremented once, not twice: one slot for one unfinished job.
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 1, T0 + 4)
            .await
            .unwrap(),
        Created::New(_)
    ));
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 1, T0 + 4)
            .await
            .unwrap(),
        Created::QueueFull
    ));
}

pub async fn cancel_pending_and_running(store: Store) {
    let pending = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let running = create(&store, new_job("t", "s", None, "fp"), T0).await;
    store
        .claim("s", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    for id in [&pending.id, &running.id] {
        let Canceled::Done(job) = store.cancel("t", id, RET, T0 + 7).await.unwrap() else {
            panic!("not canceled")
        };
        assert_eq!(
            (job.status, job.updated_at, job.expires_at),
            (JobStatus::Canceled, T0 + 7, Some(T0 + 7 + RET))
        );
        let error = job.error.clone().unwrap();
        assert_eq!(
            (error.code.as_str(), error.message.as_str()),
            ("canceled", "canceled by the client")
        );
        assert_eq!(job.lease_until, None);
        assert_eq!(found(&store, "t", id, T0 + 8).await, job);
    }
    assert_eq!(
        store
            .claim("r", NO_LIMIT, T0 + 1_000, T0 + 9)
            .await
            .unwrap(),
        None,
        "canceled jobs are not claimed"
    );
}

pub async fn cancel_terminal_foreign_unknown(store: Store) {
    let id = finished(&store, "t", "r", T0).await;
    let Canceled::AlreadyTerminal(job) = store.cancel("t", &id, RET, T0 + 1).await.unwrap() else {
        panic!("expected AlreadyTerminal")
    };
    assert_eq!(job.status, JobStatus::Succeeded);
    let pending = create(&store, new_job("t", "r", None, "fp"), T0).await;
    assert!(matches!(
        store
            .cancel("intruder", &pending.id, RET, T0)
            .await
            .unwrap(),
        Canceled::Missing
    ));
    assert_eq!(
        found(&store, "t", &pending.id, T0).await.status,
        JobStatus::Pending
    );
    assert!(matches!(
        store.cancel("t", "unknown", RET, T0).await.unwrap(),
        Canceled::Missing
    ));
}

pub async fn recover_retry_and_fail(store: Store) {
    let retry = create(&store, new_job("t", "retry", None, "fp"), T0).await;
    let fail = create(&store, new_job("t", "fail", None, "fp"), T0).await;
    let fresh = create(&store, new_job("t", "fail", None, "fp"), T0 + 1).await;
    store
        .claim("retry", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    store
        .claim("fail", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    store
        .claim("fail", NO_LIMIT, T0 + 10_000, T0)
        .await
        .unwrap()
        .unwrap(); // lease still valid
    let decide = |route: &str| {
        if route == "retry" {
            Recovery::Retry
        } else {
            Recovery::Fail
        }
    };
    assert_eq!(
        store.recover(T0 + 100, false, RET, &decide).await.unwrap(),
        0,
        "lease not yet over"
    );
    assert_eq!(
        store.recover(T0 + 101, false, RET, &decide).await.unwrap(),
        2
    );

    let r = found(&store, "t", &retry.id, T0 + 102).await;
    assert_eq!(
        (r.status, r.lease_until, r.attempts, r.updated_at),
        (JobStatus::Pending, None, 1, T0 + 101)
    );
    assert_eq!(
        store
            .claim("retry", NO_LIMIT, T0 + 500, T0 + 103)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        2
    );

    let f = found(&store, "t", &fail.id, T0 + 102).await;
    assert_eq!(
        (f.status, f.lease_until, f.expires_at),
        (JobStatus::Failed, None, Some(T0 + 101 + RET))
    );
    let error = f.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        (
            "interrupted",
            "the gateway stopped while this job was running"
        )
    );
    assert_eq!(
        found(&store, "t", &fresh.id, T0 + 102).await.status,
        JobStatus::Running
    );
    // Failing freed a slot: two unfinished remain (the retried and the fresh job).
    assert!(matches!(
        store
            .create(new_job("t", "x", None, "fp"), 3, T0)
            .await
            .unwrap(),
        Created::New(_)
    ));
}

pub async fn recover_ignoring_leases(store: Store) {
    let a = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let b = create(&store, new_job("t", "r", None, "fp"), T0 + 1).await;
    let pending = create(&store, new_job("t", "r", None, "fp"), T0 + 2).await;
    store
        .claim("r", NO_LIMIT, T0 + 60_000, T0)
        .await
        .unwrap()
        .unwrap();
    store
        .claim("r", NO_LIMIT, T0 + 60_000, T0)
        .await
        .unwrap()
        .unwrap();
    let retry = |_: &str| Recovery::Retry;
    assert_eq!(store.recover(T0 + 5, false, RET, &retry).await.unwrap(), 0);
    assert_eq!(store.recover(T0 + 5, true, RET, &retry).await.unwrap(), 2);
    for id in [&a.id, &b.id, &pending.id] {
        assert_eq!(
            found(&store, "t", id, T0 + 6).await.status,
            JobStatus::Pending
        );
    }
    assert_eq!(
        store.recover(T0 + 7, true, RET, &retry).await.unwrap(),
        0,
        "nothing running"
    );
}
