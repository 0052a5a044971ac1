//! Signed callbacks over real loopback sockets (behaviour §6): delivery and both
//! signatures verified independently, retries on the schedule, 410 stops, Retry-After,
//! no redirects, re-delivery, submit-time refusals, task-route watches, and a restart in
//! the middle of a schedule. Every request goes to 127.0.0.1 only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::{client, reply, sync_upstream, task_upstream, Gateway, Seen, Upstream};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(store: &str, schedule: &str, jobs_extra: &str, extra_routes: &str) -> String {
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"
{jobs_extra}

[webhooks]
signing_secret = "{SECRET}"
retry_schedule = {schedule}
timeout = "2s"
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
{extra_routes}
"#
    )
}

/// A receiver answering with `statuses` in turn (the last one repeats).
async fn receiver(statuses: Vec<(u16, Vec<(&'static str, &'static str)>)>) -> Upstream {
    let n = Arc::new(AtomicUsize::new(0));
    Upstream::start(move |_s: Seen| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let (status, headers) = statuses[i.min(statuses.len() - 1)].clone();
        async move { reply(status, "", &headers) }
    })
    .await
}

fn key(secret: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap()
}

/// Checks both signatures of a delivery with an independent HMAC implementation.
fn verify(seen: &Seen, secret: &str) {
    let id = seen.headers["webhook-id"].to_str().unwrap();
    let ts = seen.headers["webhook-timestamp"].to_str().unwrap();
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", &seen.body].concat();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).unwrap();
    mac.update(&signed);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        seen.headers["webhook-signature"].to_str().unwrap(),
        expected
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).unwrap();
    mac.update(&seen.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(seen.headers["x-signature"].to_str().unwrap(), expected);
    let age = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64)
        - ts.parse::<i64>().unwrap();
    assert!((-5..60).contains(&age), "timestamp is the attempt time");
}

async fn submit(
    gw: &Gateway,
    prefer: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// The job id of a `202` handle.
async fn job_id(resp: reqwest::Response) -> String {
    resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `respond-async` with a callback to `hook`'s `/h`.
async fn submit_callback(gw: &Gateway, hook: &Upstream) -> reqwest::Response {
    let body = serde_json::json!({"callback_url": format!("{}/h", hook.url())});
    submit(gw, Some("respond-async"), body, &[]).await
}

async fn until(mut f: impl FnMut() -> bool, limit: Duration) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(gw: &Gateway, id: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = client().get(gw.url(&format!("/jobs/{id}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_finished_job_posts_its_signed_status_document_once() {
    let up = sync_upstream(Duration::from_millis(50)).await;
    let hook = receiver(vec![(204, vec![])]).await;
    let gw = Gateway::start(&config("memory", r#"["0s"]"#, "", ""), &up.url()).await;
    let cb = format!("{}/hook?token=abc", hook.url());
    let resp = submit(
        &gw,
        Some("respond-async"),
        serde_json::json!({"callback_url": cb, "x": 1}),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 202);
    let id = job_id(resp).await;
    until(|| hook.seen().len() == 1, Duration::from_secs(10)).await;
    assert_eq!(
        up.seen()[0].body,
        r#"{"x":1}"#,
        "the callback field is not forwarded"
    );
    let seen = &hook.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/hook?token=abc");
    assert_eq!(seen.headers["webhook-id"], id.as_str());
    assert_eq!(seen.headers["content-type"], "application/json");
    verify(seen, SECRET);
    let payload: Value = serde_json::from_slice(&seen.body).unwrap();
    let mut doc = status(&gw, &id, &[]).await;
    for _ in 0..50 {
        if doc["callback"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        doc = status(&gw, &id, &[]).await;
    }
    assert_eq!(doc["callback"]["state"], "delivered");
    assert_eq!(doc["callback"]["attempts"], 1);
    assert_eq!(doc["callback"]["last_status"], 204);
    doc.as_object_mut().unwrap().remove("callback");
    assert_eq!(payload, doc, "the payload is the status document");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.seen().len(), 1);
}

#[tokio::test]
async fn tenants_verify_with_their_own_derived_secret() {
    let up = sync_upstream(Duration::ZERO).await;
    let hook = receiver(vec![(200, vec![])]).await;
    let cfg = config("memory", r#"["0s"]"#, r#"tenant_header = "X-Api-Key""#, "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let secret: Value = client()
        .get(gw.url("/webhook-secret"))
        .header("x-api-key", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = secret["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret != SECRET);
    assert_eq!(
        client()
            .get(gw.url("/webhook-secret"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let other: Value = client()
        .get(gw.url("/webhook-secret"))
        .header("x-api-key", "other")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(other["secret"], secret.as_str());
    let cb = format!("{}/hook", hook.url());
    submit(
        &gw,
        Some("wait=5"),
        serde_json::json!({"callback_url": cb}),
        &[("x-api-key", "acme")],
    )
    .await;
    until(|| hook.seen().len() == 1, Duration::from_secs(10)).await;
    verify(&hook.seen()[0], &secret);
}

#[tokio::test]
async fn failed_attempts_retry_on_the_schedule_with_a_stable_webhook_id() {
    let up = sync_upstream(Duration::ZERO).await;
    let hook = receiver(vec![(500, vec![]), (429, vec![]), (200, vec![])]).await;
    let gw = Gateway::start(
        &config("memory", r#"["0s", "400ms", "800ms"]"#, "", ""),
        &up.url(),
    )
    .await;
    let cb = format!("{}/hook", hook.url());
    let started = Instant::now();
    let resp = submit(
        &gw,
        Some("respond-async"),
        serde_json::json!({"callback_url": cb}),
        &[],
    )
    .await;
    let id = job_id(resp).await;
    let mut at = Vec::new();
    let mut last = 0;
    while at.len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(10));
        if hook.seen().len() > last {
            last = hook.seen().len();
            at.push(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gaps = [at[1] - at[0], at[2] - at[1]];
    assert!(gaps[0] >= Duration::from_millis(350), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(700), "{gaps:?}");
    let ids: Vec<_> = hook
        .seen()
        .iter()
        .map(|s| s.headers["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|i| i == id.as_str()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let doc = status(&gw, &id, &[]).await;
    assert_eq!(doc["callback"]["state"], "delivered");
    assert_eq!(doc["callback"]["attempts"], 3);
}

#[tokio::test]
async fn a_410_stops_and_an_exhausted_schedule_fails() {
    let up = sync_upstream(Duration::ZERO).await;
    let gone = receiver(vec![(410, vec![])]).await;
    let down = receiver(vec![(503, vec![])]).await;
    let gw = Gateway::start(&config("memory", r#"["0s", "100ms"]"#, "", ""), &up.url()).await;
    let a = submit_callback(&gw, &gone).await;
    let b = submit_callback(&gw, &down).await;
    let a = job_id(a).await;
    let b = job_id(b).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(gone.seen().len(), 1, "410 = stop");
    assert_eq!(down.seen().len(), 2, "one attempt per schedule entry");
    assert_eq!(status(&gw, &a, &[]).await["callback"]["state"], "stopped");
    let doc = status(&gw, &b, &[]).await;
    assert_eq!(doc["callback"]["state"], "failed");
    assert_eq!(doc["callback"]["last_status"], 503);
}

#[tokio::test]
async fn a_longer_retry_after_is_honoured_and_redirects_are_not_followed() {
    let up = sync_upstream(Duration::ZERO).await;
    let slow = receiver(vec![(503, vec![("retry-after", "1")]), (200, vec![])]).await;
    let target = receiver(vec![(200, vec![])]).await;
    let loc: &'static str = Box::leak(format!("{}/elsewhere", target.url()).into_boxed_str());
    let redirect = receiver(vec![(307, vec![("location", loc)])]).await;
    let gw = Gateway::start(&config("memory", r#"["0s", "100ms"]"#, "", ""), &up.url()).await;
    let t = Instant::now();
    submit_callback(&gw, &slow).await;
    submit_callback(&gw, &redirect).await;
    until(|| slow.seen().len() == 2, Duration::from_secs(10)).await;
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After: {:?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(redirect.seen().len(), 2, "3xx is retried, not followed");
    assert!(
        target.seen().is_empty(),
        "the redirect target is never contacted"
    );
}

#[tokio::test]
async fn refused_callbacks_are_422_at_submit() {
    let up = sync_upstream(Duration::ZERO).await;
    let strict = config("memory", r#"["0s"]"#, "", "")
        .replace("allow_http = true", "allow_http = false")
        .replace("allow_networks = [\"127.0.0.0/8\"]", "allow_networks = []");
    let gw = Gateway::start(&strict, &up.url()).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://0x7f.1/hook",
        "https://2130706433/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/hook",
        "https://user:pw@example.com/hook",
        "https://localhost/hook",
        "not a url",
    ] {
        let r = submit(
            &gw,
            Some("respond-async"),
            serde_json::json!({"callback_url": url}),
            &[],
        )
        .await;
        assert_eq!(r.status(), 422, "{url}");
        let doc: Value = r.json().await.unwrap();
        assert!(
            doc["type"]
                .as_str()
                .unwrap()
                .ends_with("/callback-forbidden"),
            "{url}: {doc}"
        );
    }
    let r = submit(
        &gw,
        None,
        serde_json::json!({"callback_url": "https://example.com/hook"}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 422);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["type"]
        .as_str()
        .unwrap()
        .ends_with("/callback-requires-async"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(up.seen().is_empty(), "nothing refused reached the upstream");
}

#[tokio::test]
async fn post_callback_redelivers_a_finished_job() {
    let up = sync_upstream(Duration::ZERO).await;
    let hook = receiver(vec![(200, vec![])]).await;
    let gw = Gateway::start(&config("memory", r#"["0s"]"#, "", ""), &up.url()).await;
    let r = submit_callback(&gw, &hook).await;
    let id = job_id(r).await;
    until(|| hook.seen().len() == 1, Duration::from_secs(10)).await;
    let again = client()
        .post(gw.url(&format!("/jobs/{id}/callback")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    until(|| hook.seen().len() == 2, Duration::from_secs(10)).await;
    assert_eq!(hook.seen()[1].headers["webhook-id"], id.as_str());
    // A job without a callback cannot be re-delivered.
    let plain = submit(&gw, Some("respond-async"), serde_json::json!({"x": 1}), &[]).await;
    let plain = job_id(plain).await;
    for _ in 0..100 {
        if status(&gw, &plain, &[]).await["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = client()
        .post(gw.url(&format!("/jobs/{plain}/callback")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn task_routes_watch_the_operation_and_deliver_its_final_status() {
    let tasks = task_upstream(Duration::from_millis(500)).await;
    let hook = receiver(vec![(200, vec![])]).await;
    let route = r#"
[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "TASKS"
callback = { header = "Callback-Url" }

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
"#
    .replace("TASKS", &tasks.url());
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config("memory", r#"["0s"]"#, "", &route), &up.url()).await;
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .header("callback-url", format!("{}/done", hook.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(resp.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"monitor\""));
    assert!(
        tasks.seen()[0].headers.get("callback-url").is_none(),
        "not forwarded"
    );
    assert_eq!(resp.json::<Value>().await.unwrap()["taskId"], "t-1");
    until(|| hook.seen().len() == 1, Duration::from_secs(10)).await;
    let body: Value = serde_json::from_slice(&hook.seen()[0].body).unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["taskId"], "t-1");
    verify(&hook.seen()[0], SECRET);
    // Without respond-async/wait a callback is refused.
    let r = client()
        .post(gw.url("/v1/edit"))
        .header("callback-url", format!("{}/x", hook.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_restart_mid_schedule_resumes_with_the_same_webhook_id() {
    let up = sync_upstream(Duration::ZERO).await;
    let hook = receiver(vec![(500, vec![]), (200, vec![])]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("jobs.db").display());
    let cfg = config(&store, r#"["0s", "1500ms"]"#, "", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let r = submit_callback(&gw, &hook).await;
    let id = job_id(r).await;
    until(|| hook.seen().len() == 1, Duration::from_secs(10)).await;
    gw.shutdown().await;
    let gw = Gateway::start(&cfg, &up.url()).await;
    until(|| hook.seen().len() == 2, Duration::from_secs(10)).await;
    assert_eq!(hook.seen()[1].headers["webhook-id"], id.as_str());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status(&gw, &id, &[]).await["callback"]["state"],
        "delivered"
    );
}
