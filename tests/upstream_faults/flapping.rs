//! A task route whose status URL flaps (behaviour §4.5: one failed poll is retried at the
//! next tick; §4.7: one poll per operation per interval).
//!
//! Each poll, at random (reproducibly, from the task id and the poll's number): `500`, a
//! hang past the poll timeout (`upstream_timeout`, 3 s: 350 submits at once on a slow
//! shared machine must not be what times out), a close without an answer, or the truth —
//! `running`, then `succeeded` once the task's time has come. 300 `wait=N` clients and 50
//! without `Prefer`, all at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::support::{client, Gateway};
use super::{call, config, read_request, response, send, task_route, RawUpstream, Rng, Tally};

/// How long after its submit a task succeeds.
const FINISH_AFTER: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(200);

/// What the upstream saw of one task.
#[derive(Debug, Default)]
struct TaskLog {
    submitted: Option<Instant>,
    polls: Vec<Instant>,
}

#[derive(Debug, Default)]
struct Seen {
    tasks: HashMap<String, TaskLog>,
    next: u64,
    /// Faults injected, by kind.
    faults: HashMap<&'static str, usize>,
}

async fn flapping_upstream(seen: Arc<Mutex<Seen>>) -> RawUpstream {
    RawUpstream::start(move |mut s: TcpStream| {
        let seen = Arc::clone(&seen);
        async move {
            let mut buf = Vec::new();
            while let Some(req) = read_request(&mut s, &mut buf).await {
                if req.method == "POST" {
                    let id = {
                        let mut seen = seen.lock().unwrap();
                        seen.next += 1;
                        let id = format!("t-{}", seen.next);
                        seen.tasks.entry(id.clone()).or_default().submitted = Some(Instant::now());
                        id
                    };
                    let body = format!(r#"{{"taskId":"{id}","status":"pending"}}"#);
                    if !send(&mut s, &response(202, &body)).await {
                        return;
                    }
                    continue;
                }
                let id = req.target.rsplit('/').next().unwrap_or("").to_owned();
                let (fault, done) = {
                    let mut seen = seen.lock().unwrap();
                    let log = seen.tasks.entry(id.clone()).or_default();
                    log.polls.push(Instant::now());
                    let n: u64 = id.trim_start_matches("t-").parse().unwrap_or(0);
                    let mut rng = Rng::new(n * 1000 + log.polls.len() as u64);
                    let done = log.submitted.is_some_and(|t| t.elapsed() >= FINISH_AFTER);
                    let fault = match rng.below(100) {
                        0..=24 => Some("500"),
                        25..=34 => Some("hang"),
                        35..=49 => Some("close"),
                        _ => None,
                    };
                    if let Some(f) = fault {
                        *seen.faults.entry(f).or_default() += 1;
                    }
                    (fault, done)
                };
                let state = if done { "succeeded" } else { "running" };
                let ok = match fault {
                    Some("500") => send(&mut s, &response(500, r#"{"error":"flap"}"#)).await,
                    Some("hang") => {
                        super::hold(&mut s, Duration::from_secs(30)).await;
                        return;
                    }
                    Some(_) => return, // closes without an answer
                    None => {
                        let body = format!(
                            r#"{{"taskId":"{id}","status":"{state}","result":{{"url":"u/{id}"}}}}"#
                        );
                        send(&mut s, &response(200, &body)).await
                    }
                };
                if !ok {
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_status_url_never_turns_into_a_5xx_for_300_waiters() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let up = flapping_upstream(Arc::clone(&seen)).await;
    let routes = task_route("edit", "/v1/edit", &up.url(), "sync_wait = \"12s\"");
    let cfg = config(
        "poll_interval = \"200ms\"\nupstream_timeout = \"3s\"",
        &routes,
    );
    let gw = Gateway::start(&cfg, "").await;
    let http = client();
    let started = Instant::now();
    let clients: Vec<_> = (0..350)
        .map(|i| {
            // 250 wait long enough to see the end, 50 give up before it, 50 send no Prefer.
            let prefer = match i % 7 {
                0 => Some("wait=1"),
                1 => None,
                _ => Some("wait=12"),
            };
            let req = http.post(gw.url("/v1/edit")).body("{}");
            let req = match prefer {
                Some(p) => req.header("prefer", p),
                None => req,
            };
            tokio::spawn(async move {
                let t = Instant::now();
                (prefer, call(req).await, t.elapsed())
            })
        })
        .collect();
    let mut tally = Tally::default();
    let mut finished = 0;
    for c in clients {
        let (prefer, answer, took) = c.await.unwrap();
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tally.lost.push(format!("{prefer:?}: {e}"));
                continue;
            }
        };
        let key = answer.key();
        tally.add(format!("{key} ({})", prefer.unwrap_or("no Prefer")));
        let doc = answer.json();
        match answer.status {
            200 => {
                assert_eq!(doc["status"], "succeeded", "{doc}");
                assert!(doc["result"]["url"].is_string(), "{doc}");
                finished += 1;
            }
            // The deadline came first: the upstream's own 202 (the operation is not lost).
            202 => {
                assert!(doc["taskId"].as_str().is_some_and(|t| t.starts_with("t-")));
                let n = if prefer == Some("wait=1") { 1 } else { 12 };
                assert!(
                    took >= Duration::from_millis(n * 1000 - 100),
                    "a 202 after {took:?} with {prefer:?}"
                );
            }
            _ => {}
        }
    }
    let took = started.elapsed();
    tally.assert_only(
        "flapping status URL",
        &[
            "200 (wait=12)",
            "202 (wait=12)",
            "202 (wait=1)",
            "200 (no Prefer)",
            "202 (no Prefer)",
        ],
    );
    assert_eq!(tally.total(), 350);
    // With ~45% of polls failing, a 12 s window after a 2 s task still sees the end.
    assert!(
        finished >= 290,
        "only {finished} of 300 long waits saw the result"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.tasks.len(),
        350,
        "one submit per client, none repeated"
    );
    for kind in ["500", "hang", "close"] {
        let n = seen.faults.get(kind).copied().unwrap_or(0);
        assert!(n >= 20, "only {n} '{kind}' faults were injected");
    }
    // One poll per interval (§4.7) — two when a poll's connection was closed under it and
    // the GET was retried once on a fresh one — over the time the task was waited on.
    let (mut polls, mut worst) = (0, 0.0f64);
    for (id, log) in &seen.tasks {
        let (Some(t0), Some(last)) = (log.submitted, log.polls.last()) else {
            continue;
        };
        let ticks = (last.duration_since(t0).as_secs_f64() / INTERVAL.as_secs_f64()).ceil();
        let n = log.polls.len();
        assert!(
            n as f64 <= 2.0 * ticks + 2.0,
            "{id}: {n} polls in {ticks} intervals"
        );
        worst = worst.max(n as f64 / ticks.max(1.0));
        polls += n;
    }
    eprintln!(
        "flapping: 350 clients answered in {took:?}; {polls} polls, faults {:?}, \
         at most {worst:.2} polls per interval for one task; {} upstream connections",
        seen.faults,
        up.accepted()
    );
}
