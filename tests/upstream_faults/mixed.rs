//! Mixed load on a misbehaving upstream while a healthy route keeps serving: no head-of-line
//! blocking across routes (their pools, job slots and pollers are separate).
//!
//! The bad upstream, by path: never answers; resets after reading the request; flaps
//! (`500`, close without an answer, `200`); answers slowly; a task API whose status URL
//! flaps; a sync API that never answers (`upstream_timeout = "8s"`: its calls are held long
//! enough that a healthy request stuck behind one would show). 300 clients on it at once,
//! while 40 clients make 1000 requests on the healthy upstream (proxied `GET`s and
//! `wait=5` jobs): every one of those must get its `200`, none slower than
//! [`HEALTHY_BOUND`] (a generous bound, still shorter than the bad upstream's timeout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::support::{client, reply, Gateway, Seen as UpSeen, Upstream};
use super::{call, config, read_request, reset, response, route, send, task_route};
use super::{RawUpstream, Rng, Tally};

/// Longest a healthy request may take while the bad upstream is held.
const HEALTHY_BOUND: Duration = Duration::from_secs(6);

async fn bad_upstream() -> RawUpstream {
    let seq = Arc::new(AtomicU64::new(0));
    let born = Instant::now();
    RawUpstream::start(move |mut s: TcpStream| {
        let seq = Arc::clone(&seq);
        async move {
            let mut buf = Vec::new();
            while let Some(req) = read_request(&mut s, &mut buf).await {
                let mut rng = Rng::new(seq.fetch_add(1, Ordering::SeqCst) + 1);
                let path = req.target.split('?').next().unwrap_or("").to_owned();
                let flappy = path == "/m/flap" || path.starts_with("/v1/tasks/");
                let answer = match path.as_str() {
                    "/m/reset" => return reset(s),
                    "/m/slow" => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        response(200, r#"{"slow":true}"#)
                    }
                    _ if flappy => match rng.below(3) {
                        0 => response(500, r#"{"error":"flap"}"#),
                        1 => return, // closes without an answer
                        // Tasks succeed a second after the upstream started.
                        _ if born.elapsed() > Duration::from_secs(1) => {
                            response(200, r#"{"taskId":"t","status":"succeeded"}"#)
                        }
                        _ => response(200, r#"{"taskId":"t","status":"running"}"#),
                    },
                    "/v1/edit" => response(202, r#"{"taskId":"t","status":"pending"}"#),
                    // /m/hang and the sync API: never answer.
                    _ => return super::hold(&mut s, Duration::from_secs(60)).await,
                };
                if !send(&mut s, &answer).await {
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_upstream_under_load_does_not_slow_a_healthy_route() {
    let bad = bad_upstream().await;
    let good = Upstream::start(|_s: UpSeen| async { reply(200, r#"{"ok":true}"#, &[]) }).await;
    let (b, g) = (bad.url(), good.url());
    let slow = "upstream_timeout = \"8s\"";
    let routes = [
        route("m", "proxy", r#""GET""#, "/m/{*rest}", &b, slow),
        task_route("edit", "/v1/edit", &b, slow),
        route("render", "sync", r#""POST""#, "/v1/render", &b, slow),
        route("h", "proxy", r#""GET""#, "/h/{*rest}", &g, ""),
        route("quick", "sync", r#""POST""#, "/v1/quick", &g, ""),
    ]
    .concat();
    let gw = Gateway::start(&config("", &routes), "").await;
    let http = client();

    let started = Instant::now();
    let bad_kinds = [
        ("hang", 60),
        ("reset", 60),
        ("flap", 60),
        ("slow", 60),
        ("task", 40),
        ("sync", 20),
    ];
    let mut bad_clients = Vec::new();
    for (kind, count) in bad_kinds {
        for _ in 0..count {
            let req = match kind {
                "task" => http
                    .post(gw.url("/v1/edit"))
                    .header("prefer", "wait=5")
                    .body("{}"),
                "sync" => http
                    .post(gw.url("/v1/render"))
                    .header("prefer", "wait=5")
                    .body("{}"),
                _ => http.get(gw.url(&format!("/m/{kind}"))),
            };
            bad_clients.push(tokio::spawn(async move { (kind, call(req).await) }));
        }
    }
    // The bad requests are in flight (the hangs are held for 8 s); now the healthy load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let healthy: Vec<_> = (0..40)
        .map(|c| {
            let (http, base) = (http.clone(), gw.url("/"));
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..25 {
                    let req = if (c + i) % 5 == 0 {
                        http.post(format!("{base}v1/quick"))
                            .header("prefer", "wait=5")
                            .body("{}")
                    } else {
                        http.get(format!("{base}h/{c}/{i}"))
                    };
                    let t = Instant::now();
                    let answer = call(req).await;
                    got.push((answer, t.elapsed()));
                }
                got
            })
        })
        .collect();
    let mut good_tally = Tally::default();
    let mut slowest = Duration::ZERO;
    for h in healthy {
        for (answer, took) in h.await.unwrap() {
            match answer {
                Ok(a) => good_tally.add(a.key()),
                Err(e) => good_tally.lost.push(e),
            }
            slowest = slowest.max(took);
        }
    }
    let healthy_done = started.elapsed();
    good_tally.assert_only("healthy route beside a bad upstream", &["200"]);
    assert_eq!(good_tally.total(), 1000);
    assert!(
        slowest < HEALTHY_BOUND,
        "a healthy request took {slowest:?}: blocked behind the bad upstream"
    );

    let mut bad_tally = Tally::default();
    for c in bad_clients {
        let (kind, answer) = c.await.unwrap();
        match answer {
            Ok(a) => bad_tally.add(format!("{kind}: {}", a.key())),
            Err(e) => bad_tally.lost.push(format!("{kind}: {e}")),
        }
    }
    bad_tally.assert_only(
        "misbehaving upstream",
        &[
            "hang: 504 upstream-timeout",
            "reset: 502 upstream-unreachable",
            // The upstream's own 500 is its answer, passed through (never rewritten).
            "flap: 500",
            "flap: 502 upstream-unreachable",
            "flap: 200",
            "slow: 200",
            "task: 200",
            "task: 202",
            // The job's call timed out: wait=5 sees the failed job, or its 202 handle.
            "sync: 200",
            "sync: 202",
        ],
    );
    assert_eq!(bad_tally.total(), 300);
    eprintln!(
        "mixed: 1000 healthy requests done {healthy_done:?} after the start (slowest \
         {slowest:?}); 300 bad ones answered by {:?}",
        started.elapsed()
    );
}
