//! Config loading, black-box through the public API: the example file, defaults, merging,
//! the `check` route table, and one test per error class asserting the exact key, line and
//! column the error reports. The error tests live in `config/errors.rs` (a module of this
//! test crate, not a test target of its own) to keep each file readable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "config/errors.rs"]
mod errors;
#[path = "config/events.rs"]
mod events;
#[path = "config/retry.rs"]
mod retry;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::Method;
use prefer_gateway::config::load::DEFAULT_SETTINGS;
use prefer_gateway::config::table::route_table;
use prefer_gateway::config::{
    load_file, load_str, ByteSize, Config, ConfigError, FieldSource, IdSource, ModeKind,
    ModeSource, RouteKind, StoreConfig,
};

// === helpers ===

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml");
    load_file(&path).unwrap()
}

/// One route of 6 lines: header, name, kind, methods, path, upstream (in that order), so
/// in a file made of routes, route `i` has its `name` on line `6i + 2` … `upstream` on `6i + 6`.
fn route(name: &str, kind: &str, methods: &str, path: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nkind = \"{kind}\"\nmethods = {methods}\n\
         path = \"{path}\"\nupstream = \"http://127.0.0.1:9000\""
    )
}

/// A `GET` proxy route (6 lines, see [`route`]).
fn proxy(name: &str, path: &str) -> String {
    route(name, "proxy", r#"["GET"]"#, path)
}

/// A minimal `[routes.task]` table of 3 lines.
const TASK: &str = "[routes.task]\nid = \"/id\"\nstatus_url = \"/t/{id}\"";

fn load(parts: &[&str]) -> Result<Config, ConfigError> {
    load_str(&parts.join("\n"), "test.toml")
}

/// Loads `parts` joined by newlines and expects an error at exactly `"LINE:COL KEY"`.
fn fails(parts: &[&str], at: &str) -> ConfigError {
    let err = load(parts).expect_err("config should not load");
    let got = format!(
        "{}:{} {}",
        err.line().unwrap(),
        err.column().unwrap(),
        err.key()
    );
    assert_eq!(got, at, "wrong location for: {err}");
    err
}

/// Asserts that `err`'s message contains `text`.
fn says(err: &ConfigError, text: &str) {
    assert!(err.message().contains(text), "{text:?} not in: {err}");
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// 2026-06-01T00:00:00Z.
fn june_2026() -> SystemTime {
    SystemTime::UNIX_EPOCH + secs(1_780_272_000)
}

// === loading ===

#[test]
fn example_file_loads_with_expected_values() {
    let cfg = example();
    let (server, jobs, hooks) = (&cfg.server, &cfg.jobs, &cfg.webhooks);
    assert_eq!(server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(server.admin_listen.unwrap().to_string(), "127.0.0.1:9901");
    assert_eq!(cfg.defaults.poll_interval, secs(1));
    assert_eq!(cfg.defaults.max_wait, secs(600));
    assert_eq!(cfg.defaults.sync_wait, secs(60));
    assert_eq!(cfg.defaults.upstream_timeout, secs(60));
    assert_eq!(cfg.defaults.max_body, ByteSize(10 * 1024 * 1024));
    assert_eq!(jobs.path, "/jobs");
    assert_eq!(
        jobs.store,
        StoreConfig::Sqlite(PathBuf::from("data/jobs.db"))
    );
    assert_eq!(jobs.retention, secs(24 * 3600));
    assert_eq!(jobs.tenant_header.as_ref().unwrap(), "x-api-key");
    assert_eq!(jobs.max_queued_per_tenant, 100_000);
    assert!(hooks
        .signing_secret
        .as_ref()
        .unwrap()
        .starts_with("whsec_MfKQ"));
    assert_eq!(hooks.retry_schedule, [0, 120, 240, 480, 960].map(secs));
    assert_eq!(hooks.timeout, secs(15));
    assert!(!hooks.allow_http && hooks.allow_networks.is_empty());

    let names: Vec<&str> = cfg.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["edit", "task-status", "render"]);
    let [edit, status, render] = &cfg.routes[..] else {
        panic!("three routes")
    };

    assert_eq!(
        (edit.kind, edit.path.as_str()),
        (RouteKind::Task, "/v1/edit")
    );
    assert_eq!(edit.methods, [Method::POST]);
    assert_eq!(edit.upstream.as_str(), "http://127.0.0.1:9000/");
    assert_eq!(edit.settings, cfg.defaults);
    let mode = edit.mode.as_ref().unwrap();
    assert_eq!(mode.source, ModeSource::Query("mode".into()));
    assert_eq!((mode.deprecation, mode.sunset), (Some(june_2026()), None));
    let link = mode.link.as_ref().unwrap();
    assert_eq!(link.as_str(), "https://example.com/docs/prefer");
    let task = edit.task.as_ref().unwrap();
    assert_eq!(task.id, IdSource::Pointer("/taskId".parse().unwrap()));
    assert_eq!(task.status_url, "/v1/tasks/{id}");
    assert_eq!(task.state.as_str(), "/status");
    assert_eq!(
        (&task.succeeded[..], &task.failed[..]),
        (&["succeeded".to_owned()][..], &["failed".to_owned()][..])
    );

    assert_eq!(status.kind, RouteKind::Proxy);
    assert_eq!(
        (status.path.as_str(), &status.methods[..]),
        ("/v1/tasks/{id}", &[Method::GET][..])
    );
    assert!(status.mode.is_none() && status.task.is_none() && status.callback.is_none());

    assert_eq!(render.kind, RouteKind::Sync);
    assert_eq!(render.upstream.port(), Some(9001));
    let json = |p: &str| FieldSource::Json(p.parse().unwrap());
    let mode = &render.mode.as_ref().unwrap().source;
    assert_eq!(mode, &ModeSource::Json("/mode".parse().unwrap()));
    assert_eq!(render.callback, Some(json("/callback_url")));
    assert_eq!(render.idempotency, Some(json("/client_request_id")));
    assert_eq!((render.max_in_flight, render.retry_interrupted), (64, true));
    assert!(render.task.is_none());
}

#[test]
fn empty_file_loads_with_all_defaults() {
    let cfg = load(&[""]).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.server.admin_listen, None);
    assert_eq!(cfg.server.header_read_timeout, secs(10));
    assert_eq!(cfg.server.drain_timeout, secs(30));
    assert_eq!(cfg.defaults, DEFAULT_SETTINGS);
    assert_eq!(cfg.defaults.min_wait, secs(1));
    assert_eq!(cfg.jobs.store, StoreConfig::Sqlite("data/jobs.db".into()));
    assert_eq!(cfg.jobs.tenant_header, None);
    assert_eq!(cfg.jobs.key_prefix, "prefer:");
    assert_eq!(cfg.webhooks.signing_secret, None);
    assert_eq!(
        cfg.webhooks.retry_schedule,
        [0, 120, 240, 480, 960].map(secs)
    );
    assert!(cfg.routes.is_empty());
}

#[test]
fn route_overrides_merge_over_defaults() {
    let r = route("a", "task", r#"["post", "GET"]"#, "/a");
    let defaults = "[defaults]\npoll_interval = \"2s\"\nmax_wait = \"300s\"\nsync_wait = \"30s\"";
    let own = "poll_interval = \"50ms\"\nmax_body = \"1MiB\"\nmin_wait = \"0s\"";
    let cfg = load(&[defaults, &r, own, TASK]).unwrap();
    let s = cfg.routes[0].settings;
    assert_eq!(s.poll_interval, Duration::from_millis(50));
    assert_eq!(
        (s.max_wait, s.min_wait, s.sync_wait),
        (secs(300), secs(0), secs(30))
    );
    assert_eq!(
        (s.upstream_timeout, s.max_body),
        (secs(60), ByteSize(1 << 20))
    );
    assert_eq!(cfg.defaults.poll_interval, secs(2));
    assert_eq!(cfg.routes[0].methods, [Method::POST, Method::GET]);
}

#[test]
fn other_valid_spellings_load() {
    let cfg = load(&[
        "[jobs]\nstore = \"rediss://:pw@cache:6380/2\"\nkey_prefix = \"gw-eu:\"",
        "[webhooks]\nsigning_secret = \"s\"\nallow_networks = [\"10.1.2.3/8\", \"::1\"]",
        &route("a", "sync", r#"["GET"]"#, "/a"),
        "mode = { query = \"m\", deprecation = 2026-06-01, sunset = \"2027-01-01T00:00:00Z\" }",
        "callback = { header = \"X-Callback\" }",
        &route("b", "sync", r#"["POST"]"#, "/a"),
        &route("c", "task", r#"["GET"]"#, "/jobs-archive"),
        "[routes.task]\nid = \"header:Location\"\nstatus_url = \"http://h:1/t/{id}\"",
    ])
    .unwrap();
    assert!(matches!(cfg.jobs.store, StoreConfig::Redis(_)));
    assert_eq!(cfg.jobs.key_prefix, "gw-eu:");
    let nets = &cfg.webhooks.allow_networks;
    let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
    let mode = cfg.routes[0].mode.as_ref().unwrap();
    assert_eq!(mode.deprecation, Some(june_2026()));
    let header = FieldSource::Header("x-callback".parse().unwrap());
    assert_eq!(cfg.routes[0].callback, Some(header));
    assert!(route_table(&cfg).contains("store rediss://:***@cache:6380/2"));
}

#[test]
fn bool_mode_and_async_requires_load() {
    let cfg = load(&[
        &route("a", "sync", r#"["POST"]"#, "/a"),
        "mode = { json = \"/async\", kind = \"bool\" }",
        r#"async_requires = { "/response_mode" = "urls", "/hd" = true, "/n" = 2, "/q" = 0.5 }"#,
        &route("b", "task", r#"["POST"]"#, "/b"),
        "mode = { query = \"async\", kind = \"bool\" }",
        TASK,
        &route("c", "sync", r#"["POST"]"#, "/c"),
        "mode = { query = \"mode\", kind = \"enum\" }",
    ])
    .unwrap();
    let [a, b, c] = &cfg.routes[..] else {
        panic!("three routes")
    };
    let mode = a.mode.as_ref().unwrap();
    assert_eq!(mode.source, ModeSource::Json("/async".parse().unwrap()));
    assert_eq!(mode.kind, ModeKind::Bool);
    let rules: Vec<(String, serde_json::Value)> = a
        .async_requires
        .iter()
        .map(|r| (r.field.to_string(), r.expected.clone()))
        .collect();
    let want = [
        ("/response_mode", serde_json::json!("urls")),
        ("/hd", serde_json::json!(true)),
        ("/n", serde_json::json!(2)),
        ("/q", serde_json::json!(0.5)),
    ]
    .map(|(f, v)| (f.to_owned(), v));
    assert_eq!(rules, want);
    assert_eq!(b.mode.as_ref().unwrap().kind, ModeKind::Bool);
    assert!(b.async_requires.is_empty());
    assert_eq!(c.mode.as_ref().unwrap().kind, ModeKind::Enum);
    // Left out, `kind` is "enum" (today's sync|async|auto).
    assert_eq!(
        example().routes[0].mode.as_ref().unwrap().kind,
        ModeKind::Enum
    );
    let table = route_table(&cfg);
    assert!(table.contains("mode=json:/async(bool)"), "{table}");
    let notes = r#"async_requires=/response_mode="urls",/hd=true,/n=2,/q=0.5"#;
    assert!(table.contains(notes), "{table}");
}

#[test]
fn load_file_reads_a_temp_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    assert_eq!(load_file(&path).unwrap().server.listen.port(), 9999);
    std::fs::write(&path, "[server]\nlisten = 8080\n").unwrap();
    let err = load_file(&path).unwrap_err();
    assert_eq!(err.origin(), path.display().to_string());
    let expected = "2:10: server.listen: invalid type: integer `8080`, \
                    expected an address such as \"127.0.0.1:8080\"";
    assert_eq!(err.to_string(), format!("{}:{expected}", path.display()));
}

#[test]
fn missing_file_is_a_config_error_without_position() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_file(&dir.path().join("nope.toml")).unwrap_err();
    assert_eq!((err.key(), err.line(), err.column()), ("", None, None));
    assert!(err.message().starts_with("cannot read the file"), "{err}");
    assert!(
        err.to_string().contains("nope.toml: cannot read the file"),
        "{err}"
    );
}

#[test]
fn display_is_file_line_col_key_message() {
    let err = load_str("[defaults]\nmax_wait = \"forever\"\n", "gw.toml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("gw.toml:2:12: defaults.max_wait: invalid duration"),
        "{text}"
    );
}

#[test]
fn route_table_lists_every_route() {
    let table = route_table(&example());
    let lines: Vec<&str> = table.lines().collect();
    let head = "listen 127.0.0.1:8080  admin 127.0.0.1:9901  store sqlite:data/jobs.db  jobs /jobs";
    assert_eq!(lines[0], head);
    assert!(lines[2].starts_with("NAME         KIND   METHODS  PATH            UPSTREAM"));
    let edit =
        "edit         task   POST     /v1/edit        http://127.0.0.1:9000  mode=query:mode";
    assert!(lines[3].starts_with(edit), "{table}");
    let notes = "wait<=600s poll=1s sync_wait=60s task id=/taskId status=/v1/tasks/{id}";
    assert!(lines[3].ends_with(notes), "{table}");
    assert!(
        lines[4].starts_with("task-status  proxy  GET      /v1/tasks/{id}"),
        "{table}"
    );
    let render = "callback=json:/callback_url idempotency=json:/client_request_id";
    assert!(lines[5].contains(render), "{table}");
    assert_eq!(lines.len(), 6);
}

#[test]
fn server_limits_have_defaults_and_are_validated() {
    let cfg = example();
    assert_eq!(cfg.server.body_idle_timeout, Duration::from_secs(60));
    assert_eq!(cfg.server.max_connections, 10_000);
    assert_eq!(cfg.server.h2_max_concurrent_streams, 1024);
    assert_eq!(cfg.server.tenant_rate, None);
    let bare = load_str("", "bare.toml").unwrap();
    assert_eq!(bare.server.max_connections, 10_000);
    let set = load_str(
        "[server]\ntenant_rate = 5\nbody_idle_timeout = \"2s\"\n",
        "set.toml",
    )
    .unwrap();
    let rate = set.server.tenant_rate.unwrap();
    assert_eq!((rate.per_second, rate.burst), (5, 5));
    assert_eq!(set.server.body_idle_timeout, Duration::from_secs(2));
    // Per-core runtimes: one per CPU unless set; 0 = the main runtime; capped at 1024.
    assert_eq!(cfg.server.worker_threads, None);
    for (n, want) in [(0, 0), (3, 3), (1_000_000, 1024)] {
        let set = load_str(&format!("[server]\nworker_threads = {n}\n"), "w.toml").unwrap();
        assert_eq!(set.server.worker_threads, Some(want));
    }
    for (text, key) in [
        ("[server]\nworker_threads = -1\n", "server.worker_threads"),
        (
            "[server]\nworker_threads = \"auto\"\n",
            "server.worker_threads",
        ),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ("[server]\ntenant_rate = 0\n", "server.tenant_rate"),
        (
            "[server]\nbody_idle_timeout = \"0s\"\n",
            "server.body_idle_timeout",
        ),
        (
            "[server]\nh2_max_concurrent_streams = -1\n",
            "server.h2_max_concurrent_streams",
        ),
    ] {
        let err = load_str(text, "bad.toml").unwrap_err().to_string();
        assert!(err.contains(key), "{text:?} → {err}");
        assert!(err.starts_with("bad.toml:2:"), "{err}");
    }
}

/// The example file's commented signed-results lines are valid as written: uncommented,
/// the file loads with the key derived and the sync route signing its results; left
/// commented (the shipped file), nothing is signed.
#[test]
fn example_signed_results_lines_load_when_uncommented() {
    let cfg = example();
    assert!(cfg.jobs.signing_key.is_none());
    assert!(cfg.routes.iter().all(|r| !r.signed_results));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let on = text
        .replace("# signing_secret = ", "signing_secret = ")
        .replace("# signed_results = true", "signed_results = true");
    assert_ne!(on, text, "the example file has both commented lines");
    let cfg = load_str(&on, "example-on.toml").unwrap();
    assert!(cfg.jobs.signing_key.is_some());
    let signed: Vec<&str> = cfg
        .routes
        .iter()
        .filter(|r| r.signed_results)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(signed, ["render"]);
    assert!(!route_table(&example()).contains("signed_results"));
    let table = route_table(&cfg);
    let render = table.lines().find(|l| l.starts_with("render")).unwrap();
    assert!(render.ends_with("signed_results"), "{table}");
}

/// The example's commented `task.callback` lines load when uncommented: the route becomes
/// callback-driven (and so runs jobs), with the fallback interval given.
#[test]
fn example_task_callback_lines_load_when_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let on = text
        .replace(
            "# callback = { json = \"/webhook_url\" }",
            "callback = { json = \"/webhook_url\" }",
        )
        .replace(
            "# fallback_poll_interval = \"30s\"",
            "fallback_poll_interval = \"45s\"",
        );
    assert_ne!(on, text, "the example file has the commented lines");
    let cfg = load_str(&on, "example-cb.toml").unwrap();
    let route = cfg.routes.iter().find(|r| r.task.is_some()).unwrap();
    let cb = route.task.as_ref().unwrap().callback.as_ref().unwrap();
    assert_eq!(cb.fallback_poll_interval, secs(45));
    assert!(route.runs_jobs());
    let table = route_table(&cfg);
    assert!(
        table.contains("task.callback=json:/webhook_url fallback_poll=45s"),
        "{table}"
    );
}
