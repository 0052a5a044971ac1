//! Live job status over Server-Sent Events (issue 17, bullet 4), black-box over real
//! sockets with real stores: `GET /jobs/{id}` with `Accept: text/event-stream`.
//!
//! Here: the events of a job from pending to its end (ids, order, data = the status
//! document, the stream closed after the terminal event), a finished job, `Last-Event-ID`,
//! heartbeats, and errors that stay problems. Beside it, one module per concern:
//! `clients` (HTTP/2, requests-sse's `EventSource`, a client that leaves, drain),
//! `replicas` (two gateway processes on one `redis-server`) and `watch` (a task route's
//! watched operation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "sse/clients.rs"]
mod clients;
#[path = "sse/replicas.rs"]
mod replicas;
#[path = "sse/watch.rs"]
mod watch;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{client, sync_config, sync_upstream, Gateway};

/// Longest a whole stream may take in these tests: every job here ends within seconds.
pub const STREAM_LIMIT: Duration = Duration::from_secs(30);

/// One `status` event as received.
#[derive(Debug, Clone)]
pub struct Event {
    /// The `id:` field.
    pub id: u64,
    /// The `event:` field.
    pub event: String,
    /// The `data:` field, parsed.
    pub data: Value,
}

impl Event {
    /// The job's status in the event's document.
    pub fn status(&self) -> &str {
        self.data["status"].as_str().unwrap()
    }
}

/// A stream's text as events (each checked to be well-formed: one `id`, one `event`, one
/// `data` line of JSON) and the number of `: heartbeat` comments between them.
pub fn parse(text: &str) -> (Vec<Event>, usize) {
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "every block ends with a blank line: {text:?}"
    );
    let (mut events, mut beats) = (Vec::new(), 0);
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        if block == ": heartbeat" {
            beats += 1;
            continue;
        }
        let field = |name: &str| {
            let values: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .collect();
            assert_eq!(values.len(), 1, "one {name} line in {block:?}");
            values[0].to_owned()
        };
        assert_eq!(block.lines().count(), 3, "id, event, data: {block:?}");
        events.push(Event {
            id: field("id").parse().unwrap(),
            event: field("event"),
            data: serde_json::from_str(&field("data")).unwrap(),
        });
    }
    (events, beats)
}

/// Ids only ever increase; every event is a `status` event about job `id`.
pub fn check_sequence(events: &[Event], id: &str) {
    assert!(!events.is_empty(), "no events");
    for pair in events.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids increase: {events:#?}");
    }
    for e in events {
        assert_eq!(e.event, "status");
        assert_eq!(e.data["id"], id);
    }
}

/// Opens the stream of `url` with `headers` on `http`.
pub async fn open(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http.get(url).header("accept", "text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// The whole stream: returns once the gateway closes it.
pub async fn read_to_end(resp: reqwest::Response) -> String {
    tokio::time::timeout(STREAM_LIMIT, resp.text())
        .await
        .expect("the stream was not closed")
        .unwrap()
}

/// Submits `body` to `/v1/render` with `Prefer: respond-async`; the job id.
pub async fn submit(base: &str, body: &str, headers: &[(&str, &str)]) -> String {
    let mut req = client()
        .post(format!("{base}/v1/render"))
        .header("prefer", "respond-async")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The plain status document of `url` once the job is terminal (long-polled).
pub async fn finished_doc(url: &str, headers: &[(&str, &str)]) -> Value {
    let t = Instant::now();
    loop {
        let mut req = client().get(url).header("prefer", "wait=5");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let doc: Value = req.send().await.unwrap().json().await.unwrap();
        if ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap()) {
            return doc;
        }
        assert!(t.elapsed() < STREAM_LIMIT, "not terminal: {doc}");
    }
}

#[tokio::test]
async fn a_queued_job_streams_pending_running_succeeded_and_the_stream_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("jobs.db").display());
    let up = sync_upstream(Duration::from_millis(1500)).await;
    let cfg = sync_config(&store, "", "max_in_flight = 1");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let base = gw.url("");
    // One slot: the first job runs, the second waits as pending while the first runs.
    let _first = submit(&base, r#"{"n":1}"#, &[]).await;
    let id = submit(&base, r#"{"n":2}"#, &[]).await;
    let url = gw.url(&format!("/jobs/{id}"));
    let http = client();
    let (resp, resumed) = tokio::join!(
        open(&http, &url, &[]),
        open(&http, &url, &[("last-event-id", "1")])
    );
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["vary"], "Prefer, Accept");
    assert!(h.get("content-length").is_none());
    let (text, resumed) = tokio::join!(read_to_end(resp), read_to_end(resumed));
    let (events, _) = parse(&text);
    check_sequence(&events, &id);
    let states: Vec<&str> = events.iter().map(Event::status).collect();
    assert_eq!(states, ["pending", "running", "succeeded"], "{text}");
    // Ids are derived from the state: 1 pending, 2 running (first attempt), 4 finished.
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 4]);
    // The data is the status document exactly as the plain GET answers it.
    let plain = finished_doc(&url, &[]).await;
    assert_eq!(events[2].data, plain);
    assert_eq!(events[0].data["status_url"], url);
    assert_eq!(events[0].data["expires_at"], Value::Null);
    // Resumed after event 1: the same stream without the pending event.
    let (resumed, _) = parse(&resumed);
    let ids: Vec<u64> = resumed.iter().map(|e| e.id).collect();
    assert_eq!(ids, [2, 4], "{resumed:#?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_finished_job_is_one_event_and_a_resume_past_it_answers_204() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let id = submit(&gw.url(""), r#"{"n":1}"#, &[]).await;
    let url = gw.url(&format!("/jobs/{id}"));
    let plain = finished_doc(&url, &[]).await;
    let http = client();
    for last in [None, Some("2"), Some("3"), Some("not-a-number")] {
        let headers: Vec<(&str, &str)> = last.map(|l| ("last-event-id", l)).into_iter().collect();
        let resp = open(&http, &url, &headers).await;
        assert_eq!(resp.status(), 200, "Last-Event-ID {last:?}");
        let (events, _) = parse(&read_to_end(resp).await);
        assert_eq!(events.len(), 1, "Last-Event-ID {last:?}: {events:#?}");
        assert_eq!(events[0].id, 4);
        assert_eq!(events[0].data, plain);
    }
    // The client has the last event: 204 tells an EventSource to stop reconnecting.
    for last in ["4", "99"] {
        let resp = open(&http, &url, &[("last-event-id", last)]).await;
        assert_eq!(resp.status(), 204);
        assert!(resp.headers().get("content-type").is_none());
        assert_eq!(resp.text().await.unwrap(), "");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn a_quiet_stream_gets_heartbeats() {
    let up = sync_upstream(Duration::from_millis(1200)).await;
    let cfg = sync_config("memory", r#"sse_heartbeat = "100ms""#, "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let id = submit(&gw.url(""), "{}", &[]).await;
    let resp = open(&client(), &gw.url(&format!("/jobs/{id}")), &[]).await;
    let text = read_to_end(resp).await;
    let (events, beats) = parse(&text);
    check_sequence(&events, &id);
    assert_eq!(events.last().unwrap().status(), "succeeded");
    // The run lasts over a second: many times the heartbeat interval.
    assert!(beats >= 2, "heartbeats: {text}");
    let between = text.split("\n\n").position(|b| b == ": heartbeat").unwrap();
    assert!(between > 0, "a heartbeat follows the first event: {text}");
    gw.shutdown().await;
}

#[tokio::test]
async fn errors_are_the_plain_gets_problems_and_other_accepts_get_the_document() {
    let up = sync_upstream(Duration::ZERO).await;
    let jobs = "tenant_header = \"X-Api-Key\"\nretention = \"1s\"";
    let gw = Gateway::start(&sync_config("memory", jobs, ""), &up.url()).await;
    let mine = [("x-api-key", "a")];
    let id = submit(&gw.url(""), "{}", &mine).await;
    let url = gw.url(&format!("/jobs/{id}"));
    let http = client();
    let problem = |resp: &reqwest::Response, status: u16| {
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    };
    // Unknown id and another tenant's job: the plain GET's 404, byte for byte.
    let plain_404 = client()
        .get(gw.url("/jobs/nope"))
        .header("x-api-key", "a")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (path, tenant) in [("/jobs/nope", "a"), (url.as_str(), "b")] {
        let resp = open(&http, &gw.url(path), &[("x-api-key", tenant)]).await;
        problem(&resp, 404);
        assert_eq!(resp.text().await.unwrap(), plain_404);
    }
    let resp = open(&http, &url, &[]).await;
    problem(&resp, 401);
    // Any other Accept, and HEAD, get the JSON document.
    for accept in ["*/*", "application/json", "text/event-stream;q=0"] {
        let resp = http
            .get(&url)
            .header("accept", accept)
            .header("x-api-key", "a")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["vary"], "Prefer, Accept");
    }
    let head = http
        .head(&url)
        .header("accept", "text/event-stream")
        .header("x-api-key", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["content-type"], "application/json");
    // Past retention: 410, as the plain GET.
    finished_doc(&url, &mine).await;
    let t = Instant::now();
    loop {
        let resp = open(&http, &url, &mine).await;
        if resp.status() == 410 {
            problem(&resp, 410);
            break;
        }
        assert!(t.elapsed() < STREAM_LIMIT, "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.shutdown().await;
}
