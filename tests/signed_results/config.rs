//! Config checks of signed result URLs, through the public loader: the key without
//! `[jobs].signing_secret` is an error naming `routes[i].signed_results` at its line and
//! column; bad secrets, proxy routes and task routes without `callback` are refused.
//! A module of `tests/signed_results.rs`, not a test target of its own.

fn load(toml: &str) -> Result<prefer_gateway::config::Config, prefer_gateway::config::ConfigError> {
    prefer_gateway::config::load_str(toml, "t.toml")
}

const SYNC_ROUTE: &str = r#"
[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "http://127.0.0.1:9001"
"#;

#[test]
fn signed_results_without_a_secret_is_a_config_error_naming_the_route_key() {
    let toml = format!("[jobs]\nstore = \"memory\"\n{SYNC_ROUTE}signed_results = true\n");
    let err = load(&toml).unwrap_err();
    assert_eq!(err.key(), "routes[0].signed_results");
    assert_eq!((err.line(), err.column()), (Some(10), Some(18)));
    assert!(err.message().contains("[jobs].signing_secret"), "{err}");
    assert!(err
        .to_string()
        .starts_with("t.toml:10:18: routes[0].signed_results: "));
    // Off, or with the secret: loads.
    let off = format!("[jobs]\nstore = \"memory\"\n{SYNC_ROUTE}signed_results = false\n");
    assert!(!load(&off).unwrap().routes[0].signed_results);
    let with = format!("[jobs]\nsigning_secret = \"s\"\n{SYNC_ROUTE}signed_results = true\n");
    let cfg = load(&with).unwrap();
    assert!(cfg.routes[0].signed_results);
    assert!(cfg.jobs.signing_key.is_some());
}

#[test]
fn bad_secrets_and_routes_that_make_no_jobs_are_refused() {
    let bad = format!("[jobs]\nsigning_secret = \"whsec_%%%\"\n{SYNC_ROUTE}");
    let err = load(&bad).unwrap_err();
    assert_eq!(err.key(), "jobs.signing_secret");
    assert_eq!(err.line(), Some(2));
    let empty = format!("[jobs]\nsigning_secret = \"\"\n{SYNC_ROUTE}");
    assert_eq!(load(&empty).unwrap_err().key(), "jobs.signing_secret");
    let proxy = r#"
[jobs]
signing_secret = "s"

[[routes]]
name = "files"
kind = "proxy"
methods = ["GET"]
path = "/files"
upstream = "http://127.0.0.1:9001"
signed_results = true
"#;
    let err = load(proxy).unwrap_err();
    assert_eq!(err.key(), "routes[0].signed_results");
    assert_eq!(err.line(), Some(11));
    assert!(err.message().contains("proxy"), "{err}");
    let task = r#"
[jobs]
signing_secret = "s"

[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "http://127.0.0.1:9000"
signed_results = true

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
"#;
    let err = load(task).unwrap_err();
    assert_eq!(err.key(), "routes[0].signed_results");
    assert!(err.message().contains("callback"), "{err}");
}
