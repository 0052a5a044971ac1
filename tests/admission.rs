//! Admission (issue 8), black-box over loopback: a route's admission endpoint is asked
//! before a job is created or a request forwarded; its 4xx goes back to the client as it is
//! and nothing else happens; an unreachable or failing endpoint is a `503` problem; when a
//! job ends the endpoint is told — settle on `succeeded`, release on `failed` / `canceled` —
//! durably, retried on the webhook schedule, once per job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "admission/abandoned.rs"]
mod abandoned;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, reply, sync_upstream, task_upstream, Gateway, Seen, Upstream};

/// A balance service: admits `budget` reserves (reservation `r-<n>`), then answers `402`
/// with a JSON body; `notice_statuses` are the answers to settle/release in turn (the last
/// repeats). Every call is recorded as `(action, body, idempotency-key)`.
struct Balance {
    up: Upstream,
    calls: Arc<Mutex<Vec<(String, Value, String)>>>,
}

impl Balance {
    async fn start(budget: usize, notice_statuses: Vec<u16>) -> Balance {
        let calls: Arc<Mutex<Vec<(String, Value, String)>>> = Arc::default();
        let log = Arc::clone(&calls);
        let up = Upstream::start(move |s: Seen| {
            let doc: Value = serde_json::from_slice(&s.body).unwrap_or_default();
            let action = doc["action"].as_str().unwrap_or("").to_owned();
            let key = s
                .headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let mut calls = log.lock().unwrap();
            calls.push((action.clone(), doc, key));
            let reserves = calls.iter().filter(|c| c.0 == "reserve").count();
            let notices = calls.iter().filter(|c| c.0 != "reserve").count();
            let answer = if action == "reserve" {
                if reserves <= budget {
                    reply(200, &format!(r#"{{"reservation":"r-{reserves}"}}"#), &[])
                } else {
                    reply(
                        402,
                        r#"{"error":"insufficient balance"}"#,
                        &[("retry-after", "60")],
                    )
                }
            } else {
                let status = notice_statuses[(notices - 1).min(notice_statuses.len() - 1)];
                reply(status, "{}", &[])
            };
            async move { answer }
        })
        .await;
        Balance { up, calls }
    }

    fn calls(&self, action: &str) -> Vec<(Value, String)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.0 == action)
            .map(|c| (c.1.clone(), c.2.clone()))
            .collect()
    }

    /// Waits until `n` calls of `action` arrived (at most 10 s).
    async fn wait_for(&self, action: &str, n: usize) -> Vec<(Value, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.calls(action);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sync_route_config(admission_url: &str, extra: &str) -> String {
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "memory"
tenant_header = "X-Api-Key"

[webhooks]
retry_schedule = ["0s", "100ms", "100ms"]

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
admission = {{ url = "{admission_url}/admission", timeout = "500ms" }}
{extra}
"#
    )
}

async fn submit(gw: &Gateway, body: &str, prefer: &str) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("x-api-key", "acme")
        .body(body.to_owned());
    if !prefer.is_empty() {
        req = req.header("prefer", prefer);
    }
    req.send().await.unwrap()
}

async fn job_id(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    doc["job_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_job_is_reserved_then_settled_once_with_its_reservation() {
    let balance = Balance::start(10, vec![200]).await;
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    let id = job_id(submit(&gw, r#"{"n":1}"#, "respond-async").await).await;
    let reserves = balance.calls("reserve");
    assert_eq!(reserves.len(), 1);
    let ask = &reserves[0].0;
    assert_eq!(ask["tenant"], "acme");
    assert_eq!(ask["route"], "render");
    assert_eq!(ask["method"], "POST");
    assert_eq!(ask["path"], "/v1/render");
    assert_eq!(ask["body_size"], 7);
    let settles = balance.wait_for("settle", 1).await;
    assert_eq!(settles.len(), 1, "settled");
    let (doc, key) = &settles[0];
    assert_eq!(doc["reservation"], "r-1");
    assert_eq!(doc["job_id"], id.as_str());
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(key, &format!("{id}:settle"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(balance.calls("settle").len(), 1, "once");
    assert!(balance.calls("release").is_empty());
}

#[tokio::test]
async fn a_refusal_goes_back_as_it_is_and_no_job_is_created() {
    let balance = Balance::start(0, vec![200]).await;
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    for prefer in ["respond-async", "wait=5", ""] {
        let resp = submit(&gw, "{}", prefer).await;
        assert_eq!(resp.status(), 402, "Prefer: {prefer:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["retry-after"], "60");
        assert_eq!(
            resp.text().await.unwrap(),
            r#"{"error":"insufficient balance"}"#
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(up.seen().is_empty(), "nothing was forwarded or run");
}

#[tokio::test]
async fn an_unreachable_or_failing_endpoint_is_a_503_problem() {
    let up = sync_upstream(Duration::ZERO).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let failing = Upstream::start(|_s: Seen| async { reply(500, "{}", &[]) }).await;
    let hanging = Upstream::start(|_s: Seen| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        reply(200, "{}", &[])
    })
    .await;
    for url in [dead_url, failing.url(), hanging.url()] {
        let gw = Gateway::start(&sync_route_config(&url, ""), &up.url()).await;
        let started = Instant::now();
        let resp = submit(&gw, "{}", "respond-async").await;
        let doc = support::wire::assert_problem(resp, 503, "admission-unavailable").await;
        assert!(doc["detail"].is_string());
        assert!(started.elapsed() < Duration::from_secs(10));
        gw.shutdown().await;
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn failed_and_canceled_jobs_release_and_a_failing_notice_is_retried() {
    // Settle/release answers: 500 first, then 200 — the notice is retried on the schedule.
    let balance = Balance::start(10, vec![500, 200]).await;
    let up = sync_upstream(Duration::from_millis(300)).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    let failed = job_id(submit(&gw, r#"{"x":"fail"}"#, "respond-async").await).await;
    let releases = balance.wait_for("release", 2).await;
    assert_eq!(releases.len(), 2, "one failed attempt, one retry");
    assert!(releases.iter().all(|(d, k)| d["job_id"] == failed.as_str()
        && d["status"] == "failed"
        && k == &format!("{failed}:release")));

    let canceled = job_id(submit(&gw, r#"{"n":2}"#, "respond-async").await).await;
    let del = client()
        .delete(gw.url(&format!("/jobs/{canceled}")))
        .header("x-api-key", "acme")
        .send()
        .await
        .unwrap();
    assert!(del.status().is_success(), "{}", del.status());
    let releases = balance.wait_for("release", 3).await;
    let last = &releases.last().unwrap().0;
    assert_eq!(last["job_id"], canceled.as_str());
    assert_eq!(last["status"], "canceled");
}

#[tokio::test]
async fn a_repeated_idempotent_submit_releases_its_second_reservation() {
    let balance = Balance::start(10, vec![200]).await;
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    let send = || {
        client()
            .post(gw.url("/v1/render"))
            .header("x-api-key", "acme")
            .header("prefer", "respond-async")
            .header("idempotency-key", "k-1")
            .body("{}")
            .send()
    };
    let first = job_id(send().await.unwrap()).await;
    let second = job_id(send().await.unwrap()).await;
    assert_eq!(first, second);
    let releases = balance.wait_for("release", 1).await;
    assert_eq!(releases.len(), 1);
    assert_eq!(
        releases[0].0["reservation"], "r-2",
        "the repeat's reservation is returned"
    );
    assert_eq!(
        balance.wait_for("settle", 1).await[0].0["reservation"],
        "r-1"
    );
}

#[tokio::test]
async fn a_synchronous_request_is_admitted_and_settled_after_its_answer() {
    let balance = Balance::start(10, vec![200]).await;
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    let resp = submit(&gw, r#"{"n":1}"#, "").await;
    assert_eq!(resp.status(), 200);
    let settles = balance.wait_for("settle", 1).await;
    assert_eq!(settles[0].0["reservation"], "r-1");
    assert_eq!(settles[0].0["status"], "200");
    let resp = submit(&gw, r#"{"x":"fail"}"#, "").await;
    assert_eq!(resp.status(), 500);
    let releases = balance.wait_for("release", 1).await;
    assert_eq!(releases[0].0["status"], "500");
}

#[tokio::test]
async fn a_task_route_is_admitted_before_forwarding_and_settled_when_the_task_ends() {
    let balance = Balance::start(1, vec![200]).await;
    let up = task_upstream(Duration::from_millis(300)).await;
    let cfg = format!(
        "[jobs]\nstore = \"memory\"\n\n[webhooks]\nretry_schedule = [\"0s\", \"100ms\"]\n{}",
        support::task_config(
            "",
            &format!(
                "admission = {{ url = \"{}/admission\", timeout = \"500ms\" }}",
                balance.up.url()
            )
        )
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let settles = balance.wait_for("settle", 1).await;
    assert_eq!(settles.len(), 1, "settled when the task succeeded");
    assert_eq!(settles[0].0["reservation"], "r-1");
    assert_eq!(settles[0].0["status"], "succeeded");
    let submits = up.count("/v1/edit");
    let refused = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 402);
    assert_eq!(
        up.count("/v1/edit"),
        submits,
        "a refused submit is not forwarded"
    );
}

#[tokio::test]
async fn a_reservation_survives_a_crash_and_is_released_by_the_next_process() {
    let balance = Balance::start(10, vec![200]).await;
    let up = sync_upstream(Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let cfg = sync_route_config(&balance.up.url(), "")
        .replace(
            "store = \"memory\"",
            &format!("store = \"sqlite:{}\"", db.display()),
        )
        .replace("{up}", &up.url());
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, format!("[server]\nlisten = \"127.0.0.1:0\"\n{cfg}")).unwrap();
    let mut first = support::process::GatewayProcess::start(&path);
    let resp = client()
        .post(first.url("/v1/render"))
        .header("x-api-key", "acme")
        .header("prefer", "respond-async")
        .body("{}")
        .send()
        .await
        .unwrap();
    let id = job_id(resp).await;
    // The job is running (the upstream holds it) when the process dies without cleanup.
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.seen().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.seen().len(), 1, "the job started");
    first.kill();
    assert!(balance.calls("release").is_empty() && balance.calls("settle").is_empty());
    // The next process finds the interrupted job, fails it (no retry_interrupted) and
    // releases the reservation it was admitted with.
    let _second = support::process::GatewayProcess::start(&path);
    let releases = balance.wait_for("release", 1).await;
    assert_eq!(releases.len(), 1, "released after the restart");
    assert_eq!(releases[0].0["job_id"], id.as_str());
    assert_eq!(releases[0].0["reservation"], "r-1");
    assert_eq!(releases[0].0["status"], "failed");
}

#[test]
fn admission_is_refused_on_proxy_routes_and_needs_an_http_url() {
    let on_proxy =
        "[[routes]]\nname = \"p\"\nkind = \"proxy\"\nmethods = [\"GET\"]\npath = \"/p\"\n\
                    upstream = \"http://127.0.0.1:9\"\n\
                    admission = { url = \"http://127.0.0.1:9/admission\" }\n";
    let err = prefer_gateway::config::load_str(on_proxy, "t.toml").unwrap_err();
    assert_eq!(err.key(), "routes[0].admission", "{err}");
    let bad_url = sync_route_config("ftp://billing", "").replace("{up}", "http://127.0.0.1:9");
    let err = prefer_gateway::config::load_str(&bad_url, "t.toml").unwrap_err();
    assert!(err.key().starts_with("routes[0].admission"), "{err}");
    assert!(err.to_string().contains("http"), "{err}");
    let no_timeout = sync_route_config("http://billing:9100", "")
        .replace(", timeout = \"500ms\"", "")
        .replace("{up}", "http://127.0.0.1:9");
    let cfg = prefer_gateway::config::load_str(&no_timeout, "t.toml").unwrap();
    let adm = cfg.routes[0].admission.as_ref().unwrap();
    assert_eq!(adm.timeout, Duration::from_secs(5), "the default timeout");
    assert_eq!(adm.url.as_str(), "http://billing:9100/admission");
}

#[tokio::test]
async fn checks_and_notices_are_counted_in_metrics() {
    use prometheus_parse::{Scrape, Value};
    let balance = Balance::start(1, vec![200]).await;
    let up = sync_upstream(Duration::ZERO).await;
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        sync_route_config(&balance.up.url(), "")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    job_id(submit(&gw, "{}", "respond-async").await).await;
    assert_eq!(submit(&gw, "{}", "respond-async").await.status(), 402);
    assert_eq!(balance.wait_for("settle", 1).await.len(), 1);
    // The settle is counted right after its answer: give it a moment.
    let admin = gw.admin.unwrap();
    let read = |outcome: &'static str, name: &'static str| {
        let url = format!("http://{admin}/metrics");
        async move {
            let text = client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("outcome") == Some(outcome))
                .map_or(0.0, |s| match s.value {
                    Value::Counter(v) | Value::Untyped(v) => v,
                    _ => 0.0,
                })
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while read("delivered", "prefer_gateway_admission_notices_total").await < 1.0
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let checks = "prefer_gateway_admission_checks_total";
    assert!(read("admitted", checks).await >= 1.0);
    assert!(read("refused", checks).await >= 1.0);
    assert!(read("delivered", "prefer_gateway_admission_notices_total").await >= 1.0);
}
