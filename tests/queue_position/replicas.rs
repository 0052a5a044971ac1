//! Queue position across replicas: two gateway processes on one real `redis-server`, both
//! serving (and claiming for) the same route with one slot between them, in front of the
//! test's held upstream. A pending job's position is read from the shared queue, so both
//! replicas report the same number for it, and both see it move when a run ends —
//! whichever replica ran it.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::support::client;
use super::support::process::GatewayProcess;
use super::support::redis::RedisServer;
use super::{gated_upstream, read, until};

fn config(dir: &std::path::Path, name: &str, redis: &url::Url, up: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "{redis}"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{up}"
max_in_flight = 1
"#
        ),
    )
    .unwrap();
    path
}

/// The position of the job at `path` as replica `gw` reports it.
async fn position(gw: &GatewayProcess, path: &str) -> Option<u64> {
    read(&gw.url(path), "").await.1.position()
}

#[tokio::test]
async fn both_replicas_report_the_same_position() {
    let redis = RedisServer::start();
    let gate = Arc::new(Semaphore::new(0));
    let up = gated_upstream(Arc::clone(&gate)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = GatewayProcess::start(&config(dir.path(), "a.toml", &redis.url(), &up.url()));
    let b = GatewayProcess::start(&config(dir.path(), "b.toml", &redis.url(), &up.url()));

    // Submitted on alternating replicas, a few ms apart (the queue is by creation time).
    let mut paths = Vec::new();
    for (n, gw) in [&a, &b, &a, &b].into_iter().enumerate() {
        let resp = client()
            .post(gw.url("/v1/render"))
            .header("prefer", "respond-async")
            .body(format!(r#"{{"n":{n}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let doc: serde_json::Value = resp.json().await.unwrap();
        paths.push(format!("/jobs/{}", doc["job_id"].as_str().unwrap()));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    until(&a.url(&paths[0]), "", "running").await;
    for (n, path) in paths.iter().enumerate().skip(1) {
        let want = Some(n as u64);
        assert_eq!(position(&a, path).await, want, "on A: job {n}");
        assert_eq!(position(&b, path).await, want, "on B: job {n}");
    }
    assert_eq!(position(&b, &paths[0]).await, None, "running");

    gate.add_permits(1);
    until(&b.url(&paths[1]), "", "running").await;
    for (n, path) in paths.iter().enumerate().skip(2) {
        let want = Some(n as u64 - 1);
        assert_eq!(position(&a, path).await, want, "on A: job {n}");
        assert_eq!(position(&b, path).await, want, "on B: job {n}");
    }

    gate.add_permits(10);
    for path in &paths {
        let done = until(&b.url(path), "", "succeeded").await;
        assert_eq!(done.position(), None);
    }
}
