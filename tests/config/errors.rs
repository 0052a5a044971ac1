//! Config errors: one test per cross-check and per kind of bad value, each asserting the
//! exact key, line and column (see `fails`), and the gist of the message.

use super::{fails, load, proxy, route, says, TASK};

// === cross-checks ===

#[test]
fn duplicate_route_names() {
    let err = fails(
        &[&proxy("a", "/a"), &proxy("a", "/b")],
        "8:8 routes[1].name",
    );
    assert_eq!(err.message(), "duplicate route name \"a\" (also routes[0])");
}

#[test]
fn same_method_on_same_path() {
    let a = route("a", "proxy", r#"["GET", "POST"]"#, "/a");
    let b = route("b", "proxy", r#"["post"]"#, "/a");
    let err = fails(&[&a, &b], "11:8 routes[1].path");
    assert_eq!(
        err.message(),
        "POST /a is already routed to \"a\" (routes[0])"
    );
    // Different methods on the exact same path string are fine.
    let b = route("b", "proxy", r#"["PUT"]"#, "/a");
    load(&[&a, &b]).unwrap();
}

#[test]
fn conflicting_patterns() {
    let err = fails(
        &[&proxy("a", "/a/{x}"), &proxy("b", "/a/{y}")],
        "11:8 routes[1].path",
    );
    says(
        &err,
        "/a/{y} conflicts with /a/{x} of route \"a\" (routes[0])",
    );
}

#[test]
fn task_kind_without_task_table() {
    let err = fails(
        &[&route("a", "task", r#"["POST"]"#, "/a")],
        "3:8 routes[0].kind",
    );
    says(&err, "needs a [routes.task] table");
}

#[test]
fn task_table_on_non_task_route() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    let err = fails(&[&r, TASK], "7:1 routes[0].task");
    says(&err, "only for kind = \"task\" (this route is \"sync\")");
}

#[test]
fn mode_on_proxy_route() {
    let err = fails(
        &[&proxy("a", "/a"), "mode = { query = \"mode\" }"],
        "7:8 routes[0].mode",
    );
    says(&err, "does not apply to kind = \"proxy\"");
}

#[test]
fn job_keys_on_proxy_route() {
    for (key, value) in [
        ("callback", "{ json = \"/cb\" }"),
        ("idempotency", "{ header = \"X-Key\" }"),
        ("max_in_flight", "4"),
        ("retry_interrupted", "true"),
    ] {
        let line = format!("{key} = {value}");
        let at = format!("7:{} routes[0].{key}", key.len() + 4);
        fails(&[&proxy("a", "/a"), &line], &at);
    }
}

#[test]
fn min_wait_above_max_wait() {
    let src = ["[defaults]", "max_wait = \"5s\"", "min_wait = \"10s\""];
    let err = fails(&src, "3:12 defaults.min_wait");
    assert_eq!(
        err.message(),
        "min_wait (10s) must not exceed max_wait (5s) in whole seconds"
    );
    // 1.5 s .. 1.9 s: the floor rounds up to 2 s, above the 1 s cap (fuzz/mode_resolve).
    let err = fails(
        &[
            "[defaults]",
            "max_wait = \"1900ms\"",
            "min_wait = \"1500ms\"",
        ],
        "3:12 defaults.min_wait",
    );
    says(&err, "in whole seconds");
    // A route lowering max_wait below the inherited min_wait (1s) is blamed for max_wait.
    fails(
        &[&proxy("a", "/a"), "max_wait = \"500ms\""],
        "7:12 routes[0].max_wait",
    );
}

#[test]
fn zero_poll_interval() {
    let err = fails(
        &["[defaults]", "poll_interval = \"0s\""],
        "2:17 defaults.poll_interval",
    );
    says(&err, "must be greater than zero");
    let own = "poll_interval = \"0ms\"";
    fails(&[&proxy("a", "/a"), own], "7:17 routes[0].poll_interval");
}

#[test]
fn bad_jobs_path() {
    fails(&["[jobs]", "path = \"jobs\""], "2:8 jobs.path");
    fails(&["[jobs]", "path = \"/jobs/\""], "2:8 jobs.path");
}

#[test]
fn empty_retry_schedule() {
    let err = fails(
        &["[webhooks]", "retry_schedule = []"],
        "2:18 webhooks.retry_schedule",
    );
    assert_eq!(err.message(), "must not be empty");
}

#[test]
fn route_under_jobs_path_while_a_sync_route_exists() {
    let sync = route("s", "sync", r#"["POST"]"#, "/render");
    let err = fails(&[&sync, &proxy("j", "/jobs/x")], "11:8 routes[1].path");
    says(&err, "falls under jobs.path \"/jobs\"");
    // Without a sync route there is no job API to collide with.
    load(&[&proxy("j", "/jobs/x")]).unwrap();
}

#[test]
fn route_on_a_reserved_path_while_a_route_runs_jobs() {
    // The gateway answers GET /webhook-secret itself while the job engine runs.
    let sync = route("s", "sync", r#"["POST"]"#, "/render");
    let err = fails(
        &[&sync, &proxy("w", "/webhook-secret")],
        "11:8 routes[1].path",
    );
    says(&err, "/webhook-secret is the gateway's own endpoint");
    // A task route with a callback runs jobs (it watches the operation): the job API is
    // mounted, so jobs.path is reserved too — not only while a sync route exists.
    let secret = "[webhooks]\nsigning_secret = \"s\"";
    let watched = route("t", "task", r#"["POST"]"#, "/edit");
    let cb = "callback = { json = \"/cb\" }";
    let err = fails(
        &[secret, &watched, cb, TASK, &proxy("j", "/jobs/x")],
        "17:8 routes[1].path",
    );
    says(&err, "falls under jobs.path \"/jobs\"");
    says(&err, "here \"t\", routes[0]");
    // So does one with admission; the jobs path itself is reserved, not only below it.
    let admitted = "admission = { url = \"http://127.0.0.1:9/admission\" }";
    fails(
        &[&watched, admitted, TASK, &proxy("j", "/jobs")],
        "15:8 routes[1].path",
    );
    // Without any route that runs jobs, nothing is mounted and nothing is reserved.
    load(&[&proxy("w", "/webhook-secret"), &proxy("j", "/jobs/x")]).unwrap();
    load(&[&watched, TASK, &proxy("j", "/jobs/x")]).unwrap();
}

// === single values ===

#[test]
fn unknown_top_level_key() {
    let err = fails(&["# top", "colour = \"blue\"", "[server]"], "2:1 colour");
    says(&err, "unknown field `colour`, expected one of `server`");
}

#[test]
fn unknown_key_in_a_table() {
    let src = [
        "[server]",
        "listen = \"127.0.0.1:1\"",
        "",
        "colour = \"blue\"",
    ];
    fails(&src, "4:1 server.colour");
}

#[test]
fn unknown_key_in_a_route() {
    let err = fails(
        &[&proxy("a", "/a"), "timeout = \"5s\""],
        "7:1 routes[0].timeout",
    );
    says(&err, "unknown field `timeout`");
    let mode = "mode = { query = \"m\", when = \"now\" }";
    fails(&[&proxy("a", "/a"), mode], "7:23 routes[0].mode.when");
}

#[test]
fn unknown_key_in_task_table() {
    let t = route("a", "task", r#"["GET"]"#, "/a");
    fails(&[&t, TASK, "status = \"/s\""], "10:1 routes[0].task.status");
}

#[test]
fn bad_duration() {
    let err = fails(
        &["[defaults]", "sync_wait = \"soon\""],
        "2:13 defaults.sync_wait",
    );
    says(&err, "invalid duration \"soon\"");
}

#[test]
fn bad_size() {
    let err = fails(
        &["[defaults]", "max_body = \"10 parsecs\""],
        "2:12 defaults.max_body",
    );
    says(&err, "invalid size \"10 parsecs\"");
}

#[test]
fn bad_pointers() {
    let t = route("a", "task", r#"["GET"]"#, "/a");
    let task = "[routes.task]\nid = \"taskId\"\nstatus_url = \"/t/{id}\"";
    let err = fails(&[&t, task], "8:6 routes[0].task.id");
    says(&err, "must be empty or start with '/'");
    let err = fails(&[&t, TASK, "state = \"/a~2\""], "10:9 routes[0].task.state");
    says(&err, "'~' must be followed by '0' or '1'");
}

#[test]
fn bad_urls() {
    let r = proxy("a", "/a").replace("http://127.0.0.1:9000", "not a url");
    fails(&[&r], "6:12 routes[0].upstream");
    let r = proxy("a", "/a").replace("http://", "https://");
    let err = fails(&[&r], "6:12 routes[0].upstream");
    assert_eq!(err.message(), "https upstreams are not supported yet");
    let t = route("a", "task", r#"["GET"]"#, "/a");
    let task = "[routes.task]\nid = \"/id\"\nstatus_url = \"/t/id\"";
    let err = fails(&[&t, task], "9:14 routes[0].task.status_url");
    says(&err, "must contain \"{id}\"");
}

#[test]
fn bad_listen_address() {
    fails(
        &["[server]", "listen = \"localhost:8080\""],
        "2:10 server.listen",
    );
}

#[test]
fn bad_methods() {
    let r = route("a", "proxy", r#"["GET", "FETCH"]"#, "/a");
    says(
        &fails(&[&r], "4:19 routes[0].methods[1]"),
        "unknown HTTP method \"FETCH\"",
    );
    let r = route("a", "proxy", r#"["GET", "get"]"#, "/a");
    says(
        &fails(&[&r], "4:19 routes[0].methods[1]"),
        "duplicate entry GET",
    );
    let r = route("a", "proxy", "[]", "/a");
    says(&fails(&[&r], "4:11 routes[0].methods"), "must not be empty");
}

#[test]
fn bad_path_patterns() {
    fails(&[&proxy("a", "v1/a")], "5:8 routes[0].path");
    fails(&[&proxy("a", "/a/{x")], "5:8 routes[0].path");
}

#[test]
fn bad_store() {
    let err = fails(
        &["[jobs]", "store = \"postgres://db/jobs\""],
        "2:9 jobs.store",
    );
    says(&err, "unknown job store");
}

#[test]
fn bad_date() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    let mode = "mode = { query = \"m\", deprecation = \"next year\" }";
    says(
        &fails(&[&r, mode], "7:37 routes[0].mode.deprecation"),
        "invalid date",
    );
}

#[test]
fn bad_cidr() {
    let nets = "allow_networks = [\"127.0.0.0/8\", \"10.0.0.0/33\"]";
    let err = fails(&["[webhooks]", nets], "2:34 webhooks.allow_networks[1]");
    says(&err, "invalid network \"10.0.0.0/33\"");
}

#[test]
fn bad_mode_and_limits() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    let mode = "mode = { query = \"m\", json = \"/m\" }";
    says(
        &fails(&[&r, mode], "7:8 routes[0].mode"),
        "exactly one of `query` or `json`",
    );
    says(
        &fails(&[&r, "max_in_flight = 0"], "7:17 routes[0].max_in_flight"),
        "at least 1",
    );
    let bad_kind = route("a", "batch", r#"["POST"]"#, "/a");
    says(
        &fails(&[&bad_kind], "3:8 routes[0].kind"),
        "unknown route kind \"batch\"",
    );
}

#[test]
fn bad_mode_kind() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    let mode = "mode = { json = \"/async\", kind = \"boolean\" }";
    let err = fails(&[&r, mode], "7:34 routes[0].mode.kind");
    says(&err, "unknown mode kind \"boolean\"; expected \"enum\"");
}

#[test]
fn bad_async_requires() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    // A key that is not a JSON pointer naming a field: the error points at the key.
    let rules = "async_requires = { \"/ok\" = 1, \"response_mode\" = \"urls\" }";
    let err = fails(&[&r, rules], "7:31 routes[0].async_requires.response_mode");
    says(&err, "must be empty or start with '/'");
    let rules = "async_requires = { \"\" = \"urls\" }";
    says(
        &fails(&[&r, rules], "7:20 routes[0].async_requires.\"\""),
        "must name a field",
    );
    let rules = "async_requires = { \"/a~2\" = \"urls\" }";
    fails(&[&r, rules], "7:20 routes[0].async_requires.\"/a~2\"");
    // Values: scalars only, named by their (quoted) pointer.
    let rules = "async_requires = { \"/modes\" = [\"urls\"] }";
    let err = fails(&[&r, rules], "7:31 routes[0].async_requires.\"/modes\"");
    says(&err, "expected a string, boolean, integer or float");
    let rules = "async_requires = { \"/f\" = nan }";
    says(
        &fails(&[&r, rules], "7:27 routes[0].async_requires.\"/f\""),
        "not a JSON number",
    );
    says(
        &fails(
            &[&r, "async_requires = {}"],
            "7:18 routes[0].async_requires",
        ),
        "at least one field",
    );
    let on_proxy = [&proxy("p", "/p"), "async_requires = { \"/a\" = 1 }"];
    says(
        &fails(&on_proxy, "7:18 routes[0].async_requires"),
        "does not apply to kind = \"proxy\"",
    );
}

#[test]
fn toml_syntax_error() {
    let src = ["[server]", "listen = \"127.0.0.1:8080", "[defaults]"];
    let err = fails(&src, "2:25 server.listen");
    assert_eq!(err.message(), "invalid basic string");
    fails(
        &[&proxy("a", "/a"), "max_body = 10MiB"],
        "7:14 routes[0].max_body",
    );
    let err = fails(
        &[&proxy("a", "/a"), "kind = \"sync\""],
        "7:1 routes[0].kind",
    );
    says(&err, "duplicate key");
}

#[test]
fn a_callback_without_a_signing_secret() {
    // The route is lines 1–6; its callback key is line 7 (value at column 12).
    let r = route("r", "sync", r#"["POST"]"#, "/r");
    let err = fails(
        &[&r, "callback = { json = \"/cb\" }"],
        "7:12 routes[0].callback",
    );
    says(&err, "signing_secret");
    load(&[
        "[webhooks]\nsigning_secret = \"s\"",
        &r,
        "callback = { json = \"/cb\" }",
    ])
    .unwrap();
}

/// fuzz/config_load: toml reports a control character in a comment with an empty message;
/// the error must still say something, and where.
#[test]
fn a_control_character_in_a_comment_gets_a_message() {
    for src in ["#\0", "a = 1\n#\u{7f}", "# ok\u{8}"] {
        let err = prefer_gateway::config::load_str(src, "gateway.toml")
            .expect_err("a control character is not TOML");
        assert!(!err.message().is_empty(), "{src:?}: {err:?}");
        assert!(err.line().is_some() && err.column().is_some(), "{err:?}");
        assert!(!err.to_string().ends_with(": "), "{err}");
    }
}
