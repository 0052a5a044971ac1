//! The human-readable route table that `prefer-gateway check` prints for a loaded config.
//!
//! Pure formatting of an already-validated [`Config`]: no I/O, so the CLI decides where it
//! goes and tests can compare strings. Secrets never appear (a redis password is masked).

use std::fmt::Write as _;
use std::time::Duration;

use super::{Config, FieldSource, ModeKind, ModeSource, RouteConfig, RouteKind, StoreConfig};

/// Renders a header line (listen addresses, job store, job path) followed by one aligned
/// row per route: NAME, KIND, METHODS, PATH, UPSTREAM, NOTES.
///
/// ```text
/// listen 127.0.0.1:8080  admin 127.0.0.1:9901  store sqlite:data/jobs.db  jobs /jobs
///
/// NAME  KIND  METHODS  PATH      UPSTREAM               NOTES
/// edit  task  POST     /v1/edit  http://127.0.0.1:9000  wait<=600s poll=1s sync_wait=60s …
/// ```
pub fn route_table(cfg: &Config) -> String {
    let admin = cfg
        .server
        .admin_listen
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    let mut out = format!(
        "listen {}  admin {admin}  store {}  jobs {}\n",
        cfg.server.listen,
        store(&cfg.jobs.store),
        cfg.jobs.path
    );
    if !cfg.overridden.is_empty() {
        let _ = writeln!(out, "from the environment: {}", cfg.overridden.join(", "));
    }
    if cfg.routes.is_empty() {
        out.push_str("\n(no routes)\n");
        return out;
    }
    let header = ["NAME", "KIND", "METHODS", "PATH", "UPSTREAM", "NOTES"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(cfg.routes.iter().map(row))
        .collect();
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(r: &RouteConfig) -> [String; 6] {
    let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
    [
        r.name.clone(),
        r.kind.as_str().to_owned(),
        methods.join(","),
        r.path.clone(),
        r.upstream.as_str().trim_end_matches('/').to_owned(),
        notes(r).join(" "),
    ]
}

/// The few settings that matter for this kind of route, in `key=value` form.
fn notes(r: &RouteConfig) -> Vec<String> {
    let s = &r.settings;
    let mut notes = Vec::new();
    if let Some(mode) = &r.mode {
        let kind = match mode.kind {
            ModeKind::Enum => "",
            ModeKind::Bool => "(bool)",
        };
        notes.push(match &mode.source {
            ModeSource::Query(name) => format!("mode=query:{name}{kind}"),
            ModeSource::Json(ptr) => format!("mode=json:{ptr}{kind}"),
        });
    }
    if !r.async_requires.is_empty() {
        let rules: Vec<String> = r
            .async_requires
            .iter()
            .map(|rule| format!("{}={}", rule.field, rule.expected))
            .collect();
        notes.push(format!("async_requires={}", rules.join(",")));
    }
    match r.kind {
        RouteKind::Task => {
            notes.push(format!("wait<={}", secs(s.max_wait)));
            notes.push(format!("poll={}", secs(s.poll_interval)));
            notes.push(format!("sync_wait={}", secs(s.sync_wait)));
        }
        RouteKind::Sync => {
            notes.push(format!("wait<={}", secs(s.max_wait)));
            notes.push(format!("timeout={}", secs(s.upstream_timeout)));
            notes.push(format!("in_flight={}", r.max_in_flight));
        }
        RouteKind::Proxy => notes.push(format!("timeout={}", secs(s.upstream_timeout))),
    }
    if let Some(src) = &r.callback {
        notes.push(format!("callback={}", field(src)));
    }
    if let Some(src) = &r.idempotency {
        notes.push(format!("idempotency={}", field(src)));
    }
    if r.retry_interrupted {
        notes.push("retry_interrupted".to_owned());
    }
    if let Some(a) = &r.admission {
        // Scheme, host, port and path only: a query string may carry a token.
        let mut url = a.url.clone();
        url.set_query(None);
        notes.push(format!("admission={url}"));
    }
    if r.signed_results {
        notes.push("signed_results".to_owned());
    }
    if let Some(task) = &r.task {
        notes.push(format!("task id={} status={}", task.id, task.status_url));
        if let Some(cb) = &task.callback {
            notes.push(format!(
                "task.callback={} fallback_poll={}",
                field(&cb.at),
                secs(cb.fallback_poll_interval)
            ));
        }
    }
    notes
}

fn field(src: &FieldSource) -> String {
    match src {
        FieldSource::Json(ptr) => format!("json:{ptr}"),
        FieldSource::Header(name) => format!("header:{name}"),
    }
}

/// `600s`, `1s`, `1500ms`: whole seconds when exact, else milliseconds.
fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn store(s: &StoreConfig) -> String {
    match s {
        StoreConfig::Memory => "memory".to_owned(),
        StoreConfig::Sqlite(path) => format!("sqlite:{}", path.display()),
        StoreConfig::Redis(url) => {
            let mut url = url.clone();
            if url.password().is_some() {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
    }
}
