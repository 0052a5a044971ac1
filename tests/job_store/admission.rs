//! Shared `JobStore` cases — Creating jobs: every field round-trips, idempotency keys, per-tenant queue limits.
//! `tests/job_store.rs` runs each against every store.

use std::collections::HashSet;

use prefer_gateway::store::{Canceled, Created, JobStatus, Outcome};

use crate::{create, failure, found, new_job, request, response, Store, NO_LIMIT, RET, T0};

pub async fn create_then_get_round_trips_every_field(store: Store) {
    let mut new = new_job("acme", "orders", Some("key-1"), "fp-1");
    new.request = request(7);
    let job = create(&store, new.clone(), T0).await;
    assert_eq!(job, new.into_job(T0));
    assert_eq!(found(&store, "acme", &job.id, T0 + 1).await, job);

    let claimed = store
        .claim("orders", NO_LIMIT, T0 + 30_000, T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.status, claimed.attempts), (JobStatus::Running, 1));
    assert_eq!(
        (claimed.lease_until, claimed.updated_at),
        (Some(T0 + 30_000), T0 + 5)
    );
    assert_eq!(found(&store, "acme", &job.id, T0 + 6).await, claimed);

    store
        .complete(&job.id, Outcome::Answered(response(201)), RET, T0 + 9)
        .await
        .unwrap();
    let done = found(&store, "acme", &job.id, T0 + 10).await;
    let expected = prefer_gateway::store::Job {
        status: JobStatus::Succeeded,
        updated_at: T0 + 9,
        expires_at: Some(T0 + 9 + RET),
        response: Some(response(201)),
        lease_until: None,
        ..claimed
    };
    assert_eq!(done, expected);
}

pub async fn idempotent_create_returns_the_original(store: Store) {
    let first = create(&store, new_job("t", "r", Some("k"), "fp"), T0).await;
    for at in [T0 + 1, T0 + 2] {
        match store
            .create(new_job("t", "r", Some("k"), "fp"), 10, at)
            .await
            .unwrap()
        {
            Created::Existing(job) => assert_eq!(job, first),
            other => panic!("expected Existing, got {other:?}"),
        }
    }
    // Still the same job once it has moved on.
    store
        .claim("r", NO_LIMIT, T0 + 100, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    let again = store
        .create(new_job("t", "r", Some("k"), "fp"), 10, T0 + 4)
        .await
        .unwrap();
    assert!(
        matches!(again, Created::Existing(j) if j.id == first.id && j.status == JobStatus::Running)
    );
}

pub async fn same_key_other_request_is_a_conflict(store: Store) {
    create(&store, new_job("t", "r", Some("k"), "fp-a"), T0).await;
    let other = store
        .create(new_job("t", "r", Some("k"), "fp-b"), 10, T0)
        .await
        .unwrap();
    assert!(matches!(other, Created::KeyConflict), "{other:?}");
}

pub async fn same_key_other_tenant_or_route_is_new(store: Store) {
    let a = create(&store, new_job("t1", "r1", Some("k"), "fp"), T0).await;
    let b = create(&store, new_job("t2", "r1", Some("k"), "fp"), T0).await;
    let c = create(&store, new_job("t1", "r2", Some("k"), "fp"), T0).await;
    let ids: HashSet<_> = [a.id, b.id, c.id].into();
    assert_eq!(ids.len(), 3);
}

pub async fn queue_limit_is_per_tenant_and_freed_by_finishing(store: Store) {
    let a = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let b = create(&store, new_job("t", "r", None, "fp"), T0 + 1).await;
    let full = store
        .create(new_job("t", "r", None, "fp"), 2, T0 + 2)
        .await
        .unwrap();
    assert!(matches!(full, Created::QueueFull), "{full:?}");
    let other = store
        .create(new_job("u", "r", None, "fp"), 2, T0 + 2)
        .await
        .unwrap();
    assert!(matches!(other, Created::New(_)), "{other:?}");

    // Finishing one frees a slot...
    assert_eq!(
        store
            .claim("r", NO_LIMIT, T0 + 1_000, T0 + 3)
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(store
        .complete(
            &a.id,
            Outcome::Failed(failure("upstream_timeout")),
            RET,
            T0 + 4
        )
        .await
        .unwrap());
    let c = store
        .create(new_job("t", "r", None, "fp"), 2, T0 + 5)
        .await
        .unwrap();
    assert!(matches!(c, Created::New(_)), "{c:?}");
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 2, T0 + 5)
            .await
            .unwrap(),
        Created::QueueFull
    ));
    // ...and so does canceling one.
    assert!(matches!(
        store.cancel("t", &b.id, RET, T0 + 6).await.unwrap(),
        Canceled::Done(_)
    ));
    let d = store
        .create(new_job("t", "r", None, "fp"), 2, T0 + 7)
        .await
        .unwrap();
    assert!(matches!(d, Created::New(_)), "{d:?}");
}

pub async fn retry_of_an_accepted_key_beats_a_full_queue(store: Store) {
    let first = store
        .create(new_job("t", "r", Some("k"), "fp"), 1, T0)
        .await
        .unwrap();
    let Created::New(first) = first else {
        panic!("{first:?}")
    };
    let retry = store
        .create(new_job("t", "r", Some("k"), "fp"), 1, T0 + 1)
        .await
        .unwrap();
    assert!(
        matches!(retry, Created::Existing(ref j) if j.id == first.id),
        "{retry:?}"
    );
    let conflict = store
        .create(new_job("t", "r", Some("k"), "other"), 1, T0 + 1)
        .await
        .unwrap();
    assert!(matches!(conflict, Created::KeyConflict), "{conflict:?}");
    let fresh = store
        .create(new_job("t", "r", Some("k2"), "fp"), 1, T0 + 1)
        .await
        .unwrap();
    assert!(matches!(fresh, Created::QueueFull), "{fresh:?}");
}

pub async fn concurrent_duplicate_creates_make_one_job(store: Store) {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create(new_job("t", "r", Some("same"), "fp"), 100, T0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut new, mut existing) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Created::New(job) => new.push(job.id),
            Created::Existing(job) => existing.push(job.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((new.len(), existing.len()), (1, 49));
    assert!(existing.iter().all(|id| *id == new[0]));
    // One unfinished job counted, not fifty.
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 2, T0)
            .await
            .unwrap(),
        Created::New(_)
    ));
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 2, T0)
            .await
            .unwrap(),
        Created::QueueFull
    ));
}

/// Many creates at once — on SQLite they share group-committed transactions — still meet
/// the queue limit exactly, a conflicting key inside the same burst is still a conflict,
/// and every job answered `New` is there afterwards.
pub async fn concurrent_creates_meet_the_queue_limit_exactly(store: Store) {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                // Every tenth create reuses one key with a different request.
                let (key, fp) = if i % 10 == 0 {
                    (Some("k"), format!("fp{i}"))
                } else {
                    (None, "fp".to_owned())
                };
                store
                    .create(new_job("t", "r", key, &fp), 50, T0)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut new, mut full, mut conflicts) = (Vec::new(), 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Created::New(job) => new.push(job.id),
            Created::QueueFull => full += 1,
            Created::KeyConflict => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(new.len(), 50, "exactly the limit");
    assert_eq!(new.len() + full + conflicts, 200);
    for id in &new {
        found(&store, "t", id, T0).await;
    }
}
