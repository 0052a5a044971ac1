//! Two gateway processes on one real `redis-server`: the client waits on replica A, the
//! upstream's callback reaches replica B (its URL rebased there), and A answers `200` with
//! the callback's status document — learnt through the store — with no status poll.

use std::time::Duration;

use serde_json::Value;

use super::support::client;
use super::support::process::GatewayProcess;
use super::support::redis::RedisServer;
use super::upstream::{callback_upstream, config, first_answer, Plan, Via};

#[tokio::test]
async fn a_callback_to_one_replica_answers_a_client_waiting_on_another() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // B must exist before the upstream is told where to call back: its address first.
    let write = |name: &str, up: &str| {
        let path = dir.path().join(name);
        let text = config(
            redis.url().as_ref(),
            r#"{ json = "/webhook_url" }"#,
            "30s",
            "",
        )
        .replace("{up}", up)
        .replace("[jobs]", "[server]\nlisten = \"127.0.0.1:0\"\n\n[jobs]");
        std::fs::write(&path, text).unwrap();
        path
    };
    // Replica B serves only the callback, so its upstream is irrelevant.
    let b = GatewayProcess::start(&write("b.toml", "http://127.0.0.1:9"));
    let plan = Plan {
        from: Via::Json,
        call_back_after: Some(Duration::from_millis(300)),
        finish_after: Duration::from_secs(3600),
        rewrite_base: Some(b.url("")),
        answer_after: Duration::ZERO,
    };
    let (up, calls) = callback_upstream(plan).await;
    let a = GatewayProcess::start(&write("a.toml", &up.url()));
    let resp = client()
        .post(a.url("/v1/edit"))
        .header("content-type", "application/json")
        .header("x-api-key", "acme")
        .header("prefer", "wait=20")
        .body(r#"{"prompt":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(body["result"]["url"], "u/t-1");
    let url = calls.lock().unwrap().urls[0].clone();
    assert!(url.starts_with(&a.url("/jobs/")), "{url}");
    let answer = first_answer(&calls).await;
    assert_eq!(answer.0, 200, "B refused: {answer:?}");
    assert_eq!(up.count("/v1/tasks/"), 0, "no status poll");
}
