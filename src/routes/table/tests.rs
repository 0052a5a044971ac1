//! The table is the one route table: built once per config, one `Upstream` per route.

use std::sync::Arc;

use super::*;

const CFG: &str = r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "memory"

[[routes]]
name = "p"
kind = "proxy"
path = "/p"
methods = ["GET", "POST"]
upstream = "http://127.0.0.1:9001/base"

[[routes]]
name = "t"
kind = "task"
path = "/t"
methods = ["GET", "POST"]
upstream = "http://127.0.0.1:9002"
task = { status_url = "http://10.0.0.9:7000/s/{id}", id = "/id", state = "/state", succeeded = ["done"], failed = ["error"] }

[[routes]]
name = "s"
kind = "sync"
path = "/s"
methods = ["GET", "POST"]
upstream = "http://127.0.0.1:9003"
max_in_flight = 3
"#;

fn table(old: Option<&Table>) -> Table {
    let cfg = crate::config::load_str(CFG, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    Table::build(
        &cfg,
        old,
        Builtins {
            jobs: Some("/jobs"),
            webhook_secret: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn lookups_and_names_share_one_route() {
    let t = table(None);
    let looked_up = t.router.lookup(&http::Method::GET, "/s").cloned();
    let Ok(Target::Route(looked_up)) = looked_up else {
        panic!("no /s")
    };
    let named = t.get("s").cloned().unwrap_or_else(|| panic!("no s"));
    assert!(
        Arc::ptr_eq(&looked_up, &named),
        "the job engine and the router see one route"
    );
    assert!(matches!(named.kind, Kind::Sync));
    assert!(matches!(t.get("p").map(|r| &r.kind), Some(Kind::Proxy)));
    assert!(matches!(t.get("t").map(|r| &r.kind), Some(Kind::Task(_))));
}

#[test]
fn built_in_endpoints_are_routed_like_routes() {
    let t = table(None);
    let m = http::Method::DELETE;
    assert!(matches!(t.router.lookup(&m, "/jobs/abc"), Ok(Target::Jobs)));
    // The prefix itself: the list of the caller's jobs.
    assert!(matches!(t.router.lookup(&m, "/jobs"), Ok(Target::Jobs)));
    assert!(matches!(
        t.router.lookup(&m, "/jobs/abc/result"),
        Ok(Target::Jobs)
    ));
    assert!(matches!(
        t.router.lookup(&m, "/webhook-secret"),
        Ok(Target::WebhookSecret)
    ));
}

#[test]
fn hosts_come_from_the_parsed_upstreams() {
    let mut hosts = table(None).hosts();
    hosts.sort();
    assert_eq!(
        hosts,
        vec![
            ("10.0.0.9".to_owned(), 7000),
            ("127.0.0.1".to_owned(), 9001),
            ("127.0.0.1".to_owned(), 9002),
            ("127.0.0.1".to_owned(), 9003),
        ]
    );
}

#[test]
fn job_slots_survive_a_rebuild_with_the_same_limit() {
    let first = table(None);
    let second = table(Some(&first));
    let slots = |t: &Table| {
        t.get("s")
            .and_then(|r| r.jobs.as_ref())
            .map(|s| Arc::clone(&s.semaphore))
    };
    let (Some(a), Some(b)) = (slots(&first), slots(&second)) else {
        panic!("sync route without slots")
    };
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(
        first.job_routes().count(),
        1,
        "a task route without callback runs no jobs"
    );
}
