//! Shared `JobStore` cases — queue position: a pending job's place on its route's shared
//! queue, `1` being the job the next claim takes, counted over every tenant's jobs in claim
//! order (`created_at`, then id), moving up as jobs ahead leave, and absent once the job is
//! not pending. `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::{Job, Outcome, Recovery};

use crate::{create, new_job, response, Store, NO_LIMIT, RET, T0};

/// The positions of `jobs` on `route`, in order.
async fn positions(store: &Store, route: &str, jobs: &[&Job]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for job in jobs {
        out.push(store.queue_position(route, &job.id).await.unwrap());
    }
    out
}

pub async fn positions_follow_claim_order_across_tenants(store: Store) {
    // Created out of order, by three tenants; two in one millisecond (the id decides).
    let c = create(&store, new_job("t1", "r", None, "fp"), T0 + 30).await;
    let a = create(&store, new_job("t2", "r", None, "fp"), T0 + 10).await;
    let tie1 = create(&store, new_job("t3", "r", None, "fp"), T0 + 20).await;
    let tie2 = create(&store, new_job("t1", "r", None, "fp"), T0 + 20).await;
    let (b1, b2) = if tie1.id < tie2.id {
        (tie1, tie2)
    } else {
        (tie2, tie1)
    };
    let other = create(&store, new_job("t1", "s", None, "fp"), T0).await;
    let order = [&a, &b1, &b2, &c];
    assert_eq!(
        positions(&store, "r", &order).await,
        [Some(1), Some(2), Some(3), Some(4)]
    );
    // Each route is its own queue; a job is not on another route's.
    assert_eq!(positions(&store, "s", &[&other]).await, [Some(1)]);
    assert_eq!(positions(&store, "s", &[&a]).await, [None]);
    assert_eq!(
        store.queue_position("r", "no-such-job").await.unwrap(),
        None
    );
    assert_eq!(store.queue_position("nope", &a.id).await.unwrap(), None);

    // Position 1 is what the next claim takes; the rest move up.
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 1_000, T0 + 40)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, a.id);
    assert_eq!(
        positions(&store, "r", &order).await,
        [None, Some(1), Some(2), Some(3)]
    );
    // Running, then finished: no position.
    assert!(store
        .complete(&a.id, Outcome::Answered(response(200)), RET, T0 + 50)
        .await
        .unwrap());
    assert_eq!(positions(&store, "r", &[&a]).await, [None]);
}

pub async fn a_cancel_ahead_moves_the_queue_up(store: Store) {
    let jobs = [
        create(&store, new_job("t", "r", None, "fp"), T0).await,
        create(&store, new_job("u", "r", None, "fp"), T0 + 1).await,
        create(&store, new_job("t", "r", None, "fp"), T0 + 2).await,
    ];
    let all: Vec<&Job> = jobs.iter().collect();
    store.cancel("u", &jobs[1].id, RET, T0 + 3).await.unwrap();
    assert_eq!(positions(&store, "r", &all).await, [Some(1), None, Some(2)]);
    store.cancel("t", &jobs[0].id, RET, T0 + 4).await.unwrap();
    assert_eq!(positions(&store, "r", &all).await, [None, None, Some(1)]);
}

pub async fn a_recovered_job_goes_back_to_its_place(store: Store) {
    let first = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let second = create(&store, new_job("t", "r", None, "fp"), T0 + 1).await;
    store
        .claim("r", NO_LIMIT, T0 + 100, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        positions(&store, "r", &[&first, &second]).await,
        [None, Some(1)]
    );
    // Its runner died: re-queued by its original `created_at`, so ahead again.
    let n = store
        .recover(T0 + 101, false, RET, &|_: &str| Recovery::Retry)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        positions(&store, "r", &[&first, &second]).await,
        [Some(1), Some(2)]
    );
}
