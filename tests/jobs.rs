//! Gateway jobs on `sync` routes, black-box over real sockets: every bullet of behaviour §5,
//! run once on the memory store and once on a real SQLite file (one suite, two stores).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, sync_config, sync_upstream, Gateway, Upstream};

/// The store under test: the config value and the temp dir that must outlive the gateway.
struct Store {
    spec: String,
    _dir: Option<tempfile::TempDir>,
}

fn store(kind: &str) -> Store {
    match kind {
        "memory" => Store {
            spec: "memory".into(),
            _dir: None,
        },
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let spec = format!("sqlite:{}", dir.path().join("jobs.db").display());
            Store {
                spec,
                _dir: Some(dir),
            }
        }
    }
}

async fn start(
    kind: &str,
    took: Duration,
    jobs_extra: &str,
    route_extra: &str,
) -> (Gateway, Upstream, Store) {
    let st = store(kind);
    let up = sync_upstream(took).await;
    let gw = Gateway::start(&sync_config(&st.spec, jobs_extra, route_extra), &up.url()).await;
    (gw, up, st)
}

async fn post(
    gw: &Gateway,
    prefer: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Polls the status URL until the job is terminal; returns the status document.
async fn until_terminal(gw: &Gateway, status_url: &str, headers: &[(&str, &str)]) -> Value {
    let t = Instant::now();
    loop {
        let doc: Value = get(gw, status_url, headers).await.json().await.unwrap();
        if ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap_or("")) {
            return doc;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never finished: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn async_submit_answers_a_durable_202_handle(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(100), "", "").await;
    let resp = post(
        &gw,
        Some("respond-async"),
        r#"{"scene":1}"#,
        &[("x-client", "c1")],
    )
    .await;
    assert_eq!(resp.status(), 202);
    let h = resp.headers().clone();
    assert_eq!(h["preference-applied"], "respond-async");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(h["vary"], "Prefer");
    let doc: Value = resp.json().await.unwrap();
    let id = doc["job_id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(doc["status"], "pending");
    // Absolute, for standard clients; `Operation-Location` is the same monitor.
    let status_url = gw.url(&format!("/jobs/{id}"));
    assert_eq!(doc["status_url"], status_url);
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(h["location"], status_url.as_str());
    assert_eq!(h["operation-location"], status_url.as_str());
    let done = until_terminal(&gw, &format!("/jobs/{id}"), &[]).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["job_id"], id.as_str());
    assert_eq!(done["result_url"], gw.url(&format!("/jobs/{id}/result")));
    assert_eq!(done["resourceLocation"], done["result_url"]);
    for field in ["created_at", "updated_at", "expires_at"] {
        assert!(
            done[field].as_str().unwrap().ends_with('Z'),
            "{field}: {done}"
        );
    }
    let result = get(&gw, &format!("/jobs/{id}/result"), &[]).await;
    assert_eq!(result.status(), 200);
    assert_eq!(result.headers()["x-upstream"], "yes");
    assert_eq!(result.text().await.unwrap(), r#"{"rendered":{"scene":1}}"#);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["idempotency-key"], id.as_str());
    assert_eq!(seen[0].headers["x-client"], "c1");
    assert!(seen[0].headers.get("prefer").is_none());
    assert_eq!(seen[0].body, r#"{"scene":1}"#);
}

async fn wait_returns_the_upstream_response_when_done_in_time(kind: &str) {
    let (gw, _up, _st) = start(kind, Duration::from_millis(300), "", "").await;
    let t = Instant::now();
    let resp = post(&gw, Some("wait=5"), r#"{"a":1}"#, &[]).await;
    assert!(t.elapsed() < Duration::from_secs(3), "woken by completion");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=5"
    );
    assert_eq!(resp.headers()["x-upstream"], "yes");
    assert_eq!(resp.text().await.unwrap(), r#"{"rendered":{"a":1}}"#);
}

async fn wait_falls_back_to_the_202_handle_and_the_job_goes_on(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(1800), "", "").await;
    let t = Instant::now();
    let resp = post(&gw, Some("respond-async, wait=1"), "{}", &[]).await;
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=1"
    );
    let doc: Value = resp.json().await.unwrap();
    let done = until_terminal(&gw, doc["status_url"].as_str().unwrap(), &[]).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(up.seen().len(), 1);
}

async fn default_is_a_plain_synchronous_proxy(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(50), "", "").await;
    let resp = post(&gw, None, r#"{"b":2}"#, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("preference-applied").is_none());
    assert_eq!(resp.headers()["vary"], "Prefer");
    assert_eq!(resp.text().await.unwrap(), r#"{"rendered":{"b":2}}"#);
    assert!(
        up.seen()[0].headers.get("idempotency-key").is_none(),
        "no job was made"
    );
}

async fn a_body_over_max_body_is_413(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::ZERO, "", "max_body = \"1KiB\"").await;
    let resp = post(&gw, Some("respond-async"), &"x".repeat(2048), &[]).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(up.seen().is_empty());
}

async fn upstream_failures_are_recorded(kind: &str) {
    let (gw, _up, _st) = start(kind, Duration::ZERO, "", "").await;
    let resp = post(&gw, Some("respond-async"), r#"{"x":"fail"}"#, &[]).await;
    let doc: Value = resp.json().await.unwrap();
    let done = until_terminal(&gw, doc["status_url"].as_str().unwrap(), &[]).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "upstream_status");
    assert_eq!(done["error"]["status"], 500);
    let result = get(&gw, done["result_url"].as_str().unwrap(), &[]).await;
    assert_eq!(
        result.status(),
        500,
        "the failed answer is still replayable"
    );
    assert_eq!(result.text().await.unwrap(), r#"{"error":"render failed"}"#);
}

async fn unreachable_and_slow_upstreams_fail_with_their_own_codes(kind: &str) {
    let st = store(kind);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = Gateway::start(&sync_config(&st.spec, "", ""), &format!("http://{dead}")).await;
    let doc: Value = post(&gw, Some("respond-async"), "{}", &[])
        .await
        .json()
        .await
        .unwrap();
    let done = until_terminal(&gw, doc["status_url"].as_str().unwrap(), &[]).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "upstream_unreachable");
    assert!(done.get("result_url").is_none());
    let id = done["job_id"].as_str().unwrap();
    let result = get(&gw, &format!("/jobs/{id}/result"), &[]).await;
    assert_eq!(result.status(), 409);

    let (gw, _up, _st2) = start(
        kind,
        Duration::from_secs(3),
        "",
        "upstream_timeout = \"300ms\"",
    )
    .await;
    let doc: Value = post(&gw, Some("respond-async"), "{}", &[])
        .await
        .json()
        .await
        .unwrap();
    let done = until_terminal(&gw, doc["status_url"].as_str().unwrap(), &[]).await;
    assert_eq!(done["error"]["code"], "upstream_timeout");
}

async fn cancel_pending_running_and_terminal(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(800), "", "max_in_flight = 1").await;
    let first: Value = post(&gw, Some("respond-async"), r#"{"n":1}"#, &[])
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&gw, Some("respond-async"), r#"{"n":2}"#, &[])
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The first is running (max_in_flight = 1), the second pending.
    let running = get(&gw, first["status_url"].as_str().unwrap(), &[])
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(running["status"], "running");
    let c = client()
        .delete(gw.url(second["status_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 200);
    assert_eq!(c.json::<Value>().await.unwrap()["status"], "canceled");
    let c = client()
        .delete(gw.url(first["status_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = get(&gw, first["status_url"].as_str().unwrap(), &[])
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        after["status"], "canceled",
        "a late upstream answer does not resurrect it"
    );
    assert_eq!(up.seen().len(), 1, "the pending job was never sent");
    let again = client()
        .delete(gw.url(first["status_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(again.headers()["content-type"], "application/problem+json");
}

async fn tenants_are_scoped_and_foreign_jobs_look_unknown(kind: &str) {
    let (gw, _up, _st) = start(kind, Duration::ZERO, "tenant_header = \"X-Api-Key\"", "").await;
    let resp = post(&gw, Some("respond-async"), "{}", &[]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let doc: Value = post(&gw, Some("respond-async"), "{}", &[("x-api-key", "alice")])
        .await
        .json()
        .await
        .unwrap();
    let url = doc["status_url"].as_str().unwrap();
    until_terminal(&gw, url, &[("x-api-key", "alice")]).await;
    assert_eq!(get(&gw, url, &[]).await.status(), 401);
    let foreign = get(&gw, url, &[("x-api-key", "bob")]).await;
    assert_eq!(foreign.status(), 404);
    let foreign_body = foreign.bytes().await.unwrap();
    let unknown = get(
        &gw,
        "/jobs/01890000-0000-7000-8000-000000000000",
        &[("x-api-key", "bob")],
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.bytes().await.unwrap(),
        foreign_body,
        "byte-identical 404s"
    );
    let del = client()
        .delete(gw.url(url))
        .header("x-api-key", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);
}

async fn idempotency_keys_return_the_original_job(kind: &str) {
    let (gw, up, _st) = start(
        kind,
        Duration::from_millis(100),
        "",
        r#"idempotency = { json = "/client_request_id" }"#,
    )
    .await;
    let a: Value = post(
        &gw,
        Some("respond-async"),
        r#"{"v":1}"#,
        &[("idempotency-key", "\"k-1\"")],
    )
    .await
    .json()
    .await
    .unwrap();
    let b = post(
        &gw,
        Some("respond-async"),
        r#"{"v":1}"#,
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(b.status(), 202);
    assert_eq!(b.json::<Value>().await.unwrap()["job_id"], a["job_id"]);
    let conflict = post(
        &gw,
        Some("respond-async"),
        r#"{"v":2}"#,
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(conflict.status(), 422);
    assert_eq!(
        conflict.headers()["content-type"],
        "application/problem+json"
    );
    for bad in ["\"unterminated", "a,b", &"k".repeat(256)] {
        let r = post(
            &gw,
            Some("respond-async"),
            "{}",
            &[("idempotency-key", bad)],
        )
        .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    // The route's JSON field works as a key too.
    let body = r#"{"client_request_id":"r-9","v":3}"#;
    let c: Value = post(&gw, Some("respond-async"), body, &[])
        .await
        .json()
        .await
        .unwrap();
    let d: Value = post(&gw, Some("respond-async"), body, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["job_id"], d["job_id"]);
    // A WAIT repeating a key waits on the original job and gets its response.
    let w = post(
        &gw,
        Some("wait=5"),
        r#"{"v":1}"#,
        &[("idempotency-key", "k-1")],
    )
    .await;
    assert_eq!(w.status(), 200);
    assert_eq!(w.text().await.unwrap(), r#"{"rendered":{"v":1}}"#);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.seen().len(), 2, "one upstream call per distinct job");
}

async fn concurrent_duplicates_make_one_upstream_call(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(200), "", "").await;
    let url = gw.url("/v1/render");
    let mut all = Vec::new();
    for _ in 0..50 {
        let url = url.clone();
        all.push(tokio::spawn(async move {
            let r = client()
                .post(url)
                .header("prefer", "respond-async")
                .header("idempotency-key", "same")
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
    ids.dedup();
    assert_eq!(ids.len(), 1, "every duplicate got the original job");
    until_terminal(&gw, &format!("/jobs/{}", ids[0]), &[]).await;
    assert_eq!(up.seen().len(), 1);
}

async fn the_tenant_queue_limit_answers_429(kind: &str) {
    let jobs = "tenant_header = \"X-Api-Key\"\nmax_queued_per_tenant = 2";
    let (gw, _up, _st) = start(kind, Duration::from_secs(2), jobs, "max_in_flight = 1").await;
    for _ in 0..2 {
        assert_eq!(
            post(&gw, Some("respond-async"), "{}", &[("x-api-key", "a")])
                .await
                .status(),
            202
        );
    }
    let full = post(&gw, Some("respond-async"), "{}", &[("x-api-key", "a")]).await;
    assert_eq!(full.status(), 429);
    assert!(full.headers().get("retry-after").is_some());
    assert_eq!(full.headers()["content-type"], "application/problem+json");
    assert_eq!(
        post(&gw, Some("respond-async"), "{}", &[("x-api-key", "b")])
            .await
            .status(),
        202
    );
}

async fn jobs_past_retention_answer_410_and_unknown_ids_404(kind: &str) {
    let (gw, _up, _st) = start(kind, Duration::ZERO, "retention = \"1s\"", "").await;
    let doc: Value = post(&gw, Some("respond-async"), "{}", &[])
        .await
        .json()
        .await
        .unwrap();
    let url = doc["status_url"].as_str().unwrap().to_owned();
    until_terminal(&gw, &url, &[]).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let gone = get(&gw, &url, &[]).await;
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.headers()["content-type"], "application/problem+json");
    assert_eq!(get(&gw, &format!("{url}/result"), &[]).await.status(), 410);
    assert_eq!(get(&gw, "/jobs/never-existed", &[]).await.status(), 404);
}

async fn status_long_polls_with_prefer_wait(kind: &str) {
    let (gw, _up, _st) = start(kind, Duration::from_millis(500), "", "").await;
    let doc: Value = post(&gw, Some("respond-async"), "{}", &[])
        .await
        .json()
        .await
        .unwrap();
    let url = doc["status_url"].as_str().unwrap();
    let pending = get(&gw, &format!("{url}/result"), &[]).await;
    assert_eq!(pending.status(), 202, "result before the end: 202 + status");
    assert_eq!(pending.headers()["retry-after"], "1");
    let t = Instant::now();
    let resp = get(&gw, url, &[("prefer", "wait=10")]).await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(resp.headers()["preference-applied"], "wait=10");
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "succeeded");
}

async fn max_in_flight_limits_concurrent_upstream_calls(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::from_millis(300), "", "max_in_flight = 2").await;
    let mut urls = Vec::new();
    for i in 0..5 {
        let doc: Value = post(&gw, Some("respond-async"), &format!("{{\"i\":{i}}}"), &[])
            .await
            .json()
            .await
            .unwrap();
        urls.push(doc["status_url"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(up.seen().len(), 2, "only two in flight");
    for u in &urls {
        until_terminal(&gw, u, &[]).await;
    }
    assert_eq!(up.seen().len(), 5);
}

async fn deprecated_mode_in_the_body_makes_a_job(kind: &str) {
    let (gw, up, _st) = start(kind, Duration::ZERO, "", r#"mode = { json = "/mode" }"#).await;
    let resp = post(&gw, None, r#"{"mode":"async","w":1}"#, &[]).await;
    assert_eq!(resp.status(), 202);
    assert!(resp.headers().get("preference-applied").is_none());
    assert!(resp.headers().get("deprecation").is_some());
    let doc: Value = resp.json().await.unwrap();
    until_terminal(&gw, doc["status_url"].as_str().unwrap(), &[]).await;
    assert_eq!(up.seen()[0].body, r#"{"w":1}"#);
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $case() { super::$case("memory").await } )*
        }
        mod sqlite {
            $( #[tokio::test] async fn $case() { super::$case("sqlite").await } )*
        }
    };
}

suite!(
    async_submit_answers_a_durable_202_handle,
    wait_returns_the_upstream_response_when_done_in_time,
    wait_falls_back_to_the_202_handle_and_the_job_goes_on,
    default_is_a_plain_synchronous_proxy,
    a_body_over_max_body_is_413,
    upstream_failures_are_recorded,
    unreachable_and_slow_upstreams_fail_with_their_own_codes,
    cancel_pending_running_and_terminal,
    tenants_are_scoped_and_foreign_jobs_look_unknown,
    idempotency_keys_return_the_original_job,
    concurrent_duplicates_make_one_upstream_call,
    the_tenant_queue_limit_answers_429,
    jobs_past_retention_answer_410_and_unknown_ids_404,
    status_long_polls_with_prefer_wait,
    max_in_flight_limits_concurrent_upstream_calls,
    deprecated_mode_in_the_body_makes_a_job,
);
