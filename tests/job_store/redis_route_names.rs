//! Redis only: `depths` reads the route names `create` keeps in `P route-names` — no
//! keyspace `SCAN` per scrape — and a database written before that set existed (no set, no
//! `P route-names:scanned` marker) is scanned once, its routes added to the set.

use std::sync::Arc;

use prefer_gateway::store::redis::RedisStore;
use prefer_gateway::store::RouteDepth;

use crate::redis_server::RedisServer;
use crate::{create, new_job, Store, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depths_read_the_route_set_and_scan_only_data_written_before_it() {
    let server = RedisServer::start();
    let store: Store = Arc::new(RedisStore::open(&server.url(), "p:").await.unwrap());
    let client = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for route in ["a", "b", "b"] {
        create(&store, new_job("t", route, None, "fp"), T0).await;
    }
    let expected = vec![
        RouteDepth {
            route: "a".into(),
            pending: 1,
            running: 0,
        },
        RouteDepth {
            route: "b".into(),
            pending: 2,
            running: 0,
        },
    ];
    let members = |mut conn: redis::aio::MultiplexedConnection| async move {
        let mut m: Vec<String> = redis::cmd("SMEMBERS")
            .arg("p:route-names")
            .query_async(&mut conn)
            .await
            .unwrap();
        m.sort();
        m
    };
    assert_eq!(
        members(conn.clone()).await,
        ["a", "b"],
        "create keeps the names"
    );
    assert_eq!(store.depths().await.unwrap(), expected);

    // As if written by a version without the set: the first scrape scans, then keeps it.
    redis::cmd("DEL")
        .arg("p:route-names")
        .arg("p:route-names:scanned")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store.depths().await.unwrap(),
        expected,
        "found by the one scan"
    );
    assert_eq!(members(conn.clone()).await, ["a", "b"], "and remembered");
    let marker: bool = redis::cmd("EXISTS")
        .arg("p:route-names:scanned")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(marker);
}
