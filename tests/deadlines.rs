//! Deadlines on `sync` routes, black-box over real sockets (issue 17, bullet 1): a job
//! still queued at its `Cancel-After` is never sent; a running job's upstream call is cut
//! at `max_run_time` (or `Cancel-After`) — the upstream sees its connection close; both
//! end `canceled` with `error.code = "deadline_exceeded"`; a malformed `Cancel-After` is a
//! `400` problem and nothing is sent; a deadline cancel releases the admission
//! reservation and delivers the callback. Task routes (the watch, `task.cancel`) are in
//! `deadlines/task.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "deadlines/task.rs"]
mod task;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, sync_config, sync_upstream, Gateway};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

async fn submit(gw: &Gateway, body: &str, cancel_after: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("content-type", "application/json")
        .header("prefer", "respond-async")
        .body(body.to_owned());
    if let Some(v) = cancel_after {
        req = req.header("cancel-after", v);
    }
    req.send().await.unwrap()
}

/// Submits and returns the job's status URL.
async fn job(gw: &Gateway, body: &str, cancel_after: Option<&str>) -> String {
    let resp = submit(gw, body, cancel_after).await;
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    doc["status_url"].as_str().unwrap().to_owned()
}

/// Polls `url` until the job is terminal (generous bound: the machine may be busy).
async fn until_terminal(url: &str) -> Value {
    let t = Instant::now();
    loop {
        let doc: Value = client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap_or("")) {
            return doc;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never finished: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_deadline_exceeded(doc: &Value) {
    assert_eq!(doc["status"], "canceled", "{doc}");
    assert_eq!(doc["error"]["code"], "deadline_exceeded", "{doc}");
}

/// An upstream that reads each request head and never answers, counting requests and
/// noting when the gateway closes a connection (a read returns end of stream).
struct Holding {
    url: String,
    requests: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

async fn holding_upstream() -> Holding {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicBool::new(false));
    let (r, c) = (Arc::clone(&requests), Arc::clone(&closed));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (r, c) = (Arc::clone(&r), Arc::clone(&c));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut counted = false;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => {
                            c.store(true, Ordering::SeqCst);
                            return;
                        }
                        Ok(_) if !counted => {
                            counted = true;
                            r.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    Holding {
        url,
        requests,
        closed,
    }
}

/// Waits (bounded) until the holding upstream saw its connection closed.
async fn until_closed(up: &Holding) {
    let t = Instant::now();
    while !up.closed.load(Ordering::SeqCst) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the upstream call was never cut"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_job_past_cancel_after_is_never_sent() {
    let up = sync_upstream(Duration::from_secs(3)).await;
    let cfg = sync_config("memory", "", "max_in_flight = 1");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let ahead = job(&gw, r#"{"n":"ahead"}"#, None).await;
    let late = job(&gw, r#"{"n":"late"}"#, Some("1")).await;
    let doc = until_terminal(&late).await;
    assert_deadline_exceeded(&doc);
    // The status document echoes the client's deadline: one second after acceptance.
    let at = |k: &str| humantime::parse_rfc3339(doc[k].as_str().unwrap()).unwrap();
    let after = at("deadline").duration_since(at("created_at")).unwrap();
    assert_eq!(after, Duration::from_secs(1), "{doc}");
    // The job ahead finishes normally; the canceled one never reaches the upstream.
    assert_eq!(until_terminal(&ahead).await["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: Vec<String> = up
        .seen()
        .iter()
        .map(|s| String::from_utf8_lossy(&s.body).into_owned())
        .collect();
    assert_eq!(bodies, vec![r#"{"n":"ahead"}"#.to_owned()]);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_past_max_run_time_is_cut() {
    let up = holding_upstream().await;
    let cfg = sync_config("memory", "", r#"max_run_time = "500ms""#);
    let gw = Gateway::start(&cfg, &up.url).await;
    let url = job(&gw, r#"{"n":1}"#, None).await;
    let doc = until_terminal(&url).await;
    assert_deadline_exceeded(&doc);
    until_closed(&up).await;
    assert_eq!(up.requests.load(Ordering::SeqCst), 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_past_cancel_after_is_cut() {
    let up = holding_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("jobs.db").display());
    let gw = Gateway::start(&sync_config(&store, "", ""), &up.url).await;
    let url = job(&gw, r#"{"n":1}"#, Some("1s")).await;
    let doc = until_terminal(&url).await;
    assert_deadline_exceeded(&doc);
    until_closed(&up).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_cancel_after_is_a_400_and_nothing_is_sent() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    for bad in ["soon", "0", "-1", "1.5", "8d", "30 s x"] {
        let resp = submit(&gw, r#"{"n":1}"#, Some(bad)).await;
        let doc = support::wire::assert_problem(resp, 400, "invalid-cancel-after").await;
        assert!(
            doc["detail"].as_str().unwrap().contains("Cancel-After"),
            "{doc}"
        );
    }
    assert!(up.seen().is_empty());
    // Every documented form is accepted; the job runs well within its deadline.
    for good in ["30", "30s", "5m", "1h"] {
        let url = job(&gw, r#"{"n":2}"#, Some(good)).await;
        assert_eq!(until_terminal(&url).await["status"], "succeeded");
    }
    gw.shutdown().await;
}

/// `max_queue_time` / `max_run_time`: durations as elsewhere in the config; zero and proxy
/// routes are refused rather than ignored.
#[test]
fn route_limits_load_and_bad_ones_are_refused() {
    use prefer_gateway::config::load_str;
    let route = |kind: &str, extra: &str| {
        format!(
            "[[routes]]\nname = \"r\"\nkind = \"{kind}\"\nmethods = [\"POST\"]\npath = \"/r\"\n\
             upstream = \"http://127.0.0.1:9000\"\n{extra}"
        )
    };
    let ok = route("sync", "max_queue_time = \"10m\"\nmax_run_time = \"90s\"");
    let cfg = load_str(&ok, "t.toml").unwrap();
    let r = &cfg.routes[0];
    assert_eq!(r.max_queue_time, Some(Duration::from_secs(600)));
    assert_eq!(r.max_run_time, Some(Duration::from_secs(90)));
    let none = load_str(&route("sync", ""), "t.toml").unwrap();
    assert_eq!(
        (none.routes[0].max_queue_time, none.routes[0].max_run_time),
        (None, None)
    );
    for (kind, extra, key) in [
        ("sync", "max_run_time = \"0s\"", "max_run_time"),
        ("sync", "max_queue_time = \"soon\"", "max_queue_time"),
        ("proxy", "max_queue_time = \"1m\"", "max_queue_time"),
    ] {
        let err = load_str(&route(kind, extra), "t.toml").expect_err(extra);
        assert!(err.key().ends_with(key), "{err}");
    }
}

/// A deadline cancel is a cancel: the admission reservation is released (status
/// `canceled`) and the callback is delivered, carrying `deadline_exceeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_cancel_releases_the_reservation_and_calls_back() {
    use support::{reply, Seen, Upstream};
    // One recorder plays the admission endpoint (`/admission`) and the callback receiver.
    let hooks = Upstream::start(|s: Seen| async move {
        let reserve = s.body.windows(7).any(|w| w == b"reserve");
        if reserve {
            reply(200, r#"{"reservation":"r-1"}"#, &[])
        } else {
            reply(200, "{}", &[])
        }
    })
    .await;
    let up = holding_upstream().await;
    let cfg = format!(
        r#"
[jobs]
store = "memory"

[webhooks]
signing_secret = "0123456789abcdef0123456789abcdef"
retry_schedule = ["0s", "100ms"]
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
admission = {{ url = "{}/admission", timeout = "2s" }}
max_run_time = "300ms"
"#,
        hooks.url()
    );
    let gw = Gateway::start(&cfg, &up.url).await;
    let body = format!(r#"{{"callback_url":"{}/h"}}"#, hooks.url());
    let url = job(&gw, &body, None).await;
    let doc = until_terminal(&url).await;
    assert_deadline_exceeded(&doc);
    let t = Instant::now();
    let (release, callback) = loop {
        let seen = hooks.seen();
        let text = |s: &Seen| String::from_utf8_lossy(&s.body).into_owned();
        let release = seen
            .iter()
            .filter(|s| s.uri.starts_with("/admission"))
            .map(text)
            .find(|b| b.contains("release"));
        let callback = seen
            .iter()
            .filter(|s| s.uri.starts_with("/h"))
            .map(text)
            .next();
        if let (Some(r), Some(c)) = (&release, &callback) {
            break (r.clone(), c.clone());
        }
        assert!(t.elapsed() < Duration::from_secs(30), "seen: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let release: Value = serde_json::from_str(&release).unwrap();
    assert_eq!(release["status"], "canceled", "{release}");
    assert_eq!(release["reservation"], "r-1", "{release}");
    assert!(callback.contains("deadline_exceeded"), "{callback}");
    gw.shutdown().await;
}
