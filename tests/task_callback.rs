//! Callback-driven task routes (`task.callback`): the gateway puts a one-time URL into the
//! submit (a JSON member or a header); the upstream's `POST` of the final status to it
//! answers waiting clients with no status poll at all; forged, repeated, wrong-method and
//! oversized deliveries are refused; an upstream that never calls back is completed by the
//! fallback poll; and (`task_callback/replicas.rs`) a callback to one replica answers a
//! client waiting on another, through Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "task_callback/costs.rs"]
mod costs;
#[path = "task_callback/replicas.rs"]
mod replicas;
mod support;
#[path = "task_callback/upstream.rs"]
mod upstream;

use std::time::Duration;

use serde_json::Value;
use support::{client, header_map, reply, Gateway, Seen, Upstream};
use upstream::{callback_upstream, config, done, first_answer, post, Plan, Via};

fn status_polls(up: &Upstream) -> usize {
    up.count("/v1/tasks/")
}

async fn submit(gw: &Gateway, prefer: &str, body: &str) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/edit"))
        .header("content-type", "application/json")
        .header("x-api-key", "acme")
        .body(body.to_owned());
    if !prefer.is_empty() {
        req = req.header("prefer", prefer);
    }
    req.send().await.unwrap()
}

async fn problem(resp: reqwest::Response, status: u16, slug: &str) {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{slug}"
    );
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["type"].as_str().unwrap().ends_with(slug), "{doc}");
}

/// A `wait=10` (or DEFAULT: `sync_wait`) client is answered `200` with the upstream's final status from its callback,
/// long before the 30 s fallback poll and with no status poll made; the URL was put into
/// the JSON body next to the client's own fields; then the URL is used up.
async fn answered_by_the_callback(store: &str, prefer: &str) {
    let plan = Plan {
        from: Via::Json,
        call_back_after: Some(Duration::from_millis(300)),
        finish_after: Duration::from_secs(3600),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, calls) = callback_upstream(plan).await;
    let cfg = config(store, r#"{ json = "/webhook_url" }"#, "30s", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let resp = submit(&gw, prefer, r#"{"prompt":"a cat"}"#).await;
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    match prefer {
        "" => assert!(!h.contains_key("preference-applied")),
        _ => assert_eq!(h["preference-applied"], "respond-async, wait=10"),
    }
    assert_eq!(h["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["result"]["url"], "u/t-1");
    assert_eq!(
        status_polls(&up),
        0,
        "a callback-driven wait made a status poll"
    );
    // The submit kept the client's fields and got the gateway's URL.
    let submitted: Value = serde_json::from_slice(&up.seen()[0].body).unwrap();
    assert_eq!(submitted["prompt"], "a cat");
    let url = calls.lock().unwrap().urls[0].clone();
    let prefix = format!("http://{}/jobs/", gw.addr);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(url.contains("/upstream-callback/"), "{url}");
    let (status, text) = first_answer(&calls).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::json!({"completed": true, "state": "succeeded"})
    );
    // A repeated delivery: 410, the URL is used up.
    let again = client().post(&url).body(done("t-1")).send().await.unwrap();
    problem(again, 410, "task-callback-used").await;
    // A forged token on the real id, a made-up id, a wrong method.
    let (base, _) = url.rsplit_once('/').unwrap();
    let forged = format!("{base}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    problem(
        client()
            .post(&forged)
            .body(done("t-1"))
            .send()
            .await
            .unwrap(),
        404,
        "task-callback-unknown",
    )
    .await;
    let unknown = format!("{prefix}0190c2d0-0000-7000-8000-000000000000/upstream-callback/x");
    problem(
        client()
            .post(&unknown)
            .body(done("t-1"))
            .send()
            .await
            .unwrap(),
        404,
        "task-callback-unknown",
    )
    .await;
    let get = client().get(&url).send().await.unwrap();
    assert_eq!(get.headers()["allow"], "POST");
    problem(get, 405, "method-not-allowed").await;
    assert_eq!(status_polls(&up), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_waiting_client_is_answered_by_the_callback_without_a_poll_memory() {
    answered_by_the_callback("memory", "wait=10").await;
}

#[tokio::test]
async fn a_default_client_is_answered_by_the_callback_without_a_poll_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    answered_by_the_callback(&format!("sqlite://{}", db.display()), "").await;
}

/// ASYNC on a header route: the 202 links the watch; the callback completes it (the status
/// document shows `succeeded`, the result is the callback's body), still with no poll.
#[tokio::test]
async fn async_submits_are_watched_and_completed_by_the_callback_header() {
    let plan = Plan {
        from: Via::Header,
        call_back_after: Some(Duration::from_millis(300)),
        finish_after: Duration::from_secs(3600),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, calls) = callback_upstream(plan).await;
    let cfg = config("memory", r#"{ header = "X-Callback-Url" }"#, "30s", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    // Every operation is the tenant's watch job: no tenant, no submit.
    let anonymous = client().post(gw.url("/v1/edit")).send().await.unwrap();
    problem(anonymous, 401, "tenant-required").await;
    assert!(up.seen().is_empty());
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("x-api-key", "acme")
        .header("prefer", "respond-async")
        // A client's own value under the header is replaced, never forwarded.
        .header("x-callback-url", "https://evil.example/steal")
        .body("raw bytes, not JSON")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let h = header_map(resp.headers());
    assert_eq!(h["preference-applied"], "respond-async");
    let monitor = h["operation-location"].clone();
    assert_eq!(up.seen()[0].body.as_ref(), b"raw bytes, not JSON");
    let sent = up.seen()[0].headers["x-callback-url"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(sent.contains("/upstream-callback/"), "{sent}");
    let doc: Value = client()
        .get(&monitor)
        .header("x-api-key", "acme")
        .header("prefer", "wait=10")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    let result: Value = client()
        .get(gw.url(doc["result_url"].as_str().unwrap()))
        .header("x-api-key", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["result"]["url"], "u/t-1");
    assert_eq!(first_answer(&calls).await.0, 200);
    assert_eq!(status_polls(&up), 0);
    gw.shutdown().await;
}

/// An upstream that never calls back: the fallback poll (every 300 ms here) completes the
/// wait; a callback after that is `410`.
#[tokio::test]
async fn the_fallback_poll_completes_an_operation_whose_callback_never_comes() {
    let plan = Plan {
        from: Via::Json,
        call_back_after: None,
        finish_after: Duration::from_millis(500),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, calls) = callback_upstream(plan).await;
    let cfg = config("memory", r#"{ json = "/hook/url" }"#, "300ms", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let resp = submit(&gw, "wait=10", r#"{"prompt":"x"}"#).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert!(status_polls(&up) >= 1);
    // The pointer's parent object was created for it.
    let submitted: Value = serde_json::from_slice(&up.seen()[0].body).unwrap();
    assert!(submitted["hook"]["url"].is_string(), "{submitted}");
    let url = submitted["hook"]["url"].as_str().unwrap().to_owned();
    assert!(calls.lock().unwrap().urls.is_empty());
    let late = client().post(&url).body(done("t-1")).send().await.unwrap();
    problem(late, 410, "task-callback-used").await;
    gw.shutdown().await;
}

/// A progress note (`running`) is accepted with `202` and changes nothing; a body without a
/// state is `400`; an oversized one `413`; the operation stays open for the real callback.
#[tokio::test]
async fn progress_notes_bad_and_oversized_bodies_leave_the_operation_open() {
    let plan = Plan {
        from: Via::Json,
        call_back_after: None,
        finish_after: Duration::from_secs(3600),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, calls) = callback_upstream(plan).await;
    let cfg = config(
        "memory",
        r#"{ json = "/webhook_url" }"#,
        "30s",
        "max_body = \"1KiB\"",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let resp = submit(&gw, "respond-async", "{}").await;
    assert_eq!(resp.status(), 202);
    let monitor = header_map(resp.headers())["operation-location"].clone();
    let url = calls.lock().unwrap().urls[0].clone();
    let (status, text) = post(&url, r#"{"taskId":"t-1","status":"running"}"#).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::json!({"completed": false, "state": "running"})
    );
    problem(
        client()
            .post(&url)
            .body(r#"{"no":"state"}"#)
            .send()
            .await
            .unwrap(),
        400,
        "task-callback-body",
    )
    .await;
    let big = format!(r#"{{"status":"succeeded","pad":"{}"}}"#, "x".repeat(2048));
    problem(
        client().post(&url).body(big).send().await.unwrap(),
        413,
        "body-too-large",
    )
    .await;
    let doc: Value = client()
        .get(&monitor)
        .header("x-api-key", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "running", "{doc}");
    let (status, _) = post(&url, &done("t-1")).await;
    assert_eq!(status, 200);
    let doc: Value = client()
        .get(&monitor)
        .header("x-api-key", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(status_polls(&up), 0);
    gw.shutdown().await;
}

/// `fallback_poll_interval` alone is a config error naming the task table.
#[test]
fn a_config_with_fallback_poll_interval_but_no_callback_is_refused() {
    let cfg = config("memory", r#"{ json = "/webhook_url" }"#, "30s", "")
        .replace("callback = { json = \"/webhook_url\" }\n", "");
    let err =
        prefer_gateway::config::load_str(&cfg.replace("{up}", "http://127.0.0.1:9"), "t.toml")
            .unwrap_err()
            .to_string();
    assert!(err.contains("routes[0].task"), "{err}");
    assert!(
        err.contains("fallback_poll_interval applies only with task.callback"),
        "{err}"
    );
}

/// A client's own callback (`routes[].callback`, signed webhooks) rides on the watch: the
/// upstream's callback ends the operation and the client's webhook carries its status
/// document, with no status poll.
#[tokio::test]
async fn the_clients_webhook_is_delivered_from_the_upstreams_callback() {
    let plan = Plan {
        from: Via::Json,
        call_back_after: Some(Duration::from_millis(300)),
        finish_after: Duration::from_secs(3600),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, _calls) = callback_upstream(plan).await;
    let hooks = Upstream::start(|_s: Seen| async { reply(200, "", &[]) }).await;
    let webhooks = r#"
[webhooks]
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]
"#;
    // The client's URL and the gateway's share the body member: the client's is taken off
    // (routes[].callback) before the gateway's goes in.
    let cfg = config(
        "memory",
        r#"{ json = "/webhook_url" }"#,
        "30s",
        "callback = { json = \"/webhook_url\" }",
    )
    .replace("[jobs]", &format!("{webhooks}\n[jobs]"));
    let gw = Gateway::start(&cfg, &up.url()).await;
    let body = format!(r#"{{"prompt":"x","webhook_url":"{}/hook"}}"#, hooks.url());
    let resp = submit(&gw, "respond-async", &body).await;
    assert_eq!(resp.status(), 202);
    let sent: Value = serde_json::from_slice(&up.seen()[0].body).unwrap();
    assert!(
        sent["webhook_url"]
            .as_str()
            .unwrap()
            .contains("/upstream-callback/"),
        "{sent}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while hooks.count("/hook") == 0 {
        assert!(std::time::Instant::now() < deadline, "no webhook delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = &hooks.seen()[0];
    assert!(delivered.headers.contains_key("webhook-signature"));
    let doc: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert_eq!(status_polls(&up), 0);
    gw.shutdown().await;
}
