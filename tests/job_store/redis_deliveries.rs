//! Redis only: the key layout of deliveries — each kind due-indexed in its own sorted
//! sets (callbacks keep the names they had before admissions existed), the admission's
//! fields in the job hash, and a sweep that leaves no index entry behind (a leaked entry
//! is invisible to claims, which skip ids without a job, so only the keys can show it).

use std::sync::Arc;

use prefer_gateway::store::model::{Attempt, AttemptNext};
use prefer_gateway::store::redis::RedisStore;
use prefer_gateway::store::{DeliveryKind, NewAdmission, NewJob};

use crate::redis_server::RedisServer;
use crate::{hooked_job, run_to_success, Store, RET, T0};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_kind_has_its_own_due_indexes_and_sweep_empties_them() {
    let server = RedisServer::start();
    let store: Store = Arc::new(RedisStore::open(&server.url(), "p:").await.unwrap());
    let client = redis::Client::open(server.url().as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut ids = Vec::new();
    for route in ["a", "b"] {
        let job = NewJob {
            admission: Some(NewAdmission {
                url: "https://billing.internal/admit".into(),
                reservation: Some("res-1".into()),
            }),
            ..hooked_job("t", route)
        };
        ids.push(run_to_success(&store, job, T0).await);
    }
    let (_, job) = store
        .claim_delivery(DeliveryKind::Admission, T0, 0, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    let retry = Attempt {
        status: Some(503),
        error: None,
        next: AttemptNext::Retry(T0 + 100),
    };
    store
        .record_attempt(&job.id, DeliveryKind::Admission, retry, T0 + 1)
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for key in [
        "due:first",
        "due:retry",
        "due:admission:first",
        "due:admission:retry",
    ] {
        let n: u64 = redis::cmd("ZCARD")
            .arg(format!("p:{key}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        sizes.push(n);
    }
    assert_eq!(sizes, [2, 0, 1, 1]);
    let reservation: String = redis::cmd("HGET")
        .arg(format!("p:job:{}", ids[0]))
        .arg("adm_reservation")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(reservation, "res-1");

    // Swept: the jobs leave tombstones and nothing of their deliveries (the route names
    // `depths` reads outlive jobs by design).
    assert_eq!(store.sweep(T0 + RET, RET, 10).await.unwrap(), 2);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("p:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut left: Vec<&str> = keys.iter().map(String::as_str).collect();
    left.sort_unstable();
    let mut tombs: Vec<String> = ids.iter().map(|id| format!("p:tomb:{id}")).collect();
    tombs.push("p:tombs".into());
    tombs.push("p:route-names".into());
    tombs.sort_unstable();
    assert_eq!(left, tombs);
}
