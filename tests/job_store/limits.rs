//! Shared `JobStore` cases — the claim limit: `claim` refuses once `max_running` jobs of
//! the route are running, and every way out of running (complete, cancel, recover either
//! way) frees a slot. `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::{Canceled, JobStatus, Outcome, Recovery};

use crate::{create, found, new_job, response, Store, RET, T0};

/// Claims the next job of `route` under `max` with a lease until `lease`; its id.
async fn claim(store: &Store, route: &str, max: u32, lease: i64) -> Option<String> {
    store
        .claim(route, max, lease, T0)
        .await
        .unwrap()
        .map(|job| job.id)
}

pub async fn claims_stop_at_max_running_until_one_leaves(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            create(&store, new_job("t", "r", None, "fp"), T0 + i)
                .await
                .id,
        );
    }
    assert_eq!(claim(&store, "r", 2, T0 + 100).await, Some(ids[0].clone()));
    assert_eq!(claim(&store, "r", 2, T0 + 100).await, Some(ids[1].clone()));
    assert_eq!(claim(&store, "r", 2, T0 + 100).await, None, "two running");
    assert_eq!(
        claim(&store, "r", 1, T0 + 100).await,
        None,
        "over a lower limit"
    );
    assert_eq!(claim(&store, "r", 0, T0 + 100).await, None, "a zero limit");
    assert_eq!(
        found(&store, "t", &ids[2], T0 + 1).await.status,
        JobStatus::Pending,
        "a refused claim leaves the job pending"
    );

    // Completing frees a slot.
    let ok = Outcome::Answered(response(200));
    assert!(store.complete(&ids[0], ok, RET, T0 + 10).await.unwrap());
    assert_eq!(
        claim(&store, "r", 2, T0 + 1_000).await,
        Some(ids[2].clone())
    );
    assert_eq!(claim(&store, "r", 2, T0 + 1_000).await, None);

    // Canceling a running job frees a slot.
    let canceled = store.cancel("t", &ids[1], RET, T0 + 20).await.unwrap();
    assert!(matches!(canceled, Canceled::Done(_)));
    assert_eq!(
        claim(&store, "r", 2, T0 + 1_000).await,
        Some(ids[3].clone())
    );
    assert_eq!(claim(&store, "r", 2, T0 + 1_000).await, None);

    // Recovery back to pending frees both slots; the jobs are claimable again.
    let retry = |_: &str| Recovery::Retry;
    assert_eq!(
        store.recover(T0 + 1_001, false, RET, &retry).await.unwrap(),
        2
    );
    assert_eq!(
        claim(&store, "r", 2, T0 + 2_000).await,
        Some(ids[2].clone())
    );
    assert_eq!(
        claim(&store, "r", 2, T0 + 2_000).await,
        Some(ids[3].clone())
    );
    assert_eq!(claim(&store, "r", 2, T0 + 2_000).await, None);

    // Recovery to failed frees them too.
    let fail = |_: &str| Recovery::Fail;
    assert_eq!(
        store.recover(T0 + 2_001, false, RET, &fail).await.unwrap(),
        2
    );
    assert_eq!(
        claim(&store, "r", 2, T0 + 3_000).await,
        Some(ids[4].clone())
    );
    assert_eq!(
        claim(&store, "r", 2, T0 + 3_000).await,
        None,
        "none pending"
    );
    assert_eq!(
        found(&store, "t", &ids[2], T0 + 2_002).await.status,
        JobStatus::Failed
    );
}

pub async fn limits_are_per_route(store: Store) {
    for i in 0..3 {
        create(&store, new_job("t", "a", None, "fp"), T0 + i).await;
        create(&store, new_job("t", "b", None, "fp"), T0 + i).await;
    }
    // A finished job of the route does not count.
    let done = claim(&store, "a", 1, T0 + 100).await.unwrap();
    let ok = Outcome::Answered(response(200));
    assert!(store.complete(&done, ok, RET, T0 + 1).await.unwrap());

    assert!(claim(&store, "a", 2, T0 + 100).await.is_some());
    assert!(claim(&store, "a", 2, T0 + 100).await.is_some());
    assert_eq!(claim(&store, "a", 2, T0 + 100).await, None);
    // Route `a` at its limit does not hold `b` back, and `b`'s own limit applies.
    assert!(claim(&store, "b", 1, T0 + 100).await.is_some());
    assert_eq!(claim(&store, "b", 1, T0 + 100).await, None);
    assert!(claim(&store, "b", 2, T0 + 100).await.is_some());
    assert_eq!(
        claim(&store, "a", 2, T0 + 100).await,
        None,
        "still two of a"
    );
}

pub async fn concurrent_claims_respect_the_limit(store: Store) {
    for i in 0..20 {
        create(&store, new_job("t", "r", None, "fp"), T0 + i).await;
    }
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim("r", 3, T0 + 1_000, T0 + 50).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        claimed += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(claimed, 3, "claims racing for the last slots");
}
