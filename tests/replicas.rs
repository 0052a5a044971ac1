//! Several gateway replicas (real processes) on one real `redis-server`: a job submitted on
//! one replica is visible, waitable and cancellable on the others; killing a replica or
//! restarting Redis loses no accepted job; duplicate idempotency keys across replicas make
//! one upstream call; a route's `max_in_flight` holds across all replicas together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::GatewayProcess;
use support::redis::RedisServer;
use support::{client, reply, sync_upstream, Upstream};

fn config(dir: &std::path::Path, redis: &url::Url, upstream: &str, in_flight: u32) -> PathBuf {
    let path = dir.join("replica.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "{redis}"
lease = "2s"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{upstream}"
max_in_flight = {in_flight}
retry_interrupted = true
"#
        ),
    )
    .unwrap();
    path
}

struct Cluster {
    redis: RedisServer,
    up: Upstream,
    replicas: Vec<GatewayProcess>,
    _dir: tempfile::TempDir,
}

async fn cluster(n: usize, took: Duration) -> Cluster {
    cluster_on(n, sync_upstream(took).await, 4)
}

/// `n` replicas on a fresh Redis, their route on `up` with `max_in_flight = in_flight`.
fn cluster_on(n: usize, up: Upstream, in_flight: u32) -> Cluster {
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &redis.url(), &up.url(), in_flight);
    let replicas = (0..n).map(|_| GatewayProcess::start(&cfg)).collect();
    Cluster {
        redis,
        up,
        replicas,
        _dir: dir,
    }
}

async fn submit(gw: &GatewayProcess, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("prefer", "respond-async")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn job_id(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn doc(gw: &GatewayProcess, id: &str) -> Value {
    client()
        .get(gw.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn until_terminal(gw: &GatewayProcess, id: &str, limit: Duration) -> Value {
    let t = Instant::now();
    loop {
        let d = doc(gw, id).await;
        if ["succeeded", "failed", "canceled"].contains(&d["status"].as_str().unwrap_or("")) {
            return d;
        }
        assert!(t.elapsed() < limit, "job {id} not terminal: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_job_submitted_on_one_replica_is_seen_waited_and_canceled_on_the_others() {
    let c = cluster(3, Duration::from_millis(800)).await;
    let (a, b, cc) = (&c.replicas[0], &c.replicas[1], &c.replicas[2]);
    let id = job_id(submit(a, r#"{"n":1}"#, &[]).await).await;
    let seen = doc(b, &id).await;
    assert!(
        ["pending", "running"].contains(&seen["status"].as_str().unwrap()),
        "{seen}"
    );
    // A long-poll on C is woken when the job finishes, wherever it ran.
    let t = Instant::now();
    let waited: Value = client()
        .get(cc.url(&format!("/jobs/{id}")))
        .header("prefer", "wait=10")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waited["status"], "succeeded");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "woken promptly: {:?}",
        t.elapsed()
    );
    let result = client()
        .get(b.url(&format!("/jobs/{id}/result")))
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200);
    // Cancel on C a job submitted on A; A sees it canceled.
    let slow = job_id(submit(a, r#"{"n":2}"#, &[]).await).await;
    let del = client()
        .delete(cc.url(&format!("/jobs/{slow}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(doc(a, &slow).await["status"], "canceled");
}

#[tokio::test]
async fn killing_a_replica_loses_no_accepted_job() {
    let mut c = cluster(3, Duration::from_millis(700)).await;
    let mut ids = Vec::new();
    for i in 0..15 {
        let gw = &c.replicas[i % 3];
        ids.push(job_id(submit(gw, &format!("{{\"i\":{i}}}"), &[]).await).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.replicas[1].kill();
    let survivor = &c.replicas[0];
    let mut finished = 0;
    for id in &ids {
        let d = until_terminal(survivor, id, Duration::from_secs(60)).await;
        assert_eq!(d["status"], "succeeded", "{d}");
        finished += 1;
    }
    assert_eq!(finished, ids.len(), "accepted 15, finished 15, lost 0");
    assert!(c.up.seen().len() >= ids.len());
}

#[tokio::test]
async fn restarting_redis_under_load_loses_no_accepted_job() {
    let mut c = cluster(2, Duration::from_millis(100)).await;
    let mut accepted = Vec::new();
    let mut refused = 0;
    let started = Instant::now();
    let mut restarted = false;
    while started.elapsed() < Duration::from_secs(4) {
        if !restarted && started.elapsed() > Duration::from_millis(1500) {
            c.redis
                .restart(&["--appendonly", "yes", "--appendfsync", "always"]);
            restarted = true;
        }
        let gw = &c.replicas[accepted.len() % 2];
        let resp = submit(gw, &format!("{{\"k\":{}}}", accepted.len() + refused), &[]).await;
        match resp.status().as_u16() {
            202 => accepted.push(
                resp.json::<Value>().await.unwrap()["job_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            503 => {
                assert_eq!(resp.headers()["content-type"], "application/problem+json");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(restarted && !accepted.is_empty());
    for id in &accepted {
        let d = until_terminal(&c.replicas[0], id, Duration::from_secs(60)).await;
        assert_eq!(d["status"], "succeeded", "{d}");
    }
    eprintln!(
        "accepted {} / refused (503) {} / lost 0",
        accepted.len(),
        refused
    );
}

#[tokio::test]
async fn duplicate_idempotency_keys_across_replicas_make_one_upstream_call() {
    let c = cluster(3, Duration::from_millis(200)).await;
    let mut all = Vec::new();
    for i in 0..30 {
        let url = c.replicas[i % 3].url("/v1/render");
        all.push(tokio::spawn(async move {
            let r = client()
                .post(url)
                .header("prefer", "respond-async")
                .header("idempotency-key", "shared-key")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in all {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1);
    until_terminal(&c.replicas[0], &ids[0], Duration::from_secs(20)).await;
    assert_eq!(c.up.seen().len(), 1);
}

#[tokio::test]
async fn while_redis_is_down_submits_get_503_and_readyz_is_unready() {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let up = sync_upstream(Duration::from_millis(50)).await;
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        // A claim whose reply is lost when Redis dies leaves a job running without a
        // runner: the short lease lets recovery re-run it within the test.
        support::sync_config(
            redis.url().as_str(),
            "lease = \"2s\"",
            "retry_interrupted = true"
        )
    );
    let gw = support::Gateway::start(&cfg, &up.url()).await;
    let admin = gw.admin.unwrap();
    let readyz = || client().get(format!("http://{admin}/readyz")).send();
    assert_eq!(readyz().await.unwrap().status(), 200);
    let post = || {
        client()
            .post(gw.url("/v1/render"))
            .header("prefer", "respond-async")
            .body("{}")
            .send()
    };
    let before = post().await.unwrap();
    assert_eq!(before.status(), 202);
    let id = before.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    redis.kill();
    let down = post().await.unwrap();
    assert_eq!(
        down.status(),
        503,
        "never a 202 for a job that was not stored"
    );
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    let unready = readyz().await.unwrap();
    assert_eq!(unready.status(), 503);
    redis.restart(&["--appendonly", "yes", "--appendfsync", "always"]);
    let t = Instant::now();
    loop {
        if readyz().await.unwrap().status() == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "ready again after Redis returns"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(post().await.unwrap().status(), 202);
    let t = Instant::now();
    loop {
        let d: Value = client()
            .get(gw.url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d["status"] == "succeeded" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn max_in_flight_holds_across_replicas() {
    // The upstream counts the requests it is serving at once and keeps the highest count.
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let up = Upstream::start(move |_| {
        let (now, most) = (Arc::clone(&n), Arc::clone(&m));
        async move {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            reply(200, "{}", &[])
        }
    })
    .await;
    // Each replica alone may run 2: without the shared count, 3 replicas would run 6.
    let c = cluster_on(3, up, 2);
    let mut ids = Vec::new();
    for i in 0..12 {
        let gw = &c.replicas[i % 3];
        ids.push(job_id(submit(gw, &format!("{{\"i\":{i}}}"), &[]).await).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let d = until_terminal(&c.replicas[i % 3], id, Duration::from_secs(60)).await;
        assert_eq!(d["status"], "succeeded", "{d}");
    }
    assert_eq!(c.up.seen().len(), 12);
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "the upstream saw more than max_in_flight at once, or never reached it"
    );
}
