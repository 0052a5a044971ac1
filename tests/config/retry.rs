//! `routes[].retry`: defaults, a full table, and each bad value with its key, line and
//! column.

use std::time::Duration;

use prefer_gateway::config::{RetryConfig, RetryOn};

use super::{fails, load, route, says, TASK};

fn sync() -> String {
    route("a", "sync", r#"["POST"]"#, "/a")
}

#[test]
fn left_out_it_retries_a_refused_connection_three_times() {
    let cfg = load(&[&sync()]).unwrap();
    let retry = &cfg.routes[0].retry;
    assert_eq!(retry, &RetryConfig::default());
    assert_eq!(retry.attempts, 3);
    assert_eq!(retry.on, vec![RetryOn::Connect]);
    assert_eq!(
        (retry.backoff, retry.max_backoff),
        (Duration::from_secs(1), Duration::from_secs(30))
    );
}

#[test]
fn every_key_loads() {
    let line = "retry = { attempts = 5, backoff = \"250ms\", max_backoff = \"4s\", \
                on = [\"connect\", \"timeout\", \"429\", \"502\", \"503\", \"504\"] }";
    let cfg = load(&[&sync(), line]).unwrap();
    let retry = &cfg.routes[0].retry;
    assert_eq!(retry.attempts, 5);
    assert_eq!(retry.backoff, Duration::from_millis(250));
    assert_eq!(retry.max_backoff, Duration::from_secs(4));
    assert_eq!(retry.on.len(), 6);
    assert!(retry.covers(RetryOn::Status(504)) && retry.covers(RetryOn::Timeout));
    // Only what is written changes; `on = []` retries nothing.
    let cfg = load(&[&sync(), "retry = { attempts = 1, on = [] }"]).unwrap();
    assert_eq!(cfg.routes[0].retry.attempts, 1);
    assert!(cfg.routes[0].retry.on.is_empty());
    assert_eq!(cfg.routes[0].retry.max_backoff, Duration::from_secs(30));
}

#[test]
fn bad_values_name_their_key() {
    let r = sync();
    says(
        &fails(
            &[&r, "retry = { attempts = 0 }"],
            "7:22 routes[0].retry.attempts",
        ),
        "at least 1",
    );
    says(
        &fails(
            &[&r, "retry = { on = [\"connect\", \"500\"] }"],
            "7:28 routes[0].retry.on[1]",
        ),
        "unknown retry condition \"500\"; expected one of \"connect\"",
    );
    says(
        &fails(
            &[&r, "retry = { on = [\"503\", \"503\"] }"],
            "7:24 routes[0].retry.on[1]",
        ),
        "duplicate entry",
    );
    says(
        &fails(
            &[&r, "retry = { backoff = \"10s\", max_backoff = \"5s\" }"],
            "7:42 routes[0].retry.max_backoff",
        ),
        "backoff (10s) must not exceed max_backoff (5s)",
    );
    says(
        &fails(
            &[&r, "retry = { backoff = \"1m\" }"],
            "7:21 routes[0].retry.backoff",
        ),
        "must not exceed max_backoff (30s)",
    );
    says(
        &fails(
            &[&r, "retry = { backoff = \"0s\" }"],
            "7:21 routes[0].retry.backoff",
        ),
        "greater than zero",
    );
    says(
        &fails(&[&r, "retry = { tries = 2 }"], "7:11 routes[0].retry.tries"),
        "unknown field `tries`",
    );
}

#[test]
fn only_on_sync_routes() {
    let proxy = route("a", "proxy", r#"["GET"]"#, "/a");
    says(
        &fails(&[&proxy, "retry = { attempts = 2 }"], "7:9 routes[0].retry"),
        "does not apply to kind = \"proxy\"",
    );
    let task = route("a", "task", r#"["POST"]"#, "/a");
    says(
        &fails(
            &[&task, "retry = { attempts = 2 }", TASK],
            "7:9 routes[0].retry",
        ),
        "only for kind = \"sync\"",
    );
}

#[test]
fn the_example_files_commented_line_is_the_default() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let on = text.replace("# retry = {", "retry = {");
    assert_ne!(on, text, "the example file has the commented line");
    let cfg = prefer_gateway::config::load_str(&on, "example-on.toml").unwrap();
    let render = cfg.routes.iter().find(|r| r.name == "render").unwrap();
    assert_eq!(render.retry, RetryConfig::default());
}
