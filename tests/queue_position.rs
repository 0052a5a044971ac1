//! Queue position and an honest `Retry-After` (issue 17, bullet 3), black-box over real
//! sockets: a route running one job at a time in front of an upstream the test holds
//! (each request waits for a permit the test hands out), so which job runs and which wait
//! is decided by the test, not by timing.
//!
//! Here, on an in-process gateway with the SQLite store: positions 1..n in submit order
//! across tenants, the shift when the running job finishes, no position once running or
//! finished, the same position in `GET {id}/result`'s `202` and in a live status event,
//! and `Retry-After`: `1` before the route has a run time, then derived from it — at least
//! the held run time, growing with the position, and on the `202` of a new submit. In
//! `queue_position/replicas.rs`: two gateway processes on one `redis-server` report the same
//! position for a job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "queue_position/replicas.rs"]
mod replicas;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, reply, Gateway, Seen, Upstream};
use tokio::sync::Semaphore;

/// How long the test holds the first run: the route's run time is then at least this.
pub const HELD: Duration = Duration::from_millis(1500);

/// Longest any state change here may take to show.
pub const LIMIT: Duration = Duration::from_secs(30);

/// An upstream whose every request waits for a permit of `gate`, then answers 200.
pub async fn gated_upstream(gate: Arc<Semaphore>) -> Upstream {
    Upstream::start(move |_s: Seen| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            reply(200, r#"{"done":true}"#, &[])
        }
    })
    .await
}

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"
[jobs]
store = "sqlite:{}"
tenant_header = "X-Api-Key"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
max_in_flight = 1
"#,
        dir.join("jobs.db").display()
    )
}

/// A status read: the document and its `Retry-After`, if any.
pub struct Status {
    /// The JSON body.
    pub doc: Value,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Status {
    /// The job's status.
    pub fn status(&self) -> &str {
        self.doc["status"].as_str().unwrap()
    }

    /// Its `queue_position`, when the document has one.
    pub fn position(&self) -> Option<u64> {
        self.doc.get("queue_position").map(|p| p.as_u64().unwrap())
    }
}

/// Reads `url` (a status or result URL) as `tenant`.
pub async fn read(url: &str, tenant: &str) -> (u16, Status) {
    let resp = client()
        .get(url)
        .header("x-api-key", tenant)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let doc = resp.json().await.unwrap();
    (code, Status { doc, retry_after })
}

/// Submits one job as `tenant`: its status URL and the `202`'s `Retry-After`.
async fn submit(gw: &Gateway, tenant: &str) -> (String, u64) {
    let resp = client()
        .post(gw.url("/v1/render"))
        .header("prefer", "respond-async")
        .header("x-api-key", tenant)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let retry_after = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let doc: Value = resp.json().await.unwrap();
    // Jobs are queued by creation time: a few ms apart, the submit order is the order.
    tokio::time::sleep(Duration::from_millis(5)).await;
    (doc["status_url"].as_str().unwrap().to_owned(), retry_after)
}

/// Reads `url` until its status is `want`.
pub async fn until(url: &str, tenant: &str, want: &str) -> Status {
    let t = Instant::now();
    loop {
        let (_, s) = read(url, tenant).await;
        if s.status() == want {
            return s;
        }
        assert!(t.elapsed() < LIMIT, "{url} never {want}: {}", s.doc);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first event of the live status stream of `url`.
async fn first_event(url: &str, tenant: &str) -> Value {
    let mut resp = client()
        .get(url)
        .header("x-api-key", tenant)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = resp
            .chunk()
            .await
            .unwrap()
            .expect("an event before the end");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    serde_json::from_str(data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_shift_as_jobs_run_and_retry_after_follows_the_run_time() {
    let gate = Arc::new(Semaphore::new(0));
    let up = gated_upstream(Arc::clone(&gate)).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(dir.path()), &up.url()).await;

    // Two tenants share the route's queue: b's job is ahead of a's last two.
    let mut jobs = Vec::new();
    for tenant in ["a", "b", "a", "a"] {
        let (url, retry_after) = submit(&gw, tenant).await;
        assert_eq!(retry_after, 1, "no run time known yet: the default");
        jobs.push((url, tenant));
    }
    let first = until(&jobs[0].0, "a", "running").await;
    assert_eq!(first.position(), None, "running: no position");
    assert_eq!(first.retry_after, Some(1));
    for (n, (url, tenant)) in jobs.iter().enumerate().skip(1) {
        let (code, s) = read(url, tenant).await;
        assert_eq!((code, s.status()), (200, "pending"), "{}", s.doc);
        assert_eq!(s.position(), Some(n as u64), "job {n}: {}", s.doc);
        assert_eq!(s.retry_after, Some(1), "no run time known yet");
    }
    // The position is the job's own: another tenant's job is still not visible.
    let (code, _) = read(&jobs[1].0, "a").await;
    assert_eq!(code, 404);

    // The first run takes at least HELD; then the queue moves up by one.
    tokio::time::sleep(HELD).await;
    gate.add_permits(1);
    let done = until(&jobs[0].0, "a", "succeeded").await;
    assert_eq!((done.position(), done.retry_after), (None, None));
    let second = until(&jobs[1].0, "b", "running").await;
    assert_eq!(second.position(), None);
    assert!(second.retry_after.unwrap() >= 1, "{:?}", second.retry_after);

    let (_, third) = read(&jobs[2].0, "a").await;
    let (_, fourth) = read(&jobs[3].0, "a").await;
    assert_eq!((third.position(), fourth.position()), (Some(1), Some(2)));
    // One run takes ≥ 1.5 s here: position 1 waits about one run, position 2 two.
    let (r3, r4) = (third.retry_after.unwrap(), fourth.retry_after.unwrap());
    assert!(r3 >= 2, "position 1 after a run of ≥ 1.5 s: {r3}");
    assert!(r4 > r3, "grows with the position: {r3} then {r4}");
    assert!(r4 <= 60, "capped: {r4}");

    // The result monitor and the live status show the same.
    let (code, pending) = read(&format!("{}/result", jobs[3].0), "a").await;
    assert_eq!(
        (code, pending.position()),
        (202, Some(2)),
        "{}",
        pending.doc
    );
    assert_eq!(pending.retry_after, Some(r4));
    let event = first_event(&jobs[3].0, "a").await;
    assert_eq!(
        (event["status"].as_str(), event["queue_position"].as_u64()),
        (Some("pending"), Some(2)),
        "{event}"
    );

    // A new submit's handle now carries the route's run time too.
    let (fifth, retry_after) = submit(&gw, "b").await;
    assert!(retry_after >= 2, "one run of ≥ 1.5 s: {retry_after}");
    let (_, s) = read(&fifth, "b").await;
    assert_eq!(s.position(), Some(3));

    gate.add_permits(10);
    for (url, tenant) in jobs.iter().chain([&(fifth, "b")]) {
        let s = until(url, tenant, "succeeded").await;
        assert_eq!((s.position(), s.retry_after), (None, None), "{}", s.doc);
    }
    gw.shutdown().await;
}
