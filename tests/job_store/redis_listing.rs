//! Redis only: the key layout of listing — each tenant's jobs in the sorted set
//! `P tenant:{tenant}:jobs` scored by `created_at`, kept by create, purge and sweep (a
//! leaked entry is invisible to listings, which skip ids without a job, so only the keys
//! can show it); entries an older gateway's sweep left behind are skipped and dropped.

use std::sync::Arc;

use prefer_gateway::store::redis::RedisStore;
use prefer_gateway::store::{ListQuery, Purged};

use crate::listing::{ids, list};
use crate::redis_server::RedisServer;
use crate::{create, new_job, run_to_success, Store, RET, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_a_sorted_set_kept_by_create_purge_and_sweep() {
    let server = RedisServer::start();
    let store: Store = Arc::new(RedisStore::open(&server.url(), "p:").await.unwrap());
    let client = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // A tenant with a `:` in it: its set is named by the whole value.
    let tenant = "acme:eu";
    let key = "p:tenant:acme:eu:jobs";
    let pending = create(&store, new_job(tenant, "r", None, "fp"), T0 + 2)
        .await
        .id;
    let purged = run_to_success(&store, new_job(tenant, "s", None, "fp"), T0).await;
    let swept = run_to_success(&store, new_job(tenant, "s", None, "fp"), T0 + 1).await;
    let members = |mut conn: redis::aio::MultiplexedConnection| async move {
        redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async::<Vec<(String, i64)>>(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        members(conn.clone()).await,
        [
            (purged.clone(), T0),
            (swept.clone(), T0 + 1),
            (pending.clone(), T0 + 2)
        ]
    );
    assert_eq!(
        store.purge(tenant, &purged, T0 + 3).await.unwrap(),
        Purged::Done
    );
    store.sweep(T0 + 1 + RET, RET, 100).await.unwrap();
    assert_eq!(members(conn.clone()).await, [(pending.clone(), T0 + 2)]);

    // As if an older gateway had swept a job without knowing the set: the entry is
    // skipped, then dropped by the listing that met it.
    let orphan = create(&store, new_job(tenant, "r", None, "fp"), T0 + 3)
        .await
        .id;
    redis::cmd("DEL")
        .arg(format!("p:job:{orphan}"))
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let page = list(&store, tenant, ListQuery::default(), T0 + 4).await;
    assert_eq!(ids(&page), [pending.as_str()]);
    assert_eq!(members(conn.clone()).await, [(pending, T0 + 2)]);
}
