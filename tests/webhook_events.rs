//! Webhook events (issue 17, bullet 7), black-box over real sockets: a client that asks
//! with `callback_events` (the route's header or body field) gets a signed `started`
//! event when its job starts and then the terminal event, in that order — also when the
//! `started` delivery needs a retry; a client that does not ask gets only the terminal
//! event, unchanged; a bad `callback_events` is a `400` problem and nothing is sent. Both
//! signatures of every delivery are checked with an independent HMAC. The cases whose
//! state lives in the store run on memory, SQLite and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::store::store;
use support::{client, reply, sync_upstream, Gateway, Seen, Upstream};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One sync route with a body-field callback URL; `events` is its `callback_events`.
fn config(store: &str, schedule: &str, events: &str) -> String {
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"

[webhooks]
signing_secret = "{SECRET}"
retry_schedule = {schedule}
timeout = "1s"
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
callback = {{ json = "/callback_url" }}
{events}
"#
    )
}

const BY_HEADER: &str = "callback_events = { header = \"Callback-Events\" }";
const BY_FIELD: &str = "callback_events = { json = \"/callback_events\" }";

/// A receiver answering with `statuses` in turn (the last one repeats).
async fn receiver(statuses: Vec<u16>) -> Upstream {
    let n = Arc::new(AtomicUsize::new(0));
    Upstream::start(move |_s: Seen| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let status = statuses[i.min(statuses.len() - 1)];
        async move { reply(status, "", &[]) }
    })
    .await
}

/// Checks both signatures of a delivery with an independent HMAC implementation.
fn verify(seen: &Seen) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let id = seen.headers["webhook-id"].to_str().unwrap();
    let ts = seen.headers["webhook-timestamp"].to_str().unwrap();
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", &seen.body].concat();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&signed);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        seen.headers["webhook-signature"].to_str().unwrap(),
        expected
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&seen.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(seen.headers["x-signature"].to_str().unwrap(), expected);
}

async fn submit(gw: &Gateway, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .body(body.to_string());
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

/// Waits (generously: the machine may be busy) until `hook` saw `n` requests.
async fn deliveries(hook: &Upstream, n: usize) -> Vec<Seen> {
    let t = Instant::now();
    while hook.seen().len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} of {n} deliveries",
            hook.seen().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hook.seen()
}

fn id_of(seen: &Seen) -> String {
    seen.headers["webhook-id"].to_str().unwrap().to_owned()
}

fn doc(seen: &Seen) -> Value {
    serde_json::from_slice(&seen.body).unwrap()
}

async fn started_then_completed(kind: &str) {
    let store = store(kind);
    let up = sync_upstream(Duration::from_millis(500)).await;
    let hook = receiver(vec![204]).await;
    let gw = Gateway::start(
        &config(&store.spec, "[\"0s\", \"1s\"]", BY_HEADER),
        &up.url(),
    )
    .await;
    let body = json!({"scene": 1, "callback_url": format!("{}/h", hook.url())});
    let id = job_id(submit(&gw, body, &[("callback-events", "started, completed")]).await).await;
    let seen = deliveries(&hook, 2).await;
    for s in &seen {
        verify(s);
    }
    assert_eq!(id_of(&seen[0]), format!("{id}.started"));
    let started = doc(&seen[0]);
    assert_eq!(started["event"], "job.started", "{started}");
    assert_eq!(started["job_id"], id.as_str());
    assert_eq!(
        started["status"], "running",
        "the upstream call takes 500 ms: {started}"
    );
    assert!(started.get("callback").is_none());
    assert_eq!(id_of(&seen[1]), id, "the terminal event keeps the job id");
    let done = doc(&seen[1]);
    assert_eq!(done["event"], "job.completed", "{done}");
    assert_eq!(done["status"], "succeeded", "{done}");
    // The header went nowhere near the upstream.
    assert!(up.seen()[0].headers.get("callback-events").is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.seen().len(), 2, "each event once");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_client_that_asks_gets_started_then_the_terminal_event_memory() {
    started_then_completed("memory").await;
}

#[tokio::test]
async fn a_client_that_asks_gets_started_then_the_terminal_event_sqlite() {
    started_then_completed("sqlite").await;
}

#[tokio::test]
async fn a_client_that_asks_gets_started_then_the_terminal_event_redis() {
    started_then_completed("redis").await;
}

#[tokio::test]
async fn asked_in_a_body_field_which_the_upstream_never_sees() {
    let up = sync_upstream(Duration::from_millis(200)).await;
    let hook = receiver(vec![204]).await;
    let gw = Gateway::start(&config("memory", "[\"0s\"]", BY_FIELD), &up.url()).await;
    let body = json!({
        "scene": 1,
        "callback_url": format!("{}/h", hook.url()),
        "callback_events": ["started"],
    });
    let id = job_id(submit(&gw, body, &[]).await).await;
    let seen = deliveries(&hook, 2).await;
    assert_eq!(id_of(&seen[0]), format!("{id}.started"));
    assert_eq!(id_of(&seen[1]), id);
    let sent: Value = serde_json::from_slice(&up.seen()[0].body).unwrap();
    assert_eq!(sent, json!({"scene": 1}));
}

#[tokio::test]
async fn without_asking_only_the_terminal_event_as_before() {
    let up = sync_upstream(Duration::from_millis(200)).await;
    let hook = receiver(vec![204]).await;
    let gw = Gateway::start(&config("memory", "[\"0s\"]", BY_HEADER), &up.url()).await;
    let body = json!({"scene": 1, "callback_url": format!("{}/h", hook.url())});
    let id = job_id(submit(&gw, body, &[]).await).await;
    let seen = deliveries(&hook, 1).await;
    verify(&seen[0]);
    assert_eq!(id_of(&seen[0]), id);
    let done = doc(&seen[0]);
    assert_eq!(done["status"], "succeeded");
    assert!(done.get("event").is_none(), "unchanged on the wire: {done}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hook.seen().len(), 1);
}

async fn ordered_despite_a_failed_started_attempt(kind: &str) {
    let store = store(kind);
    // The job is done long before the started event gets through on its second attempt.
    let up = sync_upstream(Duration::from_millis(10)).await;
    let hook = receiver(vec![503, 204]).await;
    let gw = Gateway::start(
        &config(&store.spec, "[\"0s\", \"1s\"]", BY_HEADER),
        &up.url(),
    )
    .await;
    let body = json!({"scene": 1, "callback_url": format!("{}/h", hook.url())});
    let id = job_id(submit(&gw, body, &[("callback-events", "started")]).await).await;
    let seen = deliveries(&hook, 3).await;
    let ids: Vec<String> = seen.iter().map(id_of).collect();
    let started = format!("{id}.started");
    assert_eq!(
        ids,
        [started.clone(), started, id.clone()],
        "started is never overtaken"
    );
    for s in &seen {
        verify(s);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn the_terminal_event_waits_for_a_retried_started_event_memory() {
    ordered_despite_a_failed_started_attempt("memory").await;
}

#[tokio::test]
async fn the_terminal_event_waits_for_a_retried_started_event_sqlite() {
    ordered_despite_a_failed_started_attempt("sqlite").await;
}

#[tokio::test]
async fn the_terminal_event_waits_for_a_retried_started_event_redis() {
    ordered_despite_a_failed_started_attempt("redis").await;
}

#[tokio::test]
async fn a_bad_callback_events_value_is_a_400_problem() {
    let up = sync_upstream(Duration::from_millis(10)).await;
    let hook = receiver(vec![204]).await;
    let gw = Gateway::start(&config("memory", "[\"0s\"]", BY_HEADER), &up.url()).await;
    let with_url = json!({"callback_url": format!("{}/h", hook.url())});
    for value in ["progress", "started,finished", " , "] {
        let resp = submit(&gw, with_url.clone(), &[("callback-events", value)]).await;
        let doc = support::wire::assert_problem(resp, 400, "invalid-callback-events").await;
        assert!(doc["detail"].is_string(), "{doc}");
    }
    // Events without a callback URL to send them to.
    let resp = submit(&gw, json!({"scene": 1}), &[("callback-events", "started")]).await;
    support::wire::assert_problem(resp, 400, "invalid-callback-events").await;
    // A body field that is neither a string nor a list of strings.
    let gw2 = Gateway::start(&config("memory", "[\"0s\"]", BY_FIELD), &up.url()).await;
    let body = json!({"callback_url": format!("{}/h", hook.url()), "callback_events": 3});
    let resp = submit(&gw2, body, &[]).await;
    support::wire::assert_problem(resp, 400, "invalid-callback-events").await;
    assert!(up.seen().is_empty(), "nothing was sent upstream");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.seen().is_empty());
}
