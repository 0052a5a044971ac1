//! Live status streams and their clients: HTTP/2, a real `EventSource` (requests-sse from
//! PyPI) through a reconnect, clients that leave (their waiters are freed:
//! `prefer_gateway_event_streams` goes back down), and a gateway that drains.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::support::{client, python, sync_config, sync_upstream, Gateway};
use super::{check_sequence, open, parse, read_to_end, submit, STREAM_LIMIT};

#[tokio::test]
async fn http2_streams_the_same_events() {
    let up = sync_upstream(Duration::from_millis(500)).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let id = submit(&gw.url(""), "{}", &[]).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = open(&h2, &gw.url(&format!("/jobs/{id}")), &[]).await;
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (events, _) = parse(&read_to_end(resp).await);
    check_sequence(&events, &id);
    assert_eq!(events.last().unwrap().status(), "succeeded");
    gw.shutdown().await;
}

/// The stream gauge of `route`, scraped from the admin listener (0 before any stream).
async fn open_streams(gw: &Gateway, route: &str) -> u64 {
    let text = client()
        .get(format!("http://{}/metrics", gw.admin.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("prefer_gateway_event_streams{{route=\"{route}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn streams_become(gw: &Gateway, route: &str, n: u64) {
    let t = Instant::now();
    while open_streams(gw, route).await != n {
        assert!(
            t.elapsed() < STREAM_LIMIT,
            "{route}: never {n} open streams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn clients_that_leave_free_their_streams() {
    // A job that outlives the test; a route of its own, so the process-wide gauge counts
    // only this test's streams.
    let up = sync_upstream(Duration::from_secs(120)).await;
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        sync_config("memory", "", "").replace("name = \"render\"", "name = \"sse-leave\"")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let id = submit(&gw.url(""), "{}", &[]).await;
    let url = gw.url(&format!("/jobs/{id}"));
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // Two HTTP/1.1 connections and two streams on one HTTP/2 connection, each read up to
    // its first event.
    let mut bodies = Vec::new();
    for http in [client(), client(), h2.clone(), h2] {
        let resp = open(&http, &url, &[]).await;
        let mut body = resp.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(first.starts_with(b"id: "), "{first:?}");
        bodies.push((http, body));
    }
    streams_become(&gw, "sse-leave", 4).await;
    // One HTTP/2 stream reset, its connection kept: that stream alone goes.
    drop(bodies.pop());
    streams_become(&gw, "sse-leave", 3).await;
    // Everyone leaves. A closed HTTP/1.1 connection is noticed at the latest when the next
    // heartbeat cannot be written.
    bodies.clear();
    streams_become(&gw, "sse-leave", 0).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_draining_gateway_ends_its_streams_at_once() {
    let up = sync_upstream(Duration::from_secs(120)).await;
    let cfg = format!(
        "[server]\ndrain_timeout = \"120s\"\n{}",
        sync_config("memory", "", "")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let id = submit(&gw.url(""), "{}", &[]).await;
    let resp = open(&client(), &gw.url(&format!("/jobs/{id}")), &[]).await;
    let mut body = resp.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    let t = Instant::now();
    // The stream is not in the way of the drain, which would otherwise wait two minutes.
    let (rest, ()) = tokio::join!(
        async {
            let mut rest = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                rest.extend_from_slice(&chunk);
            }
            rest
        },
        gw.shutdown()
    );
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let text = String::from_utf8([first.to_vec(), rest].concat()).unwrap();
    let (events, _) = parse(&text);
    // Ended without a terminal event: the client reconnects with Last-Event-ID.
    assert!(
        events.iter().all(|e| e.status() != "succeeded"),
        "{events:#?}"
    );
}

const REQUIREMENTS: &str = "tests/clients/sse-requirements.txt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_source_follows_the_job_reconnects_and_stops_on_204() {
    let python = tokio::task::spawn_blocking(|| python::venv(&[REQUIREMENTS]))
        .await
        .unwrap();
    let up = sync_upstream(Duration::from_millis(800)).await;
    let jobs = "tenant_header = \"X-Api-Key\"";
    let gw = Gateway::start(&sync_config("memory", jobs, ""), &up.url()).await;
    let id = submit(&gw.url(""), "{}", &[("x-api-key", "t")]).await;
    let url = gw.url(&format!("/jobs/{id}"));
    let script = python::root().join("tests/clients/sse_events.py");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .arg(script)
            .arg(&url)
            .arg("X-Api-Key=t")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < STREAM_LIMIT * 2 {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Every event typed `status`, its id the one the client keeps for a reconnect; after
    // the terminal one the EventSource reconnected with Last-Event-ID and got 204.
    let (last, events) = lines.split_last().unwrap();
    assert_eq!(*last, "stopped 204", "{stdout}");
    let parsed: Vec<serde_json::Value> = events
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let final_event = parsed.last().unwrap();
    assert_eq!(final_event["status"], "succeeded", "{stdout}");
    assert_eq!(final_event["id"], "4", "{stdout}");
    for e in &parsed {
        assert_eq!(e["type"], "status", "{stdout}");
        assert_eq!(e["job"], id.as_str(), "{stdout}");
    }
    gw.shutdown().await;
}
