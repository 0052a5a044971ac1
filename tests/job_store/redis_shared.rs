//! Redis only: what a store shared over the network can show — data surviving a Redis
//! crash and restart behind a live connection, an unreachable Redis failing fast, several
//! stores (replicas) racing on one server, key prefixes keeping stores apart, and the
//! finished-jobs feed carrying one replica's completions to another; the claim limit
//! coping with data written before its running sets existed; and queue depths found by
//! pattern yet kept apart by prefix, whatever glob characters the prefix holds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prefer_gateway::store::redis::RedisStore;
use prefer_gateway::store::RouteDepth;
use prefer_gateway::store::{Created, DeliveryKind, Lookup, Outcome};

use crate::redis_server::{RedisServer, DURABLE};
use crate::{create, found, hooked_job, new_job, response, Store, NO_LIMIT, RET, T0};

async fn open(server: &RedisServer, prefix: &str) -> Store {
    Arc::new(RedisStore::open(&server.url(), prefix).await.unwrap())
}

/// Retries `get` until the connection manager has reconnected (or 10 s have passed).
async fn get_after_reconnect(store: &Store, tenant: &str, id: &str) -> Lookup {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(tenant, id, T0 + 10).await {
            Ok(lookup) => return lookup,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no reconnect within 10 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_redis_crash_and_the_connection_comes_back() {
    let mut server = RedisServer::start_with(DURABLE);
    let store = open(&server, "prefer:").await;
    let keyed = create(&store, new_job("t", "r", Some("k"), "fp"), T0).await;
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 5_000, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, keyed.id);
    let hooked = create(&store, hooked_job("t", "h"), T0 + 2).await;
    store
        .claim("h", NO_LIMIT, T0 + 5_000, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    let outcome = Outcome::Answered(response(200));
    assert!(store
        .complete(&hooked.id, outcome, RET, T0 + 4)
        .await
        .unwrap());
    let hooked = found(&store, "t", &hooked.id, T0 + 5).await;

    server.kill();
    // While Redis is down, operations fail instead of hanging: at once when the connection
    // is seen to be gone, or — when the command was written before the kill's reset
    // arrived — at the store's 5 s response timeout (`RESPONSE_TIMEOUT` in
    // src/store/redis.rs). The bound is that timeout plus slack for a slow machine, well
    // under the 10 s that counts as a hang.
    let started = Instant::now();
    let down = tokio::time::timeout(Duration::from_secs(10), store.get("t", &keyed.id, T0))
        .await
        .expect("a store call hung while Redis was down");
    assert!(down.is_err(), "{down:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    server.restart(DURABLE);
    let Lookup::Found(after) = get_after_reconnect(&store, "t", &keyed.id).await else {
        panic!("the claimed job is gone after the restart")
    };
    assert_eq!(after, claimed);
    assert_eq!(found(&store, "t", &hooked.id, T0 + 10).await, hooked);
    // The indexes came back too: the key, the tenant's count, the due delivery.
    assert!(matches!(
        store.create(new_job("t", "r", Some("k"), "fp"), 10, T0 + 11).await.unwrap(),
        Created::Existing(j) if j.id == keyed.id
    ));
    assert!(matches!(
        store
            .create(new_job("t", "r", None, "fp"), 1, T0 + 11)
            .await
            .unwrap(),
        Created::QueueFull
    ));
    let (_, job) = store
        .claim_delivery(DeliveryKind::Callback, T0 + 12, 0, T0 + 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, hooked.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_a_store_error_within_seconds() {
    // A port nobody listens on: the server is started and killed, so it was free a moment
    // ago and is closed now.
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let started = Instant::now();
    let opened = tokio::time::timeout(Duration::from_secs(10), RedisStore::open(&url, "p:"))
        .await
        .expect("open hung on an unreachable Redis");
    let err = opened.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("Redis"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_on_one_key_make_one_job_and_never_share_a_claim() {
    let server = RedisServer::start();
    // Five stores, five connections: as five gateway replicas would be.
    let mut replicas = Vec::new();
    for _ in 0..5 {
        replicas.push(open(&server, "prefer:").await);
    }
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
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

    for i in 0..30 {
        create(&replicas[0], new_job("t", "q", None, "fp"), T0 + i).await;
    }
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
            tokio::spawn(async move {
                store
                    .claim("q", NO_LIMIT, T0 + 1_000, T0 + 50)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        if let Some(job) = task.await.unwrap() {
            assert!(ids.insert(job.id), "a job was claimed by two replicas");
        }
    }
    assert_eq!(ids.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefixes_keep_stores_apart() {
    let server = RedisServer::start();
    let a = open(&server, "a:").await;
    let b = open(&server, "b:").await;
    let job = create(&a, new_job("t", "r", Some("k"), "fp"), T0).await;
    assert!(matches!(
        b.get("t", &job.id, T0).await.unwrap(),
        Lookup::Missing
    ));
    assert_eq!(b.claim("r", NO_LIMIT, T0 + 1_000, T0).await.unwrap(), None);
    // Neither the key nor the tenant's count is shared.
    let other = b
        .create(new_job("t", "r", Some("k"), "other"), 1, T0)
        .await
        .unwrap();
    assert!(matches!(other, Created::New(_)), "{other:?}");
    let id = crate::finished(&a, "t", "r2", T0).await;
    assert_eq!(b.sweep(T0 + RET, RET, 10).await.unwrap(), 0);
    assert_eq!(a.sweep(T0 + RET, RET, 10).await.unwrap(), 1);
    assert!(matches!(
        a.get("t", &id, T0 + RET).await.unwrap(),
        Lookup::Expired
    ));

    // Every key the stores wrote carries one of the two prefixes.
    let client = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(key.starts_with("a:") || key.starts_with("b:"), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_finished_on_one_replica_reach_the_feed_of_another() {
    let server = RedisServer::start();
    let a = open(&server, "prefer:").await;
    let b = open(&server, "prefer:").await;
    let mut feed = b.finished_feed().await.expect("the Redis store has a feed");
    // The subscription is made in the background: finish jobs until one is heard.
    let mut finished = HashSet::new();
    let mut heard = None;
    for i in 0..40 {
        let id = crate::finished(&a, "t", "r", T0 + i).await;
        finished.insert(id);
        if let Ok(id) = tokio::time::timeout(Duration::from_millis(250), feed.recv()).await {
            heard = id;
            break;
        }
    }
    let heard = heard.expect("nothing heard within 10 s");
    assert!(finished.contains(&heard), "{heard}");
    while let Ok(Some(id)) = tokio::time::timeout(Duration::from_millis(200), feed.recv()).await {
        assert!(finished.contains(&id), "{id}");
    }
    // Subscribed now: a cancel is heard, and only finishing publishes.
    let job = create(&a, new_job("t", "c", None, "fp"), T0).await;
    a.claim("c", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    a.cancel("t", &job.id, RET, T0 + 1).await.unwrap();
    let id = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await;
    assert_eq!(id.unwrap().unwrap(), job.id);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), feed.recv())
            .await
            .is_err(),
        "create and claim publish nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_set_tolerates_data_written_without_it() {
    let server = RedisServer::start();
    let store = open(&server, "p:").await;
    let client = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            create(&store, new_job("t", "r", None, "fp"), T0 + i)
                .await
                .id,
        );
    }
    let claim = |max: u32| {
        let store = store.clone();
        async move { store.claim("r", max, T0 + 1_000, T0).await.unwrap() }
    };
    claim(2).await.unwrap();
    claim(2).await.unwrap();
    assert_eq!(claim(2).await, None);

    // An older replica finishes a job without knowing the set: its id stays behind, and
    // the claim at the limit drops it instead of holding the slot for good.
    redis::cmd("HSET")
        .arg(format!("p:job:{}", ids[0]))
        .arg("status")
        .arg("succeeded")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(claim(2).await.map(|j| j.id), Some(ids[2].clone()));
    assert_eq!(claim(2).await, None);

    // Jobs claimed before the set existed: an absent set counts as none running, and
    // every way out of running still works on them.
    redis::cmd("DEL")
        .arg("p:running:r")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_eq!(claim(2).await.map(|j| j.id), Some(ids[3].clone()));
    let ok = Outcome::Answered(response(200));
    assert!(store.complete(&ids[1], ok, RET, T0 + 1).await.unwrap());
    store.cancel("t", &ids[2], RET, T0 + 1).await.unwrap();
    let retry = |_: &str| prefer_gateway::store::Recovery::Retry;
    assert_eq!(
        store.recover(T0 + 1_001, false, RET, &retry).await.unwrap(),
        1
    );
    assert_eq!(claim(1).await.map(|j| j.id), Some(ids[3].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depths_see_every_replica_and_only_their_own_prefix() {
    let server = RedisServer::start();
    // Unescaped, the first prefix would be the pattern `x?*[ab]\:pending:*`: it does not
    // match the store's own queues (`[ab]` is one character, not the text `[ab]`), and it
    // does match the second store's (`x`, `y`, `z`, `a`, `:`).
    let odd = open(&server, "x?*[ab]\\:").await;
    let odd_replica = open(&server, "x?*[ab]\\:").await;
    let plain = open(&server, "xyza:").await;
    create(&odd, new_job("t", "r", None, "fp"), T0).await;
    create(&odd_replica, new_job("t", "r", None, "fp"), T0 + 1).await;
    odd_replica
        .claim("r", NO_LIMIT, T0 + 1_000, T0)
        .await
        .unwrap()
        .unwrap();
    for i in 0..3 {
        create(&plain, new_job("t", "s", None, "fp"), T0 + i).await;
    }
    let depth = |route: &str, pending, running| RouteDepth {
        route: route.into(),
        pending,
        running,
    };
    // Both replicas of the first store see its two jobs, whoever created or claimed them.
    for store in [&odd, &odd_replica] {
        assert_eq!(store.depths().await.unwrap(), vec![depth("r", 1, 1)]);
    }
    assert_eq!(plain.depths().await.unwrap(), vec![depth("s", 3, 0)]);
}
