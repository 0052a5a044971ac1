//! An upstream that accepts the connection, reads the request and never answers — on
//! every route kind at once, 360 clients, while another route keeps being served.
//!
//! The contract's answers (behaviour §5, §7; README "Errors"): `504 upstream-timeout` at
//! `upstream_timeout` for a proxy route, a sync route without `Prefer` and a task route's
//! submit (whatever its `Prefer`); a job (`respond-async`, `wait=N`) that ends `failed` with
//! `error.code = "upstream_timeout"`. Nothing is retried (each request id reaches the
//! upstream once), and every connection the gateway opened is closed again. A second case
//! holds the pooled client to the same at its connection cap: abandoned calls give their
//! slots back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::support::{client, reply, Gateway, Seen as UpSeen, Upstream};
use super::{call, config, eventually, read_request, route, task_route, RawUpstream, Tally};

/// How many clients of each kind.
const KINDS: [(&str, usize); 7] = [
    ("proxy GET", 100),
    ("sync, no Prefer", 60),
    ("sync, respond-async", 60),
    ("sync, wait=5", 40),
    ("task, wait=5", 40),
    ("task, no Prefer", 40),
    ("task, respond-async", 20),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_gets_the_contracts_timeout_answers_and_no_leaks() {
    let ids: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let log = Arc::clone(&ids);
    let silent = RawUpstream::start(move |mut s: TcpStream| {
        let log = Arc::clone(&log);
        async move {
            let mut buf = Vec::new();
            if let Some(req) = read_request(&mut s, &mut buf).await {
                let id = format!("{} {}", req.method, req.target);
                *log.lock().unwrap().entry(id).or_default() += 1;
                super::hold(&mut s, Duration::from_secs(60)).await;
            }
        }
    })
    .await;
    let alive = Upstream::start(|_s: UpSeen| async { reply(200, r#"{"ok":true}"#, &[]) }).await;
    let u = silent.url();
    let routes = [
        route("alive", "proxy", r#""GET""#, "/alive", &alive.url(), ""),
        route("p", "proxy", r#""GET""#, "/p/{*rest}", &u, ""),
        route("render", "sync", r#""POST""#, "/v1/render", &u, ""),
        task_route("edit", "/v1/edit", &u, ""),
    ]
    .concat();
    let gw = Gateway::start(&config("upstream_timeout = \"3s\"", &routes), "").await;
    let http = client();
    let bystanders = Bystanders::start(&http, gw.url("/alive"), 5);

    let started = Instant::now();
    let mut clients = Vec::new();
    let mut n = 0;
    for (kind, count) in KINDS {
        for _ in 0..count {
            n += 1;
            let (path, prefer) = match kind {
                "proxy GET" => (format!("/p/g-{n}"), None),
                "sync, no Prefer" => (format!("/v1/render?n={n}"), None),
                "sync, respond-async" => (format!("/v1/render?n={n}"), Some("respond-async")),
                "sync, wait=5" => (format!("/v1/render?n={n}"), Some("wait=5")),
                "task, wait=5" => (format!("/v1/edit?n={n}"), Some("wait=5")),
                "task, no Prefer" => (format!("/v1/edit?n={n}"), None),
                _ => (format!("/v1/edit?n={n}"), Some("respond-async")),
            };
            let req = if kind == "proxy GET" {
                http.get(gw.url(&path))
            } else {
                http.post(gw.url(&path)).body("{}")
            };
            let req = match prefer {
                Some(p) => req.header("prefer", p),
                None => req,
            };
            let http = http.clone();
            let gw_url = gw.url("/");
            clients.push(tokio::spawn(async move {
                let t = Instant::now();
                let answer = call(req).await;
                let took = t.elapsed();
                // A job handle: follow it (long-poll) to the job's end.
                let job = match &answer {
                    Ok(a) if kind.starts_with("sync") && a.status == 202 => {
                        Some(follow(&http, &gw_url, &a.json()).await)
                    }
                    Ok(a) if kind.starts_with("sync") && a.status == 200 => Some(Ok(a.json())),
                    _ => None,
                };
                (kind, answer, took, job)
            }));
        }
    }
    let mut tally = Tally::default();
    let mut slowest = Duration::ZERO;
    for c in clients {
        let (kind, answer, took, job) = c.await.unwrap();
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tally.lost.push(format!("{kind}: {e}"));
                continue;
            }
        };
        let mut key = format!("{kind}: {}", answer.key());
        match job {
            Some(Ok(doc)) => {
                assert_eq!(doc["status"], "failed", "{doc}");
                key = format!("{key}, job failed {}", doc["error"]["code"]);
            }
            Some(Err(e)) => tally.lost.push(format!("{kind}: job: {e}")),
            None => {
                // Not a job: the 504 came at upstream_timeout, not before.
                assert!(took >= Duration::from_millis(2900), "{kind}: {took:?}");
                slowest = slowest.max(took);
            }
        }
        tally.add(key);
    }
    tally.assert_only(
        "silent upstream",
        &[
            "proxy GET: 504 upstream-timeout",
            "sync, no Prefer: 504 upstream-timeout",
            "sync, respond-async: 202, job failed \"upstream_timeout\"",
            "sync, wait=5: 200, job failed \"upstream_timeout\"",
            "sync, wait=5: 202, job failed \"upstream_timeout\"",
            "task, wait=5: 504 upstream-timeout",
            "task, no Prefer: 504 upstream-timeout",
            "task, respond-async: 504 upstream-timeout",
        ],
    );
    assert_eq!(tally.total(), 360);
    let served = bystanders.finish("silent upstream").await;

    // Every connection the gateway opened to the silent upstream is closed again, and
    // nothing was retried: every request reached the upstream once.
    let closed = eventually(|| silent.open() == 0).await;
    assert!(
        closed,
        "{} of {} upstream connections still open after every answer",
        silent.open(),
        silent.accepted()
    );
    // (A request the gateway could not even connect for within the timeout, on a loaded
    // machine, is a 504 that never reached the upstream: counted, not failed.)
    let ids = ids.lock().unwrap().clone();
    assert!(ids.values().all(|n| *n == 1), "a request was sent twice");
    assert!(
        ids.len() >= 180,
        "only {} requests reached the upstream",
        ids.len()
    );
    eprintln!(
        "silent: 360 clients answered in {:?} (slowest 504 {slowest:?}); {} requests reached \
         the upstream, each once; {} connections opened and closed; {served} bystander \
         requests served",
        started.elapsed(),
        ids.len(),
        silent.accepted()
    );
}

/// Long-polls a job's status URL until the job is finished; its status document.
async fn follow(
    http: &reqwest::Client,
    base: &str,
    handle: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let url = handle["status_url"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            handle["job_id"]
                .as_str()
                .map(|id| format!("{base}jobs/{id}"))
        })
        .ok_or_else(|| format!("no status URL in {handle}"))?;
    let deadline = Instant::now() + super::PATIENCE;
    loop {
        let doc = call(http.get(&url).header("prefer", "wait=5"))
            .await?
            .json();
        if matches!(
            doc["status"].as_str(),
            Some("failed" | "succeeded" | "canceled")
        ) {
            return Ok(doc);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "job still {} after {:?}",
                doc["status"],
                super::PATIENCE
            ));
        }
    }
}

/// Clients of a healthy route, each asking again as soon as it has its answer; every one
/// of their requests must get its `200` while the faults go on.
pub(super) struct Bystanders {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(usize, Duration, Vec<String>)>>,
}

impl Bystanders {
    pub(super) fn start(http: &reqwest::Client, url: String, clients: usize) -> Bystanders {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (http, url, stop) = (http.clone(), url.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let (mut served, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match call(http.get(&url)).await {
                            Ok(a) if a.status == 200 => served += 1,
                            Ok(a) => failures.push(a.key()),
                            Err(e) => failures.push(e),
                        }
                        slowest = slowest.max(t.elapsed());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (served, slowest, failures)
                })
            })
            .collect();
        Bystanders { stop, tasks }
    }

    /// Stops; asserts every request was answered `200`; how many were.
    pub(super) async fn finish(self, what: &str) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (mut served, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
        for t in self.tasks {
            let (s, slow, f) = t.await.unwrap();
            served += s;
            slowest = slowest.max(slow);
            failures.extend(f);
        }
        assert!(
            failures.is_empty(),
            "{what}: bystanders failed: {failures:?}"
        );
        assert!(served >= 1, "{what}: no bystander was served");
        eprintln!("{what}: {served} bystander requests served, slowest {slowest:?}");
        served
    }
}

/// Calls that time out give their connection slot back: against a per-upstream cap of 4,
/// 40 calls to a path that never answers (each abandoned after 300 ms, as
/// `upstream_timeout` abandons them), then calls to a path that answers still get through —
/// a leaked slot would leave them queued forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_calls_free_their_connection_slots() {
    use prefer_gateway::body::{self, Body};
    use prefer_gateway::upstream::client::{build_with_cap, StaticResolver};

    let up = RawUpstream::start(|mut s: TcpStream| async move {
        let mut buf = Vec::new();
        while let Some(req) = read_request(&mut s, &mut buf).await {
            if req.target == "/hang" {
                return super::hold(&mut s, Duration::from_secs(60)).await;
            }
            if !super::send(&mut s, &super::response(200, "ok")).await {
                return;
            }
        }
    })
    .await;
    let client = build_with_cap(StaticResolver::default(), 4);
    let call = |path: &'static str| {
        let client = client.clone();
        let uri: http::Uri = format!("{}{path}", up.url()).parse().unwrap();
        async move {
            let mut req = http::Request::new(Body::Empty);
            *req.uri_mut() = uri;
            let resp = client.request(req).await.map_err(|e| e.to_string())?;
            let body = body::collect(resp.into_body(), 1024)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(body)
        }
    };
    let abandoned: Vec<_> = (0..40)
        .map(|_| {
            let c = call("/hang");
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(300), c)
                    .await
                    .is_err()
            })
        })
        .collect();
    for a in abandoned {
        assert!(a.await.unwrap(), "a call to /hang was answered");
    }
    for _ in 0..10 {
        let ok = tokio::time::timeout(super::PATIENCE, call("/ok"))
            .await
            .expect("a call queued behind abandoned connections")
            .unwrap();
        assert_eq!(ok, "ok");
    }
    assert!(
        eventually(|| up.open() <= 4).await,
        "{} connections open under a cap of 4",
        up.open()
    );
    eprintln!(
        "abandoned calls: 40 abandoned, 10 served after them, {} connections accepted",
        up.accepted()
    );
}
