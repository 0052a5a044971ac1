//! Issue 14, bullet 4, black-box: a `sync` route with `default = "job"` gives a request
//! without `Prefer` a job — the upstream's answer when it is done within `sync_wait`, else
//! the `202` handle instead of a `504` — and every answer from a job names it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, sync_config, sync_upstream, Gateway};

fn config(sync_wait: &str) -> String {
    sync_config(
        "memory",
        "",
        &format!("default = \"job\"\nsync_wait = \"{sync_wait}\""),
    )
}

async fn post(gw: &Gateway, body: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().post(gw.url("/v1/render")).body(body.to_owned());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn done_in_time_answers_the_upstreams_own_response_naming_its_job() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config("5s"), &up.url()).await;
    let resp = post(&gw, r#"{"n":1}"#, None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(
        h.get("preference-applied").is_none(),
        "no Prefer, nothing applied"
    );
    assert_eq!(h["x-upstream"], "yes");
    let id = h["x-job-id"].to_str().unwrap().to_owned();
    assert_eq!(
        h["operation-location"],
        gw.url(&format!("/jobs/{id}")).as_str()
    );
    assert_eq!(resp.text().await.unwrap(), r#"{"rendered":{"n":1}}"#);
    let doc: Value = client()
        .get(gw.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "succeeded");
}

#[tokio::test]
async fn too_slow_answers_the_202_handle_instead_of_a_504_and_the_job_goes_on() {
    let up = sync_upstream(Duration::from_millis(2500)).await;
    let gw = Gateway::start(&config("1s"), &up.url()).await;
    let t = Instant::now();
    let resp = post(&gw, "{}", None).await;
    assert_eq!(resp.status(), 202);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(resp.headers().get("preference-applied").is_none());
    let id = resp.headers()["x-job-id"].to_str().unwrap().to_owned();
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["id"], id.as_str());
    let url = doc["status_url"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc: Value = client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if doc["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_its_job_running_and_the_same_key_finds_it() {
    let up = sync_upstream(Duration::from_millis(1500)).await;
    let gw = Gateway::start(&config("10s"), &up.url()).await;
    // The client gives up after 300 ms: the request is dropped mid-wait.
    let gone = tokio::time::timeout(Duration::from_millis(300), post(&gw, "{}", Some("k-1"))).await;
    assert!(gone.is_err());
    // The same key attaches to the job it made: its answer, one upstream call.
    let again = post(&gw, "{}", Some("k-1")).await;
    assert_eq!(again.status(), 200);
    assert!(again.headers().contains_key("x-job-id"));
    assert_eq!(up.seen().len(), 1, "the job ran once, for both requests");
}

#[test]
fn default_is_only_for_sync_routes_and_only_proxy_or_job() {
    let on_task =
        support::task_config("", "default = \"job\"").replace("{up}", "http://127.0.0.1:9");
    let err = prefer_gateway::config::load_str(&on_task, "t.toml").unwrap_err();
    assert!(err.key().ends_with(".default"), "{err}");
    let bad = config("1s")
        .replace("default = \"job\"", "default = \"maybe\"")
        .replace("{up}", "http://127.0.0.1:9");
    let err = prefer_gateway::config::load_str(&bad, "t.toml").unwrap_err();
    assert!(err.key().ends_with(".default"), "{err}");
    assert!(err.to_string().contains("\"job\""), "{err}");
}
