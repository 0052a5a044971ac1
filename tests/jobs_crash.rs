//! Crash safety with the real binary: accept jobs on a SQLite store, `SIGKILL` the gateway
//! while jobs run, restart it on the same file, and show every accepted job reaching a
//! terminal state — re-run when the route allows it, failed as `interrupted` otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::process::GatewayProcess;
use support::{client, sync_upstream};

fn config(dir: &std::path::Path, upstream: &str, retry: bool) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    let db = dir.join("jobs.db");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "sqlite:{}"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{upstream}"
max_in_flight = 4
retry_interrupted = {retry}
"#,
            db.display()
        ),
    )
    .unwrap();
    path
}

async fn submit_all(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let resp = client()
            .post(format!("http://{addr}/v1/render"))
            .header("prefer", "respond-async")
            .body(format!("{{\"i\":{i}}}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        ids.push(
            resp.json::<Value>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids
}

async fn final_states(addr: SocketAddr, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut docs = Vec::new();
    for id in ids {
        loop {
            let doc: Value = client()
                .get(format!("http://{addr}/jobs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let status = doc["status"].as_str().unwrap_or("").to_owned();
            if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
                docs.push(doc);
                break;
            }
            assert!(Instant::now() < deadline, "job {id} stuck in {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    docs
}

async fn kill_and_restart(retry: bool) -> (Vec<Value>, usize) {
    let up = sync_upstream(Duration::from_millis(700)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &up.url(), retry);
    let mut gw = GatewayProcess::start(&cfg);
    let ids = submit_all(gw.addr, 12).await;
    // Let the first jobs start running, then kill without any chance to clean up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.kill();
    let calls_before_restart = up.seen().len();
    assert!(
        calls_before_restart >= 1,
        "some jobs were running when killed"
    );
    let gw = GatewayProcess::start(&cfg);
    (final_states(gw.addr, &ids).await, calls_before_restart)
}

#[tokio::test]
async fn every_accepted_job_finishes_after_a_sigkill_with_retry_interrupted() {
    let (docs, _) = kill_and_restart(true).await;
    assert_eq!(docs.len(), 12);
    for d in &docs {
        assert_eq!(d["status"], "succeeded", "{d}");
    }
}

#[tokio::test]
async fn interrupted_jobs_fail_when_the_route_does_not_retry() {
    let (docs, running_at_kill) = kill_and_restart(false).await;
    let interrupted = docs
        .iter()
        .filter(|d| d["error"]["code"] == "interrupted")
        .count();
    let succeeded = docs.iter().filter(|d| d["status"] == "succeeded").count();
    assert_eq!(
        interrupted, running_at_kill,
        "exactly the running ones: {docs:?}"
    );
    assert_eq!(
        interrupted + succeeded,
        12,
        "the pending ones ran after the restart"
    );
}
