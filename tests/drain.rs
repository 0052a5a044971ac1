//! Shutdown as an operator sees it: `/readyz` turns unready first while requests are still
//! served for `drain_delay`, then requests waiting on a task or a job are answered at once
//! with their `202` handle instead of being cut when the drain times out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{client, sync_config, sync_upstream, task_config, task_upstream, Gateway};

fn with_server(cfg: String, server: &str) -> String {
    format!("[server]\n{server}\n{cfg}")
}

#[tokio::test]
async fn readyz_turns_unready_first_while_requests_are_still_served() {
    let up = task_upstream(Duration::from_millis(10)).await;
    let cfg = with_server(
        task_config("", ""),
        "admin_listen = \"127.0.0.1:0\"\ndrain_delay = \"800ms\"",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let admin = gw.admin.unwrap();
    let c = client();
    let readyz = |c: reqwest::Client| async move {
        c.get(format!("http://{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(readyz(c.clone()).await, 200);
    let url = gw.url("/v1/edit");
    let stopping = tokio::spawn(gw.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(readyz(c.clone()).await, 503, "unready during the delay");
    let served = c.post(&url).body("{}").send().await.unwrap();
    assert_eq!(served.status(), 200, "still served during the delay");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_task_wait_in_flight_is_answered_with_its_202_on_shutdown() {
    let up = task_upstream(Duration::from_secs(60)).await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let url = gw.url("/v1/edit");
    let waiting = tokio::spawn(async move {
        client()
            .post(url)
            .header("prefer", "wait=600")
            .body("{}")
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    gw.shutdown().await;
    let resp = waiting.await.unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["taskId"].as_str().unwrap().starts_with("t-"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drained in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_job_wait_in_flight_is_answered_with_its_202_on_shutdown() {
    let up = sync_upstream(Duration::from_secs(60)).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let url = gw.url("/v1/render");
    let waiting = tokio::spawn(async move {
        client()
            .post(url)
            .header("prefer", "wait=600")
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(gw.shutdown());
    let resp = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered before the drain timeout")
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["job_id"].is_string(), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    stopping.abort();
}
