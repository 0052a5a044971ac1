//! Fuzzes config loading (`config::load_str`) with arbitrary text: valid UTF-8 as it is,
//! other bytes decoded lossily (the loader only takes `&str`; `load_file` reads with
//! `read_to_string`, so non-UTF-8 files never reach the parser).
//!
//! Invariants checked (src/config/load.rs and src/config/mod.rs docs):
//!
//! - never panics: every input is `Ok(Config)` or `Err(ConfigError)`;
//! - an error names the origin it was given, has a non-empty message, and has a line and
//!   a column together or neither; a line is within the text (1-based) and a column is
//!   at least 1; its `Display` is `ORIGIN[:LINE:COL][: KEY]: MESSAGE`;
//! - a loaded config holds the promised cross-checks: route names unique and made of
//!   letters, digits and `-_.`; methods non-empty without duplicates; paths start with
//!   `/`; `kind = "task"` exactly when `[routes.task]` is present; `min_wait <= max_wait`
//!   after merging; `poll_interval`, `upstream_timeout`, `header_read_timeout`,
//!   `jobs.retention`, `jobs.lease`, `webhooks.timeout` and `webhooks.watch_limit` are
//!   positive; `jobs.path` starts with `/` and has no trailing `/`;
//!   `max_queued_per_tenant >= 1`; `retry_schedule` non-empty; a task route's `status_url`
//!   contains `{id}` and `succeeded`/`failed` are non-empty and disjoint;
//! - what the gateway builds from a loaded config at start-up cannot fail on it: the route
//!   table (`router::Router::new`, whose conflicts the loader promises to refuse) and each
//!   upstream (`proxy::Upstream::from_url`).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use prefer_gateway::config::{self, Config, RouteKind};
use prefer_gateway::upstream::forward::Upstream;
use prefer_gateway::routes::router::Router;

const ORIGIN: &str = "fuzz.toml";

fn check_error(src: &str, e: &config::ConfigError) {
    assert_eq!(e.origin(), ORIGIN);
    assert!(!e.message().is_empty(), "empty error message: {e:?}");
    assert_eq!(e.line().is_some(), e.column().is_some(), "{e:?}");
    if let (Some(line), Some(col)) = (e.line(), e.column()) {
        let lines = src.matches('\n').count() + 1;
        assert!(
            line >= 1 && line <= lines,
            "line {line} outside 1..={lines}: {e:?}"
        );
        assert!(col >= 1, "column {col} < 1: {e:?}");
    }
    let shown = e.to_string();
    assert!(shown.starts_with(ORIGIN), "{shown}");
    assert!(shown.ends_with(e.message()), "{shown}");
    if !e.key().is_empty() {
        assert!(shown.contains(&format!(": {}: ", e.key())), "{shown}");
    }
}

fn positive(d: Duration, what: &str) {
    assert!(d > Duration::ZERO, "{what} is zero");
}

fn check_config(cfg: &Config) {
    positive(cfg.server.header_read_timeout, "server.header_read_timeout");
    positive(cfg.jobs.retention, "jobs.retention");
    positive(cfg.jobs.lease, "jobs.lease");
    positive(cfg.webhooks.timeout, "webhooks.timeout");
    positive(cfg.webhooks.watch_limit, "webhooks.watch_limit");
    assert!(
        cfg.jobs.path.starts_with('/'),
        "jobs.path {:?}",
        cfg.jobs.path
    );
    assert!(
        cfg.jobs.path == "/" || !cfg.jobs.path.ends_with('/'),
        "jobs.path {:?}",
        cfg.jobs.path
    );
    assert!(cfg.jobs.max_queued_per_tenant >= 1);
    assert!(!cfg.webhooks.retry_schedule.is_empty());
    if let Some(secret) = &cfg.webhooks.signing_secret {
        assert!(!secret.is_empty(), "empty signing_secret accepted");
    }
    let d = &cfg.defaults;
    assert!(d.min_wait <= d.max_wait, "defaults: min_wait > max_wait");

    for (i, r) in cfg.routes.iter().enumerate() {
        assert!(
            !r.name.is_empty()
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "routes[{i}].name {:?}",
            r.name
        );
        assert!(
            cfg.routes[..i].iter().all(|o| o.name != r.name),
            "duplicate route name {:?}",
            r.name
        );
        assert!(!r.methods.is_empty(), "routes[{i}].methods empty");
        for (j, m) in r.methods.iter().enumerate() {
            assert!(
                !r.methods[..j].contains(m),
                "routes[{i}] duplicate method {m}"
            );
        }
        assert!(r.path.starts_with('/'), "routes[{i}].path {:?}", r.path);
        let s = &r.settings;
        assert!(
            s.min_wait <= s.max_wait,
            "routes[{i}]: min_wait {:?} > max_wait {:?}",
            s.min_wait,
            s.max_wait
        );
        positive(s.poll_interval, "poll_interval");
        positive(s.upstream_timeout, "upstream_timeout");
        assert!(r.max_in_flight >= 1);
        assert_eq!(
            r.kind == RouteKind::Task,
            r.task.is_some(),
            "routes[{i}]: kind {:?} vs [routes.task]",
            r.kind
        );
        if r.kind == RouteKind::Proxy {
            assert!(r.mode.is_none() && r.callback.is_none() && r.idempotency.is_none());
        }
        if let Some(t) = &r.task {
            assert!(t.status_url.contains("{id}"));
            assert!(!t.succeeded.is_empty() && !t.failed.is_empty());
            assert!(t.succeeded.iter().all(|s| !t.failed.contains(s)));
        }
        if let Err(e) = Upstream::from_url(&r.upstream) {
            panic!(
                "routes[{i}].upstream {} loaded but Upstream::from_url refused it: {e}",
                r.upstream
            );
        }
    }

    let table = cfg
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (r.path.clone(), r.methods.clone(), i));
    if let Err(e) = Router::new(table) {
        panic!("a loaded config's routes do not build a router: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match config::load_str(&text, ORIGIN) {
        Ok(cfg) => check_config(&cfg),
        Err(e) => check_error(&text, &e),
    }
});
