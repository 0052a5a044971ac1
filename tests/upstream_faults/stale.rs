//! The stale keep-alive race: an upstream that closes its keep-alive connections at random
//! while the gateway reuses them.
//!
//! Each upstream connection answers its first request and then 0–3 more (a connection that
//! answered nothing is not a keep-alive connection yet: closing it is refusing service, a
//! `502` — that is `tests/adversarial/upstream.rs`), never saying `Connection: close`, and
//! then, at random: closes right after its last response; closes after an idle pause of
//! 0–3 ms (about when the gateway reuses it); or waits for the next request to arrive and
//! closes with a `RST` — without reading it (the request crossed the close on the wire), or
//! after reading it (so a re-sent request reaches the upstream twice, and the test can see
//! which ones were re-sent).
//!
//! Under that, at once: 2000 `GET`s from 50 clients on a proxy route must all succeed (an
//! idempotent request whose pooled connection died under it is sent again on a fresh
//! one); 500 proxied `POST`s must each reach the upstream at most once (a `POST` may have
//! been read, so it is not re-sent: its answer is the upstream's or `502
//! upstream-unreachable`); 200 sync-route jobs (whose calls carry the job id as
//! `Idempotency-Key`, behaviour §5) may be re-sent — always with the same key — and all
//! succeed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::support::{client, Gateway};
use super::Tally;
use super::{call, config, read_request, reset, response, route, send, RawUpstream, Req, Rng};

/// One request the upstream received (answered or not): method, the request's id, its
/// `Idempotency-Key`.
type Received = (String, String, Option<String>);

#[derive(Debug, Default)]
struct Log {
    received: Vec<Received>,
    /// How each connection ended, by kind.
    closes: HashMap<&'static str, usize>,
}

impl Log {
    fn receive(&mut self, req: &Req) -> String {
        let id = if req.method == "GET" {
            req.target.clone()
        } else {
            String::from_utf8_lossy(&req.body).into_owned()
        };
        let key = req.header("idempotency-key").map(str::to_owned);
        self.received.push((req.method.clone(), id.clone(), key));
        id
    }
}

async fn closing_upstream(log: Arc<Mutex<Log>>) -> RawUpstream {
    let conns = Arc::new(AtomicU64::new(0));
    RawUpstream::start(move |mut s: TcpStream| {
        let log = Arc::clone(&log);
        let mut rng = Rng::new(conns.fetch_add(1, Ordering::SeqCst) + 1);
        async move {
            let budget = 1 + rng.below(4);
            let mut buf = Vec::new();
            for _ in 0..budget {
                let Some(req) = read_request(&mut s, &mut buf).await else {
                    return;
                };
                let id = log.lock().unwrap().receive(&req);
                if !send(&mut s, &response(200, &id)).await {
                    return;
                }
            }
            let how = match rng.below(3) {
                0 => "at once",
                1 => {
                    let pause = rng.below(4);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    "after a pause"
                }
                _ => {
                    // The next request arrives as the upstream closes: a RST, the request
                    // unread — or read (so a re-send reaches the upstream twice) and dropped.
                    let mut one = [0u8; 1];
                    let next = tokio::time::timeout(Duration::from_millis(5), s.peek(&mut one));
                    if !matches!(next.await, Ok(Ok(n)) if n > 0) {
                        "no request came"
                    } else if rng.below(2) == 0 {
                        *log.lock()
                            .unwrap()
                            .closes
                            .entry("reset, unread")
                            .or_default() += 1;
                        return reset(s);
                    } else {
                        if let Some(req) = read_request(&mut s, &mut buf).await {
                            log.lock().unwrap().receive(&req);
                        }
                        *log.lock().unwrap().closes.entry("reset, read").or_default() += 1;
                        return reset(s);
                    }
                }
            };
            *log.lock().unwrap().closes.entry(how).or_default() += 1;
            drop(s);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_keep_alive_connections_never_fail_a_get_and_never_repeat_a_post() {
    let log = Arc::new(Mutex::new(Log::default()));
    let up = closing_upstream(Arc::clone(&log)).await;
    let routes = [
        route(
            "s",
            "proxy",
            r#""GET", "POST""#,
            "/s/{*rest}",
            &up.url(),
            "",
        ),
        route("render", "sync", r#""POST""#, "/v1/render", &up.url(), ""),
    ]
    .concat();
    let gw = Gateway::start(&config("upstream_timeout = \"5s\"", &routes), "").await;
    let http = client();
    let started = Instant::now();
    let mut clients = Vec::new();
    // 50 clients × 40 GETs, 20 × 25 proxied POSTs, 10 × 20 jobs (wait=10), all at once.
    for (kind, count, each) in [("GET", 50, 40), ("POST", 20, 25), ("job", 10, 20)] {
        for c in 0..count {
            let (http, base) = (http.clone(), gw.url("/"));
            clients.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..each {
                    let id = format!("{kind}-{c}-{i}");
                    let req = match kind {
                        "GET" => http.get(format!("{base}s/{id}")),
                        "POST" => http.post(format!("{base}s/p")).body(id.clone()),
                        _ => http
                            .post(format!("{base}v1/render"))
                            .header("prefer", "wait=10")
                            .body(id.clone()),
                    };
                    got.push((kind, id, call(req).await));
                }
                got
            }));
        }
    }
    let mut tally = Tally::default();
    for c in clients {
        for (kind, id, answer) in c.await.unwrap() {
            match answer {
                Err(e) => tally.lost.push(format!("{kind} {id}: {e}")),
                Ok(a) => {
                    let mut key = format!("{kind}: {}", a.key());
                    // A 200 is the upstream's answer to this request, not another's (or,
                    // for a job, a status document saying the job failed).
                    let want = if kind == "GET" {
                        format!("/s/{id}")
                    } else {
                        id
                    };
                    if a.status == 200 && a.body != want.as_bytes() {
                        let doc = a.json();
                        key = format!("{key}, job {} {}", doc["status"], doc["error"]["code"]);
                    }
                    tally.add(key);
                }
            }
        }
    }
    let took = started.elapsed();
    tally.assert_only(
        "stale keep-alive connections",
        &[
            "GET: 200",
            "POST: 200",
            "POST: 502 upstream-unreachable",
            "job: 200",
        ],
    );
    assert_eq!(tally.total(), 2000 + 500 + 200);

    let log = log.lock().unwrap();
    let mut seen: HashMap<&str, Vec<&Received>> = HashMap::new();
    for a in &log.received {
        seen.entry(a.1.as_str()).or_default().push(a);
    }
    let repeats = |method: &str| {
        seen.values()
            .filter(|v| v.len() > 1 && v[0].0 == method)
            .count()
    };
    let (get_repeats, post_repeats) = (repeats("GET"), repeats("POST"));
    for (id, answers) in &seen {
        if answers.len() < 2 || answers[0].0 == "GET" {
            continue;
        }
        // A POST sent twice: only a job's, and always with its one Idempotency-Key.
        assert!(
            id.starts_with("job-"),
            "proxied POST {id} reached the upstream twice"
        );
        let key = &answers[0].2;
        assert!(key.is_some(), "job {id} re-sent without an Idempotency-Key");
        assert!(
            answers.iter().all(|a| a.2 == *key),
            "job {id} re-sent with another key"
        );
    }
    let post_502 = tally
        .by_status
        .get("POST: 502 upstream-unreachable")
        .copied()
        .unwrap_or(0);
    eprintln!(
        "stale: 2700 requests in {took:?} over {} upstream connections; closes {:?}; \
         GETs received twice upstream: {get_repeats}; job calls re-sent with their key: \
         {post_repeats}; proxied POSTs answered 502: {post_502}",
        up.accepted(),
        log.closes
    );
    assert!(
        log.closes.get("reset, read").copied().unwrap_or(0) >= 10,
        "the race was hardly provoked: {:?}",
        log.closes
    );
}
