//! Raw tables → validated [`Config`]: defaults applied, then the checks that need more than
//! one value (route against route, route against `[defaults]` and `[jobs]`).
//!
//! Single-value rules already ran during deserialisation (see `raw`), so what is left here is
//! merging and cross-checks. Each error names the offending key and points at its value's
//! span, which is why the raw structs keep `Spanned` on exactly the fields used below.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

mod paths;
mod retry;

use super::raw::{RawConfig, RawJobs, RawRoute, RawServer, RawSettings, RawWebhooks};
use super::{ConfigError, Source, DEFAULT_SETTINGS};
use crate::config::{
    Config, Defaults, JobsConfig, RouteConfig, RouteKind, ServerConfig, StoreConfig, TenantRate,
    TlsFiles, WebhooksConfig,
};

/// Applies defaults and runs every cross-check.
pub(super) fn build(raw: RawConfig, src: &Source<'_>) -> Result<Config, ConfigError> {
    let defaults = settings(&DEFAULT_SETTINGS, &raw.defaults, "defaults", src)?;
    let jobs = jobs(raw.jobs);
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.iter().enumerate() {
        routes.push(route(i, r, &defaults, src)?);
    }
    paths::unique_names(&raw.routes, src)?;
    paths::routable_paths(&raw.routes, src)?;
    paths::outside_reserved_paths(&raw.routes, &routes, &jobs.path, src)?;
    let webhooks = webhooks(raw.webhooks);
    // Callbacks are always signed, so a route that takes one needs the master secret.
    if webhooks.signing_secret.is_none() {
        let needs = raw
            .routes
            .iter()
            .enumerate()
            .find_map(|(i, r)| Some((i, r.callback.as_ref()?)));
        if let Some((i, cb)) = needs {
            let msg = "callbacks are signed: set [webhooks].signing_secret".to_owned();
            return Err(src.error(format!("routes[{i}].callback"), Some(cb.span()), msg));
        }
    }
    // A download_url is always signed, so a route that hands them out needs the key.
    if jobs.signing_key.is_none() {
        let needs = raw.routes.iter().enumerate().find_map(|(i, r)| {
            let on = r.signed_results.as_ref().filter(|b| *b.get_ref())?;
            Some((i, on))
        });
        if let Some((i, on)) = needs {
            let msg = "signed result URLs need a key: set [jobs].signing_secret (a `whsec_` \
                       base64 secret or a passphrase; every replica needs the same one)"
                .to_owned();
            let key = format!("routes[{i}].signed_results");
            return Err(src.error(key, Some(on.span()), msg));
        }
    }
    Ok(Config {
        server: server(raw.server),
        defaults,
        jobs,
        webhooks,
        routes,
        overridden: Vec::new(),
    })
}

/// Most per-core runtimes `server.worker_threads` starts.
const MAX_WORKER_THREADS: u64 = 1024;

fn server(raw: RawServer) -> ServerConfig {
    ServerConfig {
        listen: raw
            .listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))),
        admin_listen: raw.admin_listen,
        header_read_timeout: raw.header_read_timeout.unwrap_or(Duration::from_secs(10)),
        drain_timeout: raw.drain_timeout.unwrap_or(Duration::from_secs(30)),
        drain_delay: raw.drain_delay.unwrap_or(Duration::ZERO),
        body_idle_timeout: raw.body_idle_timeout.unwrap_or(Duration::from_secs(60)),
        max_connections: usize::try_from(raw.max_connections.unwrap_or(10_000))
            .unwrap_or(usize::MAX),
        h2_max_concurrent_streams: u32::try_from(raw.h2_max_concurrent_streams.unwrap_or(1024))
            .unwrap_or(u32::MAX),
        // More threads than that are only contention; capped rather than refused.
        worker_threads: raw
            .worker_threads
            .map(|n| usize::try_from(n.min(MAX_WORKER_THREADS)).unwrap_or(1)),
        tenant_rate: raw.tenant_rate.map(|rate| TenantRate {
            per_second: rate,
            burst: raw.tenant_burst.unwrap_or(rate),
        }),
        tls: raw.tls.map(|t| TlsFiles {
            cert: t.cert,
            key: t.key,
        }),
        public_url: raw.public_url,
        trusted_proxies: raw.trusted_proxies.unwrap_or_default(),
    }
}

fn jobs(raw: RawJobs) -> JobsConfig {
    JobsConfig {
        path: raw.path.unwrap_or_else(|| "/jobs".to_owned()),
        store: raw
            .store
            .unwrap_or_else(|| StoreConfig::Sqlite(PathBuf::from("data/jobs.db"))),
        retention: raw.retention.unwrap_or(Duration::from_secs(24 * 3600)),
        tenant_header: raw.tenant_header,
        max_queued_per_tenant: raw.max_queued_per_tenant.unwrap_or(100_000),
        key_prefix: raw.key_prefix.unwrap_or_else(|| "prefer:".to_owned()),
        lease: raw.lease.unwrap_or(Duration::from_secs(30)),
        signing_key: raw.signing_secret,
        sse_heartbeat: raw.sse_heartbeat.unwrap_or(Duration::from_secs(15)),
    }
}

fn webhooks(raw: RawWebhooks) -> WebhooksConfig {
    let schedule = || [0, 120, 240, 480, 960].map(Duration::from_secs).to_vec();
    WebhooksConfig {
        signing_secret: raw.signing_secret,
        retry_schedule: raw.retry_schedule.unwrap_or_else(schedule),
        timeout: raw.timeout.unwrap_or(Duration::from_secs(15)),
        allow_http: raw.allow_http.unwrap_or(false),
        allow_networks: raw.allow_networks.unwrap_or_default(),
        allow_ports: raw.allow_ports.unwrap_or_else(|| vec![80, 443, 8080, 8443]),
        watch_limit: raw.watch_limit.unwrap_or(Duration::from_secs(24 * 3600)),
    }
}

/// `raw` merged over `base`; `at` is the table the keys live in (`defaults`, `routes[2]`).
fn settings(
    base: &Defaults,
    raw: &RawSettings,
    at: &str,
    src: &Source<'_>,
) -> Result<Defaults, ConfigError> {
    let merged = Defaults {
        poll_interval: raw.poll_interval.unwrap_or(base.poll_interval),
        max_wait: raw
            .max_wait
            .as_ref()
            .map_or(base.max_wait, |d| *d.get_ref()),
        min_wait: raw
            .min_wait
            .as_ref()
            .map_or(base.min_wait, |d| *d.get_ref()),
        sync_wait: raw.sync_wait.unwrap_or(base.sync_wait),
        upstream_timeout: raw.upstream_timeout.unwrap_or(base.upstream_timeout),
        max_body: raw.max_body.unwrap_or(base.max_body),
    };
    // Compared as the whole seconds `wait=N` is checked against (the floor rounds up, the
    // cap down), so e.g. 1500ms..1900ms — a floor of 2 s above a cap of 1 s — is refused.
    let limits = crate::config::types::WaitLimits::from_durations(merged.min_wait, merged.max_wait);
    if merged.min_wait > merged.max_wait || limits.min_secs > limits.max_secs {
        // Blame the key this table set; `base` itself was already checked.
        let (key, span) = match (&raw.min_wait, &raw.max_wait) {
            (Some(d), _) => ("min_wait", Some(d.span())),
            (None, Some(d)) => ("max_wait", Some(d.span())),
            (None, None) => ("min_wait", None),
        };
        let msg = format!(
            "min_wait ({}) must not exceed max_wait ({}) in whole seconds",
            humantime::format_duration(merged.min_wait),
            humantime::format_duration(merged.max_wait)
        );
        return Err(src.error(format!("{at}.{key}"), span, msg));
    }
    Ok(merged)
}

/// One route: settings merged, kind-specific keys checked.
fn route(
    i: usize,
    r: &RawRoute,
    defaults: &Defaults,
    src: &Source<'_>,
) -> Result<RouteConfig, ConfigError> {
    let at = format!("routes[{i}]");
    let kind = *r.kind.get_ref();
    let settings = settings(defaults, &r.settings(), &at, src)?;
    match (kind, &r.task) {
        (RouteKind::Task, None) => {
            let msg = "kind = \"task\" needs a [routes.task] table".to_owned();
            return Err(src.error(format!("{at}.kind"), Some(r.kind.span()), msg));
        }
        (RouteKind::Sync | RouteKind::Proxy, Some(task)) => {
            let msg = format!(
                "[routes.task] is only for kind = \"task\" (this route is \"{}\")",
                kind.as_str()
            );
            return Err(src.error(format!("{at}.task"), Some(task.span()), msg));
        }
        _ => {}
    }
    if kind == RouteKind::Proxy {
        let not_for_proxy = [
            ("mode", r.mode.as_ref().map(Spanned::span)),
            (
                "async_requires",
                r.async_requires.as_ref().map(Spanned::span),
            ),
            ("callback", r.callback.as_ref().map(Spanned::span)),
            (
                "callback_events",
                r.callback_events.as_ref().map(Spanned::span),
            ),
            ("idempotency", r.idempotency.as_ref().map(Spanned::span)),
            ("max_in_flight", r.max_in_flight.as_ref().map(Spanned::span)),
            (
                "max_queue_time",
                r.max_queue_time.as_ref().map(Spanned::span),
            ),
            ("max_run_time", r.max_run_time.as_ref().map(Spanned::span)),
            (
                "retry_interrupted",
                r.retry_interrupted.as_ref().map(Spanned::span),
            ),
            ("retry", r.retry.as_ref().map(Spanned::span)),
            (
                "signed_results",
                r.signed_results.as_ref().map(Spanned::span),
            ),
            ("admission", r.admission.as_ref().map(Spanned::span)),
        ];
        if let Some((key, span)) = not_for_proxy.into_iter().find(|(_, s)| s.is_some()) {
            let msg = format!(
                "`{key}` does not apply to kind = \"proxy\" (a proxy route forwards Prefer \
                 untouched and runs no jobs)"
            );
            return Err(src.error(format!("{at}.{key}"), span, msg));
        }
    }
    // Only a job has a stored result to link to: a task route makes one only to watch an
    // operation for its callback. Refused rather than ignored, so nobody relies on links
    // that never come.
    let on = r.signed_results.as_ref().filter(|b| *b.get_ref());
    let driven = r
        .task
        .as_ref()
        .is_some_and(|t| t.get_ref().callback.is_some());
    if let (RouteKind::Task, None, false, Some(on)) = (kind, &r.callback, driven, on) {
        let msg = "`signed_results` needs jobs: a task route makes one only with `callback` \
                   or `task.callback`"
            .to_owned();
        return Err(src.error(format!("{at}.signed_results"), Some(on.span()), msg));
    }
    // A zero limit would cancel every job before it starts: refused as a typo.
    for (key, limit) in [
        ("max_queue_time", &r.max_queue_time),
        ("max_run_time", &r.max_run_time),
    ] {
        if let Some(d) = limit.as_ref().filter(|d| d.get_ref().is_zero()) {
            let msg = format!("`{key}` must be greater than zero");
            return Err(src.error(format!("{at}.{key}"), Some(d.span()), msg));
        }
    }
    if let (Some(events), None) = (&r.callback_events, &r.callback) {
        let msg = "`callback_events` needs `callback` (the events go to its URL)".to_owned();
        return Err(src.error(format!("{at}.callback_events"), Some(events.span()), msg));
    }
    let retry = retry::retry(&at, kind, r.retry.as_ref(), src)?;
    let default_job = match &r.default {
        None => false,
        Some(d) if kind != RouteKind::Sync => {
            let msg = "`default` is only for kind = \"sync\" (what a request without Prefer \
                       does there)"
                .to_owned();
            return Err(src.error(format!("{at}.default"), Some(d.span()), msg));
        }
        Some(d) => match d.get_ref().as_str() {
            "proxy" => false,
            "job" => true,
            other => {
                let msg = format!("expected \"proxy\" or \"job\", found {other:?}");
                return Err(src.error(format!("{at}.default"), Some(d.span()), msg));
            }
        },
    };
    Ok(RouteConfig {
        name: r.name.get_ref().clone(),
        kind,
        methods: r.methods.clone(),
        path: r.path.get_ref().clone(),
        upstream: r.upstream.clone(),
        settings,
        mode: r.mode.as_ref().map(|m| m.get_ref().clone()),
        async_requires: r
            .async_requires
            .as_ref()
            .map(|rules| rules.get_ref().clone())
            .unwrap_or_default(),
        callback: r.callback.as_ref().map(|c| c.get_ref().clone()),
        callback_events: r.callback_events.as_ref().map(|c| c.get_ref().clone()),
        idempotency: r.idempotency.as_ref().map(|c| c.get_ref().clone()),
        max_in_flight: r.max_in_flight.as_ref().map_or(64, |n| *n.get_ref()),
        retry_interrupted: r.retry_interrupted.as_ref().is_some_and(|b| *b.get_ref()),
        retry,
        max_queue_time: r.max_queue_time.as_ref().map(|d| *d.get_ref()),
        max_run_time: r.max_run_time.as_ref().map(|d| *d.get_ref()),
        signed_results: on.is_some(),
        task: r.task.as_ref().map(|t| t.get_ref().clone()),
        admission: r.admission.as_ref().map(|a| a.get_ref().clone()),
        default_job,
    })
}
