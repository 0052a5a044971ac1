//! Shared `JobStore` cases — queue depths for `/metrics`: `depths` counts the pending and
//! running jobs of every route that has any, sorted by route, and follows every way in and
//! out of those states. `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::RouteDepth;
use prefer_gateway::store::{Outcome, Recovery};

use crate::{create, new_job, response, Store, NO_LIMIT, RET, T0};

fn depth(route: &str, pending: u64, running: u64) -> RouteDepth {
    RouteDepth {
        route: route.into(),
        pending,
        running,
    }
}

/// Claims the next job of `route`; its id.
async fn claim(store: &Store, route: &str) -> String {
    store
        .claim(route, NO_LIMIT, T0 + 1_000, T0 + 10)
        .await
        .unwrap()
        .expect("a pending job to claim")
        .id
}

pub async fn depths_count_pending_and_running_per_route(store: Store) {
    assert_eq!(store.depths().await.unwrap(), Vec::new(), "an empty store");

    // Created out of name order; a route name with glob metacharacters and a `:`, which
    // the Redis store finds by pattern.
    let mut orders = Vec::new();
    for i in 0..4 {
        orders.push(
            create(&store, new_job("t", "orders", None, "fp"), T0 + i)
                .await
                .id,
        );
    }
    let odd = "r*[x]?:\\";
    for i in 0..3 {
        create(&store, new_job("u", odd, None, "fp"), T0 + i).await;
    }
    let billing = create(&store, new_job("t", "billing", None, "fp"), T0)
        .await
        .id;
    let only_running = create(&store, new_job("u", "alone", None, "fp"), T0)
        .await
        .id;
    let finished = create(&store, new_job("t", "done", None, "fp"), T0)
        .await
        .id;
    assert_eq!(
        store.depths().await.unwrap(),
        vec![
            depth("alone", 1, 0),
            depth("billing", 1, 0),
            depth("done", 1, 0),
            depth("orders", 4, 0),
            depth(odd, 3, 0),
        ]
    );

    assert_eq!(claim(&store, "orders").await, orders[0]);
    assert_eq!(claim(&store, "orders").await, orders[1]);
    claim(&store, odd).await;
    assert_eq!(claim(&store, "alone").await, only_running);
    assert_eq!(claim(&store, "done").await, finished);
    let ok = || Outcome::Answered(response(200));
    assert!(store
        .complete(&orders[0], ok(), RET, T0 + 20)
        .await
        .unwrap());
    assert!(store.complete(&finished, ok(), RET, T0 + 20).await.unwrap());
    assert_eq!(
        store.depths().await.unwrap(),
        vec![
            depth("alone", 0, 1),
            depth("billing", 1, 0),
            depth("orders", 2, 1),
            depth(odd, 2, 1),
        ],
        "claims move jobs to running, a finished route is gone"
    );

    // Canceling (pending or running) and recovery either way are counted too.
    store.cancel("t", &billing, RET, T0 + 30).await.unwrap();
    store.cancel("t", &orders[2], RET, T0 + 30).await.unwrap();
    store
        .cancel("u", &only_running, RET, T0 + 30)
        .await
        .unwrap();
    let decide = |route: &str| match route {
        "orders" => Recovery::Retry,
        _ => Recovery::Fail,
    };
    assert_eq!(
        store
            .recover(T0 + 2_000, false, RET, &decide)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.depths().await.unwrap(),
        vec![depth("orders", 2, 0), depth(odd, 2, 0)]
    );
    // Reading changed nothing: the same answer again, and the jobs are still claimable.
    assert_eq!(
        store.depths().await.unwrap(),
        vec![depth("orders", 2, 0), depth(odd, 2, 0)]
    );
    assert_eq!(claim(&store, "orders").await, orders[1]);
}
