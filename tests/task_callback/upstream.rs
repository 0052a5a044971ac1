//! The fake callback-capable task API the task-callback tests drive, and their config.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::support::{client, reply, Seen, Upstream};

/// Where the fake upstream finds the gateway's URL in a submit.
#[derive(Clone, Copy)]
pub enum Via {
    /// The body's `/webhook_url` (or `/hook/url`).
    Json,
    /// `X-Callback-Url`.
    Header,
}

/// What the fake upstream did with its callbacks.
#[derive(Default)]
pub struct Calls {
    /// The callback URLs it was given, in submit order.
    pub urls: Vec<String>,
    /// The gateway's answers to its callback `POST`s: (status, body).
    pub answers: Vec<(u16, String)>,
}

/// How the fake upstream behaves.
#[derive(Clone)]
pub struct Plan {
    /// Where the callback URL is read from.
    pub from: Via,
    /// Call back this long after the submit; `None`: never.
    pub call_back_after: Option<Duration>,
    /// The status URL says `succeeded` this long after the submit.
    pub finish_after: Duration,
    /// Replace `http://host:port` of the callback URL with this base (another replica).
    pub rewrite_base: Option<String>,
    /// Hold the submit's `202` this long (after the callback was scheduled).
    pub answer_after: Duration,
}

/// A callback-capable task API: `POST /v1/edit` → `202 {"taskId":"t-N"}`, then (per
/// `plan`) a `POST` of `{"taskId","status":"succeeded","result"}` to the URL it was given;
/// `GET /v1/tasks/t-N` → running until `finish_after`, then succeeded.
pub async fn callback_upstream(plan: Plan) -> (Upstream, Arc<Mutex<Calls>>) {
    let calls: Arc<Mutex<Calls>> = Arc::default();
    let started: Arc<Mutex<std::collections::HashMap<String, std::time::Instant>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let log = Arc::clone(&calls);
    let up = Upstream::start(move |s: Seen| {
        let (calls, started, next, plan) = (
            Arc::clone(&log),
            Arc::clone(&started),
            Arc::clone(&next),
            plan.clone(),
        );
        async move {
            if s.method == "POST" {
                let id = format!("t-{}", next.fetch_add(1, Ordering::SeqCst) + 1);
                started
                    .lock()
                    .unwrap()
                    .insert(id.clone(), std::time::Instant::now());
                let url = match plan.from {
                    Via::Json => serde_json::from_slice::<Value>(&s.body)
                        .ok()
                        .and_then(|v| v["webhook_url"].as_str().map(str::to_owned)),
                    Via::Header => s
                        .headers
                        .get("x-callback-url")
                        .map(|v| v.to_str().unwrap().to_owned()),
                };
                if let Some(url) = url {
                    calls.lock().unwrap().urls.push(url.clone());
                    if let Some(after) = plan.call_back_after {
                        let url = match &plan.rewrite_base {
                            Some(base) => rebase(&url, base),
                            None => url,
                        };
                        let body = done(&id);
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            let answer = post(&url, &body).await;
                            calls.lock().unwrap().answers.push(answer);
                        });
                    }
                }
                tokio::time::sleep(plan.answer_after).await;
                return reply(
                    202,
                    &format!(r#"{{"taskId":"{id}","status":"pending"}}"#),
                    &[],
                );
            }
            let id = s.uri.rsplit('/').next().unwrap_or("").to_owned();
            let at = started.lock().unwrap().get(&id).copied();
            match at {
                None => reply(404, r#"{"error":"unknown"}"#, &[]),
                Some(at) if at.elapsed() < plan.finish_after => reply(
                    200,
                    &format!(r#"{{"taskId":"{id}","status":"running"}}"#),
                    &[],
                ),
                Some(_) => reply(200, &done(&id), &[]),
            }
        }
    })
    .await;
    (up, calls)
}

/// The final status document of operation `id`.
pub fn done(id: &str) -> String {
    format!(r#"{{"taskId":"{id}","status":"succeeded","result":{{"url":"u/{id}"}}}}"#)
}

/// `url` with its scheme and authority replaced by `base`.
fn rebase(url: &str, base: &str) -> String {
    let rest = url.splitn(4, '/').nth(3).unwrap_or("");
    format!("{base}/{rest}")
}

/// POSTs `body` as JSON; the answer's status and body.
pub async fn post(url: &str, body: &str) -> (u16, String) {
    let resp = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A task route `/v1/edit` with `task.callback` and a memory / SQLite store.
pub fn config(store: &str, callback: &str, fallback: &str, extra: &str) -> String {
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"
tenant_header = "X-Api-Key"

[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "{{up}}"
{extra}

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{{id}}"
callback = {callback}
fallback_poll_interval = "{fallback}"
"#
    )
}

/// The gateway's answer to the upstream's first callback, once the upstream has it (a
/// waiting client may be answered before the upstream reads the answer to its `POST`).
pub async fn first_answer(calls: &Arc<Mutex<Calls>>) -> (u16, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(a) = calls.lock().unwrap().answers.first() {
            return a.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the callback got no answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
