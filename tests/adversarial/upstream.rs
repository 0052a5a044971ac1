//! Hostile upstreams (README "Errors": `502 upstream-unreachable`, `504 upstream-timeout`;
//! behaviour §4.3–4.5 and §5 for what waits and jobs make of them):
//!
//! - **hangs** (accepts, reads the request, never answers): `504` problem at
//!   `upstream_timeout` on proxy, task-submit and plain sync calls; a job records
//!   `upstream_timeout`; a status URL that hangs only costs its polls, the waiter gets its
//!   `202` at the deadline; a `202` whose body never comes is not waited on forever;
//! - **resets** (closes before answering, `RST` after the request, `RST` mid-body):
//!   `502` problem, or a job that records `upstream_unreachable`; once the head has gone
//!   to the client a reset can only end the connection early;
//! - **garbage** (`HTTP/1.1 banana`, random bytes, a non-numeric `Content-Length`, a head
//!   that never ends): `502` problem, the job records `upstream_unreachable`;
//! - **a status URL that never turns terminal**: a `wait=100000` is capped at the route's
//!   `max_wait` and ends with the `202` handle after it, with one poll per interval — not a
//!   flood. The 600 s default cap itself cannot be waited out in CI time: it is proven by
//!   the `Preference-Applied: respond-async, wait=600` a capped wait reports (read here from
//!   the `202` a drain hands back at once), plus the clamping at a short configured cap.
//!
//! Every case runs while a [`Bystander`] is served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::support::wire::assert_problem;
use super::support::{client, task_upstream, Gateway};
use super::{config, healthy_upstream, read_request, route, task_route, Bystander, RawUpstream};
use super::{RawResponse, PATIENCE};

/// `upstream_timeout = 1s`; to `up`: a proxy route `GET /p/{*rest}`, a sync route
/// `POST /v1/render`, task routes `POST /v1/edit` and `POST /v1/stuck`.
async fn gateway(up: &RawUpstream, alive: &str) -> Gateway {
    let u = up.url();
    let routes = [
        route("p", "proxy", r#""GET""#, "/p/{*rest}", &u, ""),
        route("render", "sync", r#""POST""#, "/v1/render", &u, ""),
        task_route("edit", "/v1/edit", &u, ""),
        task_route("stuck", "/v1/stuck", &u, ""),
    ]
    .concat();
    let cfg = config("", "upstream_timeout = \"1s\"", alive, &routes);
    Gateway::start(&cfg, "").await
}

const ACCEPTED: &[u8] =
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"taskId\":\"t-1\"}\n";

async fn post(gw: &Gateway, path: &str, prefer: Option<&str>) -> reqwest::Response {
    let mut req = client().post(gw.url(path)).body("{}");
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    tokio::time::timeout(PATIENCE, req.send())
        .await
        .unwrap_or_else(|_| panic!("POST {path}: no answer within {PATIENCE:?}"))
        .unwrap()
}

/// A `wait` answer of a job route whose job failed: the status document with `code`.
async fn assert_job_failed(resp: reqwest::Response, code: &str) {
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["status"], "failed", "{doc}");
    assert_eq!(doc["error"]["code"], code, "{doc}");
}

#[tokio::test]
async fn an_upstream_that_hangs_is_a_504_problem_and_waits_still_end() {
    let alive = healthy_upstream().await;
    let up = RawUpstream::start(|mut s: TcpStream| async move {
        while let Some(head) = read_request(&mut s).await {
            match (head.method.as_str(), head.target.as_str()) {
                // A task whose submit works but whose status URL hangs.
                ("POST", "/v1/edit") => {
                    if s.write_all(ACCEPTED).await.is_err() {
                        return;
                    }
                }
                // A 202 head whose body never comes.
                ("POST", "/v1/stuck") => {
                    let _ = s
                        .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 50\r\n\r\n{\"ta")
                        .await;
                    std::future::pending::<()>().await;
                }
                _ => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    let gw = gateway(&up, &alive.url()).await;
    let bystander = Bystander::start(gw.addr);
    let get = client().get(gw.url("/p/hang")).send().await.unwrap();
    assert_problem(get, 504, "upstream-timeout").await;
    assert_problem(post(&gw, "/v1/render", None).await, 504, "upstream-timeout").await;
    let job = post(&gw, "/v1/render", Some("wait=5")).await;
    assert_job_failed(job, "upstream_timeout").await;

    // The status URL hangs: each poll times out, the waiter still gets its 202 at wait=2.
    let started = Instant::now();
    let resp = post(&gw, "/v1/edit", Some("wait=2")).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=2"
    );
    assert_eq!(resp.text().await.unwrap(), "{\"taskId\":\"t-1\"}\n");
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // The 202's body (which holds the operation id) never arrives: a 504 problem at
    // upstream_timeout, not a hang — with a wait, and without one (DEFAULT).
    for prefer in [Some("wait=2"), None] {
        let stuck = post(&gw, "/v1/stuck", prefer).await;
        assert_problem(stuck, 504, "upstream-timeout").await;
    }
    bystander.finish("hanging upstream").await;
}

#[tokio::test]
async fn a_status_body_that_hangs_does_not_stall_a_watched_operation() {
    // A task route with a callback: the gateway watches the operation itself. The first
    // status poll gets a head and then no body; the next ones say "succeeded".
    let alive = healthy_upstream().await;
    let hook = healthy_upstream().await;
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&polls);
    let up = RawUpstream::start(move |mut s: TcpStream| {
        let polls = Arc::clone(&counter);
        async move {
            while let Some(head) = read_request(&mut s).await {
                let answer: &[u8] = if head.method == "POST" {
                    ACCEPTED
                } else if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"sta")
                        .await;
                    std::future::pending::<()>().await;
                    return;
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 23\r\n\r\n{\"status\":\"succeeded\"}\n"
                };
                if s.write_all(answer).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let routes = format!(
        "[webhooks]\nsigning_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
         retry_schedule = [\"0s\"]\nallow_http = true\nallow_ports = []\n\
         allow_networks = [\"127.0.0.0/8\"]\n\n{}",
        task_route(
            "edit",
            "/v1/edit",
            &up.url(),
            "callback = { header = \"Callback-Url\" }"
        )
    );
    let cfg = config("", "upstream_timeout = \"1s\"", &alive.url(), &routes);
    let gw = Gateway::start(&cfg, "").await;
    let bystander = Bystander::start(gw.addr);
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .header("callback-url", format!("{}/done", hook.url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let deadline = Instant::now() + PATIENCE;
    while hook.seen().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the watch is stuck on a status body that never came ({} polls)",
            polls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered: serde_json::Value = serde_json::from_slice(&hook.seen()[0].body).unwrap();
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    bystander.finish("hanging status body").await;
}

#[tokio::test]
async fn an_upstream_that_resets_is_a_502_problem() {
    let alive = healthy_upstream().await;
    let up = RawUpstream::start(|mut s: TcpStream| async move {
        let Some(head) = read_request(&mut s).await else {
            return;
        };
        if head.target.contains("fin") {
            return; // an orderly close without an answer
        }
        if head.target.contains("mid") {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // SO_LINGER 0: the close is a RST.
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    })
    .await;
    let gw = gateway(&up, &alive.url()).await;
    let bystander = Bystander::start(gw.addr);
    for path in ["/p/fin", "/p/rst"] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_problem(resp, 502, "upstream-unreachable").await;
    }
    // The head has reached the client: the reset can only cut the body short.
    let (raw, ended) = super::send_raw(
        gw.addr,
        b"GET /p/mid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        PATIENCE,
    )
    .await;
    assert_ne!(ended, super::Ended::StillOpen, "a cut body was held open");
    let resp = RawResponse::parse(&raw).expect("the head came through");
    assert_eq!(resp.status, 200);
    assert!(resp.body.len() < 1000, "a cut body looked complete");

    for target in ["/v1/render?fin", "/v1/render?rst", "/v1/render?mid"] {
        let job = post(&gw, target, Some("wait=5")).await;
        assert_job_failed(job, "upstream_unreachable").await;
    }
    assert_problem(
        post(&gw, "/v1/edit?rst", Some("wait=5")).await,
        502,
        "upstream-unreachable",
    )
    .await;
    bystander.finish("resetting upstream").await;
}

/// xorshift64*: reproducible garbage without a dependency.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn an_upstream_that_answers_garbage_is_a_502_problem() {
    let alive = healthy_upstream().await;
    let up = RawUpstream::start(|mut s: TcpStream| async move {
        let Some(head) = read_request(&mut s).await else {
            return;
        };
        let t = head.target;
        let _ = if t.contains("banana") {
            s.write_all(b"HTTP/1.1 banana\r\n\r\n").await
        } else if t.contains("random") {
            s.write_all(&garbage(4096, 7919)).await
        } else if t.contains("length") {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello")
                .await
        } else {
            // A head that never ends: header lines until the gateway hangs up.
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let line =
                b"X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(64);
            loop {
                if s.write_all(&line).await.is_err() {
                    return;
                }
            }
        };
        // Hold the connection: the gateway must not wait for more.
        std::future::pending::<()>().await;
    })
    .await;
    let gw = gateway(&up, &alive.url()).await;
    let bystander = Bystander::start(gw.addr);
    for kind in ["banana", "random", "length", "flood"] {
        let resp = client()
            .get(gw.url(&format!("/p/{kind}")))
            .send()
            .await
            .unwrap();
        assert_problem(resp, 502, "upstream-unreachable").await;
        let job = post(&gw, &format!("/v1/render?{kind}"), Some("wait=5")).await;
        assert_job_failed(job, "upstream_unreachable").await;
        let submit = post(&gw, &format!("/v1/edit?{kind}"), Some("wait=5")).await;
        assert_problem(submit, 502, "upstream-unreachable").await;
    }
    bystander.finish("garbage upstream").await;
}

#[tokio::test]
async fn a_status_url_that_never_turns_terminal_is_ended_by_the_wait_cap() {
    let alive = healthy_upstream().await;
    let tasks = task_upstream(Duration::from_secs(3600)).await; // always "running"
    let routes = task_route(
        "edit",
        "/v1/edit",
        &tasks.url(),
        "poll_interval = \"1s\"\nmax_wait = \"2s\"\nsync_wait = \"2s\"",
    );
    let gw = Gateway::start(&config("", "", &alive.url(), &routes), "").await;
    let bystander = Bystander::start(gw.addr);
    // 50 clients at once, each asking far past the cap (one overflows u64: saturated, capped).
    let started = Instant::now();
    let waits: Vec<_> = (0..50)
        .map(|i| {
            let url = gw.url("/v1/edit");
            let prefer = match i % 3 {
                0 => Some("wait=100000"),
                1 => Some("respond-async, wait=99999999999999999999999999"),
                _ => None, // DEFAULT: sync_wait, no Preference-Applied
            };
            tokio::spawn(async move {
                let mut req = client().post(url).body("{}");
                if let Some(p) = prefer {
                    req = req.header("prefer", p);
                }
                let resp = tokio::time::timeout(PATIENCE, req.send()).await;
                (
                    prefer,
                    resp.expect("the wait was not ended by the cap").unwrap(),
                )
            })
        })
        .collect();
    for w in waits {
        let (prefer, resp) = w.await.unwrap();
        assert_eq!(resp.status(), 202, "{prefer:?}");
        let applied = resp.headers().get("preference-applied").cloned();
        match prefer {
            Some(_) => assert_eq!(applied.unwrap(), "respond-async, wait=2"),
            None => assert!(applied.is_none()),
        }
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["taskId"].as_str().unwrap().starts_with("t-"), "{body}");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "ended early: {took:?}");
    // One poll per interval: at 1 s and at the 2 s deadline (a third when a tick is late;
    // only the deadline poll when the 202 itself came late) — never a flood.
    let polls = tasks.count("/v1/tasks/");
    assert!(
        (50..=150).contains(&polls),
        "{polls} polls for 50 operations"
    );
    bystander.finish("never-terminal status URL").await;
    eprintln!("never terminal: 50 waits ended after {took:?} with {polls} polls");
}

#[tokio::test]
async fn the_default_cap_clamps_a_huge_wait_to_600_seconds() {
    let alive = healthy_upstream().await;
    let tasks = task_upstream(Duration::from_secs(3600)).await;
    let routes = task_route("edit", "/v1/edit", &tasks.url(), "");
    let gw = Gateway::start(&config("", "", &alive.url(), &routes), "").await;
    let url = gw.url("/v1/edit");
    let waiting = tokio::spawn(async move {
        client()
            .post(url)
            .header("prefer", "wait=100000")
            .body("{}")
            .send()
            .await
            .unwrap()
    });
    // Once the submit is upstream (the request is past the drain check), drain: the waiter
    // gets its 202 at once, and the header says which wait was in force — the default
    // cap, not the 100000 asked for.
    let deadline = Instant::now() + PATIENCE;
    while tasks.count("/v1/edit") == 0 {
        assert!(
            Instant::now() < deadline,
            "the submit never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::timeout(PATIENCE, gw.shutdown()).await.unwrap();
    let resp = tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=600"
    );
}
