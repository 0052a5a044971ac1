//! Live status across replicas: two gateway processes on one real `redis-server`. Replica
//! A runs the jobs; replica B has another route, so it never claims one and learns every
//! change through the store — the finished-jobs feed for the end, its once-a-second
//! re-read for the claim. Event ids mean the same on both, so a client resumes on either.

use std::time::Duration;

use super::support::process::GatewayProcess;
use super::support::redis::RedisServer;
use super::support::{client, sync_upstream};
use super::{check_sequence, open, parse, read_to_end, submit, Event};

fn config(
    dir: &std::path::Path,
    name: &str,
    redis: &url::Url,
    route: &str,
    up: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "{redis}"

[[routes]]
name = "{route}"
kind = "sync"
methods = ["POST"]
path = "/v1/{route}"
upstream = "{up}"
max_in_flight = 1
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_job_run_on_one_replica_streams_and_resumes_on_another() {
    let redis = RedisServer::start();
    let up = sync_upstream(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let a = GatewayProcess::start(&config(
        dir.path(),
        "a.toml",
        &redis.url(),
        "render",
        &up.url(),
    ));
    let b = GatewayProcess::start(&config(
        dir.path(),
        "b.toml",
        &redis.url(),
        "other",
        &up.url(),
    ));
    let base = a.url("");
    // One slot: the first job runs on A, the second waits as pending meanwhile.
    let _first = submit(&base, r#"{"n":1}"#, &[]).await;
    let id = submit(&base, r#"{"n":2}"#, &[]).await;
    let path = format!("/jobs/{id}");
    let http = client();
    let (url_a, url_b) = (a.url(&path), b.url(&path));
    let (on_a, on_b) = tokio::join!(open(&http, &url_a, &[]), open(&http, &url_b, &[]));
    assert_eq!(on_b.status(), 200);
    assert_eq!(on_b.headers()["content-type"], "text/event-stream");
    let (on_a, on_b) = tokio::join!(read_to_end(on_a), read_to_end(on_b));
    let (on_a, _) = parse(&on_a);
    let (on_b, _) = parse(&on_b);
    for events in [&on_a, &on_b] {
        check_sequence(events, &id);
        assert_eq!(events[0].status(), "pending", "{events:#?}");
        assert_eq!(events.last().unwrap().status(), "succeeded", "{events:#?}");
    }
    // B saw the job through the store only; its ids are A's.
    let ids = |events: &[Event]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&on_a), [1, 2, 4]);
    assert!(
        ids(&on_b).iter().all(|i| [1, 2, 4].contains(i)),
        "{on_b:#?}"
    );
    assert_eq!(on_b[0].data["status_url"], b.url(&path), "B's own URLs");
    // Resume on B after what A sent; past the end on A: 204.
    let resumed = open(&http, &b.url(&path), &[("last-event-id", "2")]).await;
    let (resumed, _) = parse(&read_to_end(resumed).await);
    assert_eq!(ids(&resumed), [4]);
    let done = open(&http, &a.url(&path), &[("last-event-id", "4")]).await;
    assert_eq!(done.status(), 204);
}
