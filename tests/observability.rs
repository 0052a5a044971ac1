//! What operators see: `/metrics` on the admin listener, scraped and parsed with a real
//! Prometheus text parser (`prometheus-parse`), and the one-line-per-request access log of
//! the real binary in `--log-format json`, checked for its fields and for secrets it must
//! not contain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

use support::process::GatewayProcess;
use support::{client, task_upstream, Gateway};

/// Routes named after this test file, so counters in the shared process-wide registry are
/// this test's own.
fn config() -> String {
    r#"
[server]
admin_listen = "127.0.0.1:0"

[defaults]
poll_interval = "100ms"

[jobs]
store = "memory"
tenant_header = "X-Api-Key"

[[routes]]
name = "obs-edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "{up}"

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
state = "/status"
succeeded = ["succeeded"]
failed = ["failed"]

[[routes]]
name = "obs-status"
kind = "proxy"
methods = ["GET"]
path = "/v1/tasks/{id}"
upstream = "{up}"
"#
    .to_string()
}

async fn scrape(gw: &Gateway) -> (String, Scrape) {
    let admin = gw.admin.unwrap();
    let resp = client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let parsed = Scrape::parse(lines).expect("the exposition parses");
    (ctype, parsed)
}

fn find<'s>(scrape: &'s Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'s Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v)) | Some(Value::Gauge(v)) | Some(Value::Untyped(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_requests_preferences_latency_polls_and_waiters() {
    let up = task_upstream(Duration::from_millis(300)).await;
    let gw = Gateway::start(&config(), &up.url()).await;
    let c = client();
    // 1 respond-async, 1 wait that finishes, 2 proxied status reads, 1 unmatched path.
    let accepted = c
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let waited = c
        .post(gw.url("/v1/edit"))
        .header("prefer", "wait=5")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(waited.status(), 200);
    for _ in 0..2 {
        let r = c.get(gw.url("/v1/tasks/t-1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(c.get(gw.url("/nope")).send().await.unwrap().status(), 404);

    let (ctype, m) = scrape(&gw).await;
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let requests = "prefer_gateway_requests_total";
    let edit = [("route", "obs-edit")];
    assert_eq!(
        counter(
            &m,
            requests,
            &[edit[0], ("status", "202"), ("preference", "respond-async")]
        ),
        1.0
    );
    assert_eq!(
        counter(
            &m,
            requests,
            &[edit[0], ("status", "200"), ("preference", "wait")]
        ),
        1.0
    );
    assert_eq!(
        counter(
            &m,
            requests,
            &[
                ("route", "obs-status"),
                ("status", "200"),
                ("preference", "none")
            ]
        ),
        2.0
    );
    assert!(counter(&m, requests, &[("route", "-"), ("status", "404")]) >= 1.0);

    // Histograms: request latency per route, and the upstream calls behind them.
    for name in [
        "prefer_gateway_request_duration_seconds",
        "prefer_gateway_upstream_duration_seconds",
    ] {
        let h = find(&m, name, &[("route", "obs-status")]).unwrap_or_else(|| panic!("{name}"));
        match &h.value {
            Value::Histogram(buckets) => {
                let inf = buckets.last().unwrap();
                assert!(inf.count >= 2.0, "{name}: {buckets:?}");
            }
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    }
    // The wait polled until terminal; nothing is waiting now; the jobs metrics exist.
    assert!(counter(&m, "prefer_gateway_polls_total", &[("outcome", "terminal")]) >= 1.0);
    assert!(counter(&m, "prefer_gateway_polls_total", &[("outcome", "pending")]) >= 1.0);
    assert!(find(&m, "prefer_gateway_waiting_requests", &[]).is_some());
    assert!(m.docs.contains_key("prefer_gateway_store_errors"));
    assert!(m.docs.contains_key("prefer_gateway_webhook_attempts"));
    assert!(m.docs.contains_key("prefer_gateway_queue_depth"));
    gw.shutdown().await;
}

#[tokio::test]
async fn the_waiting_gauge_counts_requests_while_they_wait() {
    let up = task_upstream(Duration::from_secs(2)).await;
    let gw = Gateway::start(&config(), &up.url()).await;
    let url = gw.url("/v1/edit");
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                client()
                    .post(url)
                    .header("prefer", "wait=10")
                    .body("{}")
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, during) = scrape(&gw).await;
    // Other tests in this process may wait too: at least our 3.
    assert!(counter(&during, "prefer_gateway_waiting_requests", &[]) >= 3.0);
    for w in waiters {
        assert_eq!(w.await.unwrap(), 200);
    }
    // Once they are answered the gauge drops by them again (others may still wait: the
    // gauge is process-wide, so only "not more than before plus nothing of ours" holds).
    let (_, after) = scrape(&gw).await;
    let now = counter(&after, "prefer_gateway_waiting_requests", &[]);
    assert!(now <= counter(&during, "prefer_gateway_waiting_requests", &[]) - 3.0 + 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn one_json_access_line_per_request_without_secrets() {
    let up = task_upstream(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let cfg = config()
        .replace("{up}", &up.url())
        .replace("admin_listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(&path, cfg).unwrap();
    let gw = GatewayProcess::start_with(&path, &["--log-format", "json"]);
    let resp = client()
        .post(gw.url("/v1/edit?token=SECRET-QUERY"))
        .header("prefer", "wait=5")
        .header("x-api-key", "sk_live_SECRET_KEY")
        .header("authorization", "Bearer SECRET-BEARER")
        .header("x-request-id", "obs-req-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let found = gw
            .lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("obs-req-1"))
            .cloned();
        if let Some(l) = found {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "no access line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let doc: serde_json::Value = serde_json::from_str(&line).unwrap();
    let f = &doc["fields"];
    assert_eq!(doc["level"], "INFO");
    assert_eq!(doc["target"], "prefer_gateway::access");
    assert_eq!(f["request_id"], "obs-req-1");
    assert_eq!(f["route"], "obs-edit");
    assert_eq!(f["method"], "POST");
    assert_eq!(f["path"], "/v1/edit");
    assert_eq!(f["status"], 200);
    assert_eq!(f["preference"], "wait");
    assert_eq!(f["wait_s"], 5);
    assert!(f["upstream_ms"].as_f64().unwrap() >= 0.0);
    assert!(f["elapsed_ms"].as_f64().unwrap() >= 150.0, "{f}");
    let tenant = f["tenant"].as_str().unwrap();
    assert!(tenant.starts_with("sha256:"), "{tenant}");
    // No secret anywhere in everything the process logged.
    let all = gw.lines.lock().unwrap().join("\n");
    for secret in ["SECRET-QUERY", "sk_live_SECRET_KEY", "SECRET-BEARER"] {
        assert!(!all.contains(secret), "{secret} was logged");
    }
}
