//! The soak's open-loop load: one ticker per kind of work, each request its own task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Args, Hooks};

/// Answers so far: totals, and errors by kind (with the first detail seen).
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) ok: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) status_reads: AtomicU64,
    pub(crate) errors: Mutex<BTreeMap<String, (u64, String)>>,
    pub(crate) in_flight: AtomicU64,
}

impl Counts {
    fn error(&self, kind: String, detail: String) {
        if let Ok(mut e) = self.errors.lock() {
            let entry = e.entry(kind.clone()).or_insert((0, String::new()));
            if entry.0 == 0 {
                // Printed at once too: a run that is stopped early still says what went wrong.
                eprintln!("first error {kind:?}: {detail}");
                entry.1 = detail;
            }
            entry.0 += 1;
        }
    }

    /// Errors so far, all kinds.
    pub(crate) fn error_total(&self) -> u64 {
        self.errors
            .lock()
            .map(|e| e.values().map(|v| v.0).sum())
            .unwrap_or(0)
    }
}

/// Most requests in flight at once; past it a tick is counted as an error (the gateway
/// fell behind) rather than piling up tasks.
const MAX_IN_FLIGHT: u64 = 5_000;

/// Starts the tickers; setting the returned flag stops them.
pub(crate) fn start(
    args: &Args,
    client: &reqwest::Client,
    base: &str,
    hook_url: &str,
    counts: Arc<Counts>,
    hooks: Arc<Hooks>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let kinds = [
        (Kind::Proxy, args.proxy),
        (Kind::Waiter, args.waiters),
        (Kind::Job, args.jobs),
        (Kind::Sync, args.sync),
    ];
    for (kind, rate) in kinds {
        if rate == 0 {
            continue;
        }
        let (client, base, hook, counts, hooks, stop) = (
            client.clone(),
            base.to_owned(),
            hook_url.to_owned(),
            counts.clone(),
            hooks.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                tick.tick().await;
                n += 1;
                if counts.in_flight.load(Relaxed) >= MAX_IN_FLIGHT {
                    counts.error(format!("{kind:?}: in-flight cap"), String::new());
                    continue;
                }
                counts.in_flight.fetch_add(1, Relaxed);
                let (client, base, hook, counts, hooks) = (
                    client.clone(),
                    base.clone(),
                    hook.clone(),
                    counts.clone(),
                    hooks.clone(),
                );
                tokio::spawn(async move {
                    one(kind, n, &client, &base, &hook, &counts, &hooks).await;
                    counts.in_flight.fetch_sub(1, Relaxed);
                });
            }
        });
    }
    stop
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Proxy,
    Waiter,
    Job,
    Sync,
}

async fn one(
    kind: Kind,
    n: u64,
    client: &reqwest::Client,
    base: &str,
    hook: &str,
    counts: &Counts,
    hooks: &Hooks,
) {
    let req = match kind {
        Kind::Proxy => client.get(format!("{base}/items/{n}")),
        Kind::Waiter => client
            .post(format!("{base}/tasks"))
            .header("prefer", "wait=10")
            .body("{}"),
        Kind::Job => client
            .post(format!("{base}/render"))
            .header("prefer", "respond-async")
            .header("content-type", "application/json")
            .body(format!("{{\"n\":{n},\"callback_url\":\"{hook}\"}}")),
        Kind::Sync => client
            .post(format!("{base}/render"))
            .header("content-type", "application/json")
            .body("{}"),
    };
    let want = if matches!(kind, Kind::Job) { 202 } else { 200 };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return counts.error(format!("{kind:?}: transport"), e.to_string()),
    };
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    if status != want {
        return counts.error(
            format!("{kind:?}: {status}"),
            String::from_utf8_lossy(&body).chars().take(300).collect(),
        );
    }
    if !matches!(kind, Kind::Job) {
        counts.ok.fetch_add(1, Relaxed);
        return;
    }
    counts.accepted.fetch_add(1, Relaxed);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(id), Some(url)) = (doc["id"].as_str(), doc["status_url"].as_str()) else {
        return counts.error(
            "Job: 202 without id/status_url".into(),
            String::from_utf8_lossy(&body).into(),
        );
    };
    // Read the status once the callback came (bounded: the callback may be retried).
    for _ in 0..120 {
        if hooks.seen.lock().map(|s| s.contains(id)).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{base}{url}")
    };
    match client.get(&url).send().await {
        Ok(r) if r.status() == 200 => {
            let doc: serde_json::Value = r.json().await.unwrap_or_default();
            if doc["status"] == "succeeded" {
                counts.status_reads.fetch_add(1, Relaxed);
            } else {
                counts.error("Job status: not succeeded".into(), doc.to_string());
            }
        }
        Ok(r) => counts.error(
            format!("Job status: {}", r.status().as_u16()),
            String::new(),
        ),
        Err(e) => counts.error("Job status: transport".into(), e.to_string()),
    }
}
