//! SIGHUP reload, black-box: the real binary, a config file rewritten on disk, `kill -HUP`.
//!
//! A good file swaps the routes in (new paths, changed upstreams, removed routes gone) while
//! a request already in flight finishes on the route it started with; a bad file — one that
//! does not parse, or names an upstream host that does not resolve — is refused with an
//! `error` line and the old routes keep serving; a change to a start-only section is
//! applied for routes and warned about for the rest; a reload under steady traffic never
//! makes a request fail; job-running routes follow the reload too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::process::GatewayProcess;
use support::{client, reply, Seen, Upstream};

/// An upstream answering every request with `name` (after `delay`).
async fn named(name: &'static str, delay: Duration) -> Upstream {
    Upstream::start(move |_s: Seen| async move {
        tokio::time::sleep(delay).await;
        reply(200, &format!("{{\"from\":\"{name}\"}}"), &[])
    })
    .await
}

fn proxy_route(name: &str, path: &str, upstream: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nkind = \"proxy\"\nmethods = [\"GET\", \"POST\"]\n\
         path = \"{path}\"\nupstream = \"{upstream}\"\n\n"
    )
}

fn server(extra: &str) -> String {
    format!("[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n\n")
}

async fn from(url: String) -> (u16, String) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    (status, v["from"].as_str().unwrap_or(&body).to_owned())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn sighup_applies_a_good_file_and_refuses_a_bad_one() {
    let a = named("a", Duration::ZERO).await;
    let b = named("b", Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    write(
        &path,
        &format!("{}{}", server(""), proxy_route("one", "/one", &a.url())),
    );
    let gw = GatewayProcess::start(&path);
    assert_eq!(from(gw.url("/one")).await, (200, "a".into()));
    assert_eq!(from(gw.url("/two")).await.0, 404);

    // Good file: /one moves to b, /two appears.
    write(
        &path,
        &format!(
            "{}{}{}",
            server(""),
            proxy_route("one", "/one", &b.url()),
            proxy_route("two", "/two", &a.url())
        ),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    assert_eq!(from(gw.url("/one")).await, (200, "b".into()));
    assert_eq!(from(gw.url("/two")).await, (200, "a".into()));

    // A file that does not parse: refused with the loader's message, old routes stay.
    write(&path, "[[routes]\nname = ");
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reload rejected"), "{end}");
    assert!(
        end.contains("gateway.toml"),
        "the error names the file: {end}"
    );
    assert_eq!(from(gw.url("/one")).await, (200, "b".into()));
    assert_eq!(from(gw.url("/two")).await, (200, "a".into()));

    // A valid file whose upstream host does not resolve: refused as at start.
    write(
        &path,
        &format!(
            "{}{}",
            server(""),
            proxy_route("one", "/one", "http://no-such-host.invalid:80")
        ),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reload rejected"), "{end}");
    assert!(end.contains("no-such-host.invalid"), "{end}");
    assert_eq!(from(gw.url("/one")).await, (200, "b".into()));

    // Removing a route: it is gone after the reload.
    write(
        &path,
        &format!("{}{}", server(""), proxy_route("two", "/two", &b.url())),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    assert_eq!(from(gw.url("/one")).await.0, 404);
    assert_eq!(from(gw.url("/two")).await, (200, "b".into()));
}

#[tokio::test]
async fn a_start_only_section_change_is_warned_about_and_routes_still_apply() {
    let a = named("a", Duration::ZERO).await;
    let b = named("b", Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    write(
        &path,
        &format!("{}{}", server(""), proxy_route("one", "/one", &a.url())),
    );
    let gw = GatewayProcess::start(&path);
    write(
        &path,
        &format!(
            "{}{}",
            server("max_connections = 77"),
            proxy_route("one", "/one", &b.url())
        ),
    );
    let (end, lines) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    let warning = lines.iter().find(|l| l.contains("after a restart"));
    assert!(
        warning.is_some_and(|w| w.contains("[server]") && !w.contains("[jobs]")),
        "{lines:?}"
    );
    assert_eq!(from(gw.url("/one")).await, (200, "b".into()));
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_route_it_started_with() {
    let slow_a = named("a", Duration::from_millis(1500)).await;
    let b = named("b", Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    write(
        &path,
        &format!(
            "{}{}",
            server(""),
            proxy_route("one", "/one", &slow_a.url())
        ),
    );
    let gw = GatewayProcess::start(&path);
    let in_flight = tokio::spawn(from(gw.url("/one")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(
        &path,
        &format!("{}{}", server(""), proxy_route("one", "/one", &b.url())),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    assert_eq!(from(gw.url("/one")).await, (200, "b".into()));
    assert_eq!(in_flight.await.unwrap(), (200, "a".into()));
}

#[tokio::test]
async fn reloads_under_traffic_never_fail_a_request() {
    let a = named("a", Duration::ZERO).await;
    let b = named("b", Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let file = |up: &str| format!("{}{}", server(""), proxy_route("one", "/one", up));
    write(&path, &file(&a.url()));
    let gw = GatewayProcess::start(&path);
    let url = gw.url("/one");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, stop) = (url.clone(), std::sync::Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let c = client();
            let mut seen = (0usize, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = c.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                match resp.text().await.unwrap().as_str() {
                    r#"{"from":"a"}"# => seen.0 += 1,
                    r#"{"from":"b"}"# => seen.1 += 1,
                    other => panic!("unexpected answer {other}"),
                }
            }
            seen
        }));
    }
    for i in 0..10 {
        let up = if i % 2 == 0 { b.url() } else { a.url() };
        write(&path, &file(&up));
        let (end, _) = gw.hangup().await;
        assert!(end.contains("config reloaded"), "{end}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = (0, 0);
    for l in load {
        let (x, y) = l.await.unwrap();
        total = (total.0 + x, total.1 + y);
    }
    assert!(total.0 > 0 && total.1 > 0, "both configs served: {total:?}");
}

#[tokio::test]
async fn job_routes_follow_a_reload_and_the_first_one_needs_a_restart() {
    let up = support::sync_upstream(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let sync_route = |name: &str, p: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nkind = \"sync\"\nmethods = [\"POST\"]\n\
             path = \"{p}\"\nupstream = \"{}\"\n\n",
            up.url()
        )
    };
    let db = dir.path().join("jobs.db");
    let jobs = format!("[jobs]\nstore = \"sqlite:{}\"\n\n", db.display());
    write(
        &path,
        &format!("{}{jobs}{}", server(""), sync_route("r1", "/r1")),
    );
    let gw = GatewayProcess::start(&path);
    write(
        &path,
        &format!(
            "{}{jobs}{}{}",
            server(""),
            sync_route("r1", "/r1"),
            sync_route("r2", "/r2")
        ),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    // The new sync route runs jobs: respond-async, then the job finishes.
    let resp = client()
        .post(gw.url("/r2"))
        .header("prefer", "respond-async")
        .body(r#"{"n":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let doc: serde_json::Value = resp.json().await.unwrap();
    let id = doc["job_id"].as_str().unwrap().to_owned();
    let status = client()
        .get(gw.url(&format!("/jobs/{id}")))
        .header("prefer", "wait=10")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = status.json().await.unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    drop(gw);

    // A gateway started without job routes cannot add the first one without a restart.
    let plain = dir.path().join("plain.toml");
    write(
        &plain,
        &format!("{}{}", server(""), proxy_route("p", "/p", &up.url())),
    );
    let gw = GatewayProcess::start(&plain);
    write(
        &plain,
        &format!("{}{jobs}{}", server(""), sync_route("r1", "/r1")),
    );
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reload rejected"), "{end}");
    assert!(end.contains("restart"), "{end}");
    assert_eq!(
        client().post(gw.url("/r1")).send().await.unwrap().status(),
        404
    );
}
