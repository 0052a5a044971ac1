//! The file's serde shape: one raw struct per table, `deny_unknown_fields` everywhere.
//!
//! Every string value is parsed *during* deserialisation by a `deserialize_with` function that
//! runs a parser from [`super::values`]. That placement is the point: an error raised inside a
//! value's deserialisation gets that value's byte span from toml and its key path from
//! `serde_path_to_error`, so every message can say `routes[1].task.status_url` at line:col
//! without hand-written bookkeeping. Fields that later cross-checks must point at are kept as
//! `toml::Spanned<T>`. Defaults are *not* applied here (`None` = left out); see `super::build`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderName, Method};
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::config::{
    AdmissionConfig, AsyncRule, ByteSize, FieldSource, IdSource, JsonPointer, ModeConfig, ModeKind,
    RetryOn, RouteKind, StoreConfig, TaskConfig,
};
use crate::signed_url::UrlKey;

// The `deserialize_with` functions named in the attributes below.
mod fields;
use fields::*;

// === the tables ===

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "the gateway configuration")]
pub(super) struct RawConfig {
    pub server: RawServer,
    pub defaults: RawSettings,
    pub jobs: RawJobs,
    pub webhooks: RawWebhooks,
    pub routes: Vec<RawRoute>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a [server] table")]
pub(super) struct RawServer {
    #[serde(deserialize_with = "opt_addr")]
    pub listen: Option<SocketAddr>,
    #[serde(deserialize_with = "opt_addr")]
    pub admin_listen: Option<SocketAddr>,
    #[serde(deserialize_with = "opt_positive")]
    pub header_read_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_duration")]
    pub drain_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_duration")]
    pub drain_delay: Option<Duration>,
    #[serde(deserialize_with = "opt_positive")]
    pub body_idle_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub max_connections: Option<u64>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub h2_max_concurrent_streams: Option<u64>,
    pub worker_threads: Option<u64>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub tenant_rate: Option<u64>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub tenant_burst: Option<u64>,
    pub tls: Option<RawTls>,
    #[serde(deserialize_with = "opt_public_url")]
    pub public_url: Option<String>,
    #[serde(deserialize_with = "opt_networks")]
    pub trusted_proxies: Option<Vec<ipnet::IpNet>>,
}

/// `[server].tls`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { cert = \"…\", key = \"…\" }"
)]
pub(super) struct RawTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// `[defaults]`, and the same six keys as written on a route.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a [defaults] table")]
pub(super) struct RawSettings {
    #[serde(deserialize_with = "opt_positive")]
    pub poll_interval: Option<Duration>,
    #[serde(deserialize_with = "opt_spanned_duration")]
    pub max_wait: Option<Spanned<Duration>>,
    #[serde(deserialize_with = "opt_spanned_duration")]
    pub min_wait: Option<Spanned<Duration>>,
    #[serde(deserialize_with = "opt_duration")]
    pub sync_wait: Option<Duration>,
    #[serde(deserialize_with = "opt_positive")]
    pub upstream_timeout: Option<Duration>,
    #[serde(deserialize_with = "opt_size")]
    pub max_body: Option<ByteSize>,
}

/// `[jobs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a [jobs] table")]
pub(super) struct RawJobs {
    #[serde(deserialize_with = "opt_jobs_path")]
    pub path: Option<String>,
    #[serde(deserialize_with = "opt_store")]
    pub store: Option<StoreConfig>,
    #[serde(deserialize_with = "opt_positive")]
    pub retention: Option<Duration>,
    #[serde(deserialize_with = "opt_header")]
    pub tenant_header: Option<HeaderName>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub max_queued_per_tenant: Option<u64>,
    /// Redis key prefix (not in the example file, which is the shared schema).
    pub key_prefix: Option<String>,
    /// How long a runner's claim on a job lasts without renewal (not in the example file).
    #[serde(deserialize_with = "opt_positive")]
    pub lease: Option<Duration>,
    /// The secret signed result URLs derive their key from (read and derived here).
    #[serde(deserialize_with = "opt_url_key")]
    pub signing_secret: Option<UrlKey>,
    /// Longest silence on a live status stream before a heartbeat (not in the example file).
    #[serde(deserialize_with = "opt_positive")]
    pub sse_heartbeat: Option<Duration>,
}

/// `[webhooks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, expecting = "a [webhooks] table")]
pub(super) struct RawWebhooks {
    #[serde(deserialize_with = "opt_secret")]
    pub signing_secret: Option<String>,
    #[serde(deserialize_with = "opt_schedule")]
    pub retry_schedule: Option<Vec<Duration>>,
    #[serde(deserialize_with = "opt_positive")]
    pub timeout: Option<Duration>,
    pub allow_http: Option<bool>,
    #[serde(deserialize_with = "opt_networks")]
    pub allow_networks: Option<Vec<ipnet::IpNet>>,
    /// Ports a callback URL may use; `[]` allows any (not in the example file).
    pub allow_ports: Option<Vec<u16>>,
    /// How long a `task` route's handed-off operation is watched for its callback.
    #[serde(deserialize_with = "opt_positive")]
    pub watch_limit: Option<Duration>,
}

/// One `[[routes]]` entry. The six settings keys repeat [`RawSettings`] because
/// `#[serde(flatten)]` would defeat both `deny_unknown_fields` and the spans.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[routes]] table")]
pub(super) struct RawRoute {
    #[serde(deserialize_with = "route_name")]
    pub name: Spanned<String>,
    #[serde(deserialize_with = "route_kind")]
    pub kind: Spanned<RouteKind>,
    #[serde(deserialize_with = "methods")]
    pub methods: Vec<Method>,
    #[serde(deserialize_with = "route_path")]
    pub path: Spanned<String>,
    #[serde(deserialize_with = "upstream")]
    pub upstream: Url,
    #[serde(default, deserialize_with = "opt_positive")]
    pub poll_interval: Option<Duration>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub max_wait: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub min_wait: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub sync_wait: Option<Duration>,
    #[serde(default, deserialize_with = "opt_positive")]
    pub upstream_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_size")]
    pub max_body: Option<ByteSize>,
    #[serde(default, deserialize_with = "opt_mode")]
    pub mode: Option<Spanned<ModeConfig>>,
    #[serde(default, deserialize_with = "opt_async_requires")]
    pub async_requires: Option<Spanned<Vec<AsyncRule>>>,
    #[serde(default, deserialize_with = "opt_field")]
    pub callback: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_field")]
    pub callback_events: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_field")]
    pub idempotency: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_in_flight")]
    pub max_in_flight: Option<Spanned<u32>>,
    #[serde(default)]
    pub retry_interrupted: Option<Spanned<bool>>,
    #[serde(default)]
    pub retry: Option<Spanned<RawRetry>>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub max_queue_time: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub max_run_time: Option<Spanned<Duration>>,
    #[serde(default)]
    pub signed_results: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "opt_task")]
    pub task: Option<Spanned<TaskConfig>>,
    #[serde(default, deserialize_with = "opt_admission")]
    pub admission: Option<Spanned<AdmissionConfig>>,
    /// `"proxy"` (the default) or `"job"`: what a `sync` route does without `Prefer`.
    #[serde(default)]
    pub default: Option<Spanned<String>>,
}

impl RawRoute {
    /// The route's own settings keys, in the shape of `[defaults]`.
    pub fn settings(&self) -> RawSettings {
        RawSettings {
            poll_interval: self.poll_interval,
            max_wait: self.max_wait.clone(),
            min_wait: self.min_wait.clone(),
            sync_wait: self.sync_wait,
            upstream_timeout: self.upstream_timeout,
            max_body: self.max_body,
        }
    }
}

/// `mode = { query = "…" | json = "/ptr", kind?, deprecation?, sunset?, link? }`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inline table such as { query = \"mode\" }"
)]
struct RawMode {
    #[serde(default, deserialize_with = "opt_query")]
    query: Option<String>,
    #[serde(default, deserialize_with = "opt_field_pointer")]
    json: Option<JsonPointer>,
    #[serde(default, deserialize_with = "opt_mode_kind")]
    kind: Option<ModeKind>,
    #[serde(default, deserialize_with = "opt_date")]
    deprecation: Option<SystemTime>,
    #[serde(default, deserialize_with = "opt_date")]
    sunset: Option<SystemTime>,
    #[serde(default, deserialize_with = "opt_link")]
    link: Option<Url>,
}

/// `{ json = "/ptr" } | { header = "Name" }` (callback, idempotency).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inline table such as { json = \"/callback_url\" }"
)]
struct RawField {
    #[serde(default, deserialize_with = "opt_field_pointer")]
    json: Option<JsonPointer>,
    #[serde(default, deserialize_with = "opt_header")]
    header: Option<HeaderName>,
}

/// `admission = { url = "…", timeout? }`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inline table such as { url = \"http://billing:9000/admission\" }"
)]
struct RawAdmission {
    #[serde(deserialize_with = "admission_url")]
    url: Url,
    #[serde(default, deserialize_with = "opt_positive")]
    timeout: Option<Duration>,
}

/// `retry = { attempts?, backoff?, max_backoff?, on? }` (see [`crate::config::retry`]);
/// the durations stay spanned for the `backoff ≤ max_backoff` check in `build`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an inline table such as { attempts = 3, on = [\"connect\", \"503\"] }"
)]
pub(super) struct RawRetry {
    #[serde(default, deserialize_with = "opt_in_flight")]
    pub attempts: Option<Spanned<u32>>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub backoff: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "opt_spanned_duration")]
    pub max_backoff: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "opt_retry_on")]
    pub on: Option<Vec<RetryOn>>,
}

/// `[routes.task]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [routes.task] table")]
struct RawTask {
    #[serde(deserialize_with = "id_source")]
    id: IdSource,
    #[serde(deserialize_with = "status_url")]
    status_url: String,
    #[serde(default, deserialize_with = "opt_pointer")]
    state: Option<JsonPointer>,
    #[serde(default, deserialize_with = "opt_states")]
    succeeded: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_states")]
    failed: Option<Vec<String>>,
    #[serde(default)]
    cancel: Option<RawTaskCancel>,
    #[serde(default, deserialize_with = "opt_field")]
    callback: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_positive")]
    fallback_poll_interval: Option<Duration>,
}

/// `[routes.task].cancel`: the upstream's cancel call.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { method = \"POST\", url = \"/v1/tasks/{id}/cancel\" }"
)]
struct RawTaskCancel {
    #[serde(default, deserialize_with = "opt_method")]
    method: Option<Method>,
    #[serde(deserialize_with = "status_url")]
    url: String,
}
