//! Loading `gateway.toml` into a validated [`Config`], with errors that name the key and
//! point at line:column.
//!
//! [`load_str`] and [`load_file`] are the only entry points; every failure is one
//! [`ConfigError`] rendered as `FILE:LINE:COL: KEY: MESSAGE`. The work is split by concept
//! into submodules (one file would pass the ~400-line house limit):
//!
//! - `values`: the rules for single values, as plain `fn(&str) -> Result<T, String>`;
//! - `seed`: serde seeds that run those rules *inside* a value's deserialisation, so toml
//!   attaches the value's span and `serde_path_to_error` its key path to the error;
//! - `raw`: the file's serde shape (`deny_unknown_fields` everywhere, `Spanned` where a later
//!   check must point back at a value);
//! - `build`: defaults applied, then the cross-checks between values.
//!
//! Every error has a key and a line:column, with two exceptions: an unreadable file has
//! neither, and a TOML syntax error (which serde never sees) gets its key from the table
//! header and `key =` in force on its line, best effort.
//!
//! # Keys
//!
//! Every key is optional unless marked *required*; a left-out key takes the default shown.
//! Durations are humantime (`"1s"`, `"24h"`), sizes `"10MiB"`-style, dates RFC 3339 UTC
//! (`"2026-06-01T00:00:00Z"`, a bare `"2026-06-01"`, or a TOML date-time literal). Unknown
//! keys are errors.
//!
//! | key | default | notes |
//! |---|---|---|
//! | `server.listen` | `"127.0.0.1:8080"` | `IP:PORT` |
//! | `server.admin_listen` | none (disabled) | `IP:PORT` |
//! | `server.header_read_timeout` | `"10s"` | > 0 |
//! | `server.drain_timeout` | `"30s"` | |
//! | `server.drain_delay` | `"0s"` | unready-but-serving time before the listener closes |
//! | `server.body_idle_timeout` | `"60s"` | > 0; longest gap between body reads → `408` |
//! | `server.max_connections` | `10000` | ≥ 1; at the limit accepting pauses |
//! | `server.h2_max_concurrent_streams` | `1024` | ≥ 1 |
//! | `server.worker_threads` | one per CPU | per-core runtimes serving connections; `0` = the main runtime; at most 1024 |
//! | `server.tenant_rate` | none (unlimited) | ≥ 1 requests/s per tenant → `429` beyond |
//! | `server.tenant_burst` | `tenant_rate` | ≥ 1 |
//! | `defaults.poll_interval` | `"1s"` | > 0 |
//! | `defaults.max_wait` | `"600s"` | `wait=N` cap |
//! | `defaults.min_wait` | `"1s"` | `wait=N` floor; ≤ `max_wait` |
//! | `defaults.sync_wait` | `"60s"` | |
//! | `defaults.upstream_timeout` | `"60s"` | > 0 |
//! | `defaults.max_body` | `"10MiB"` | |
//! | `jobs.path` | `"/jobs"` | literal, starts with `/`, no trailing `/` |
//! | `jobs.store` | `"sqlite:data/jobs.db"` | `"memory"`, `"sqlite:PATH"`, `"redis://…"`, `"rediss://…"` |
//! | `jobs.retention` | `"24h"` | > 0 |
//! | `jobs.tenant_header` | none (single tenant) | header name |
//! | `jobs.max_queued_per_tenant` | `100000` | ≥ 1 |
//! | `jobs.key_prefix` | `"prefer:"` | Redis store only: prefix of every key |
//! | `jobs.lease` | `"30s"` | > 0; a dead runner's jobs are recovered this long after its last renewal |
//! | `jobs.signing_secret` | none | as `webhooks.signing_secret` (`whsec_` + base64 or plain text, non-empty); key of signed result URLs |
//! | `jobs.sse_heartbeat` | `"15s"` | > 0; longest silence on a live status stream before a `: heartbeat` comment |
//! | `webhooks.signing_secret` | none | non-empty |
//! | `webhooks.retry_schedule` | `["0s", "2m", "4m", "8m", "16m"]` | non-empty |
//! | `webhooks.timeout` | `"15s"` | > 0 |
//! | `webhooks.allow_http` | `false` | |
//! | `webhooks.allow_networks` | `[]` | CIDRs; a bare IP is a /32 or /128 |
//! | `webhooks.allow_ports` | `[80, 443, 8080, 8443]` | ports; `[]` allows any |
//! | `webhooks.watch_limit` | `"24h"` | > 0 |
//! | `routes[].name` | *required* | unique; letters, digits, `-_.` |
//! | `routes[].kind` | *required* | `"task"`, `"sync"`, `"proxy"` |
//! | `routes[].methods` | *required* | non-empty, no duplicates, upper-cased; GET HEAD POST PUT DELETE PATCH OPTIONS |
//! | `routes[].path` | *required* | starts with `/`, matchit 0.8 pattern |
//! | `routes[].upstream` | *required* | `http://host[:port][/prefix]`; no userinfo, query, fragment; https not yet |
//! | `routes[].poll_interval` … `max_body`, `min_wait` | the `[defaults]` value | merged into `settings` |
//! | `routes[].mode` | none | `{ query = "name" }` or `{ json = "/ptr" }`, plus `kind` (`"enum"` default, or `"bool"`), `deprecation`, `sunset`, `link`; not on proxy |
//! | `routes[].async_requires` | none | inline table, field JSON pointer → string, bool, integer or finite float; non-empty; not on proxy |
//! | `routes[].callback` | none | `{ json = "/ptr" }` or `{ header = "Name" }`; not on proxy |
//! | `routes[].callback_events` | none | as `callback`; needs `callback`; not on proxy |
//! | `routes[].idempotency` | none | as `callback`; not on proxy |
//! | `routes[].max_in_flight` | `64` | ≥ 1; not on proxy |
//! | `routes[].retry_interrupted` | `false` | not on proxy |
//! | `routes[].retry` | `{ attempts = 3, backoff = "1s", max_backoff = "30s", on = ["connect"] }` | sync only; `attempts` ≥ 1, `backoff` > 0 and ≤ `max_backoff`, `on` entries unique, of `"connect"`, `"timeout"`, `"429"`, `"502"`, `"503"`, `"504"` |
//! | `routes[].max_queue_time` | none | > 0; a job not started within it is canceled (`deadline_exceeded`); not on proxy |
//! | `routes[].max_run_time` | none | > 0; a running job's call is aborted after it (`deadline_exceeded`); not on proxy |
//! | `routes[].signed_results` | `false` | `download_url` in finished jobs' status; needs `jobs.signing_secret`; not on proxy; on task only with `callback` |
//! | `routes[].task.id` | *required* | JSON pointer or `"header:NAME"` |
//! | `routes[].task.status_url` | *required* | contains `{id}`; `/path` or `http://…` |
//! | `routes[].task.state` | `"/status"` | JSON pointer |
//! | `routes[].task.succeeded` | `["succeeded"]` | non-empty, disjoint from `failed` |
//! | `routes[].task.failed` | `["failed"]` | non-empty |
//! | `routes[].task.cancel` | none | `{ method = "POST" (default), url = "/v1/tasks/{id}/cancel" }`; `url` like `status_url` |
//!
//! Keys beyond the example file (`server.header_read_timeout`, `server.drain_timeout`,
//! `server.drain_delay`, `server.body_idle_timeout`, `server.max_connections`, `server.h2_max_concurrent_streams`,
//! `server.tenant_rate`, `server.tenant_burst`,
//! `defaults.min_wait`, `jobs.key_prefix`, `jobs.lease`, `jobs.sse_heartbeat`, `webhooks.allow_ports`,
//! `webhooks.watch_limit`) are optional extensions with the defaults above.
//! `jobs.signing_secret` and `routes[].signed_results` are in the example file, commented.
//!
//! # Cross-checks
//!
//! Route names are unique; no two routes share a method on the same path; distinct paths
//! must not conflict in matchit (`/a/{x}` vs `/a/{y}`, whatever the methods); `kind = "task"`
//! needs `[routes.task]` and no other kind may have one; `min_wait ≤ max_wait` after merging
//! (also in the whole seconds they round to); a route with `callback` needs
//! `webhooks.signing_secret` and one with `signed_results = true` needs
//! `jobs.signing_secret` (the error names the route's key);
//! and while any route runs jobs (a `sync` route, or a `task` route with `callback` or
//! `admission` — the gateway then serves its own endpoints before the route table) no route
//! path may equal `jobs.path` or lie under it, nor be `/webhook-secret`.

mod build;
mod raw;
mod seed;
mod values;

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::{ByteSize, Config, Defaults};

/// The built-in `[defaults]`, used for every key the file leaves out.
pub const DEFAULT_SETTINGS: Defaults = Defaults {
    poll_interval: Duration::from_secs(1),
    max_wait: Duration::from_secs(600),
    min_wait: Duration::from_secs(1),
    sync_wait: Duration::from_secs(60),
    upstream_timeout: Duration::from_secs(60),
    max_body: ByteSize(10 * 1024 * 1024),
};

/// Parses and validates a configuration held in memory; `origin` names it in errors.
pub fn load_str(src: &str, origin: &str) -> Result<Config, ConfigError> {
    let source = Source { origin, src };
    let raw: raw::RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(src))
        .map_err(|e| source.serde_error(e))?;
    build::build(raw, &source)
}

/// Reads, parses and validates a configuration file. A read failure is a [`ConfigError`]
/// too (no key, no position).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => {
            let mut cfg = load_str(&src, &origin)?;
            crate::config::env::apply(&mut cfg, |k| std::env::var(k).ok()).map_err(
                |(key, message)| ConfigError {
                    origin: origin.clone(),
                    key: key.into(),
                    line: None,
                    column: None,
                    message,
                },
            )?;
            // The certificate pair is read here (not in `load_str`, which stays pure for
            // tests and the fuzzer) so `check` and a reload refuse a pair that won't load.
            if let Some(tls) = &cfg.server.tls {
                crate::config::tls::load(tls).map_err(|message| ConfigError {
                    origin: origin.clone(),
                    key: "server.tls".into(),
                    line: None,
                    column: None,
                    message,
                })?;
            }
            Ok(cfg)
        }
        Err(e) => Err(ConfigError {
            origin,
            key: String::new(),
            line: None,
            column: None,
            message: format!("cannot read the file: {e}"),
        }),
    }
}

/// `jobs.store` syntax, for an environment override.
pub(crate) fn store_value(s: &str) -> Result<crate::config::StoreConfig, String> {
    values::store(s)
}

/// `server.public_url` syntax, for an environment override.
pub(crate) fn public_url_value(s: &str) -> Result<String, String> {
    values::public_url(s)
}

/// Why a configuration did not load: where (file, key, line, column) and what.
///
/// Displays as `FILE:LINE:COL: KEY: MESSAGE`; parts that are not known (no position for a
/// read error, no key for an unreadable file) are left out with their separator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    origin: String,
    key: String,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

impl ConfigError {
    /// The file name (or the `origin` given to [`load_str`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The offending key as a path, e.g. `routes[1].task.status_url`; empty when the error
    /// is about no key (an unreadable file).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// 1-based line of the offending value, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// 1-based column (in characters) of the offending value, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        let mut out = self.origin.clone();
        if let (Some(line), Some(col)) = (self.line, self.column) {
            out.push_str(&format!(":{line}:{col}"));
        }
        if !self.key.is_empty() {
            out.push_str(": ");
            out.push_str(&self.key);
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }
}

/// The text being loaded, for turning byte spans into line:column.
struct Source<'a> {
    origin: &'a str,
    src: &'a str,
}

impl Source<'_> {
    /// An error at `key`, positioned at the start of `span`.
    fn error(&self, key: String, span: Option<Range<usize>>, message: String) -> ConfigError {
        let pos = span.map(|s| line_col(self.src, s.start));
        ConfigError {
            origin: self.origin.to_owned(),
            key,
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            message,
        }
    }

    /// A toml/serde error: the key from the path, the position from toml's span. A syntax
    /// error never reaches serde and so has no path; its key is guessed from the text.
    fn serde_error(&self, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
        let mut key = key_path(e.path());
        let inner = e.into_inner();
        let mut message = inner.message().trim().replace('\n', "; ");
        if message.is_empty() {
            // toml reports some lexer errors (a control character in a comment) without
            // text; an error line must still say something (found by fuzz/config_load).
            message = "invalid TOML here (a control character or malformed text)".into();
        }
        let err = self.error(String::new(), inner.span(), message);
        if key.is_empty() {
            key = err.line.map(|l| key_near(self.src, l)).unwrap_or_default();
        }
        ConfigError { key, ..err }
    }
}

/// `routes[1].task.status_url` from serde_path_to_error's path, without the private field
/// `toml::Spanned` deserialises through.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                // A key that is not a bare TOML key (an `async_requires` pointer such as
                // `/response_mode`) is quoted, as it is written in the file.
                let bare = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    let before = src.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Best-effort key for a syntax error on `line`: the table header in force there (with
/// `[[array]]` indices counted) plus the key the line assigns. Multi-line values can fool it;
/// it only ever improves a message that would otherwise have no key.
fn key_near(src: &str, line: usize) -> String {
    let mut table = String::new();
    let mut arrays: HashMap<String, usize> = HashMap::new();
    let header = |rest: &str, close: &str, arrays: &HashMap<String, usize>| {
        let name = rest
            .split(close)
            .next()
            .unwrap_or_default()
            .trim()
            .replace(' ', "");
        match name.split_once('.') {
            Some((head, tail)) => match arrays.get(head) {
                Some(n) => format!("{head}[{}].{tail}", n.saturating_sub(1)),
                None => name,
            },
            None => name,
        }
    };
    for (n, text) in src.lines().enumerate() {
        let t = text.trim_start();
        let here = n + 1 == line;
        if let Some(rest) = t.strip_prefix("[[") {
            let name = header(rest, "]]", &arrays);
            if here {
                return name;
            }
            let count = arrays.entry(name.clone()).or_insert(0);
            table = format!("{name}[{count}]");
            *count += 1;
        } else if let Some(rest) = t.strip_prefix('[') {
            table = header(rest, "]", &arrays);
            if here {
                return table;
            }
        } else if here {
            let bare = |k: &&str| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            return match t.split_once('=').map(|(k, _)| k.trim()).filter(bare) {
                Some(k) if table.is_empty() => k.to_owned(),
                Some(k) => format!("{table}.{k}"),
                None => table,
            };
        }
    }
    table
}
