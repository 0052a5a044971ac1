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
use serde::de::{self, DeserializeSeed, Deserializer};
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::seed::{non_empty, p, spanned, List, Parse};
use super::values as v;
use crate::config::{
    ByteSize, FieldSource, IdSource, JsonPointer, ModeConfig, ModeSource, RouteKind, StoreConfig,
    TaskConfig,
};

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
    #[serde(deserialize_with = "opt_at_least_one")]
    pub tenant_rate: Option<u64>,
    #[serde(deserialize_with = "opt_at_least_one")]
    pub tenant_burst: Option<u64>,
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
    #[serde(default, deserialize_with = "opt_field")]
    pub callback: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_field")]
    pub idempotency: Option<Spanned<FieldSource>>,
    #[serde(default, deserialize_with = "opt_in_flight")]
    pub max_in_flight: Option<Spanned<u32>>,
    #[serde(default)]
    pub retry_interrupted: Option<Spanned<bool>>,
    #[serde(default, deserialize_with = "opt_task")]
    pub task: Option<Spanned<TaskConfig>>,
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

/// `mode = { query = "…" | json = "/ptr", deprecation?, sunset?, link? }`.
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
}

// === deserialize_with functions ===

/// `fn name(d) -> Result<Option<T>, _>` for each optional plain value.
macro_rules! optional {
    ($($name:ident: $t:ty = $what:literal, $parse:path;)*) => {$(
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            p($what, $parse).deserialize(d).map(Some)
        }
    )*};
}

optional! {
    opt_addr: SocketAddr = "an address such as \"127.0.0.1:8080\"", v::socket_addr;
    opt_duration: Duration = "a duration such as \"1s\"", v::duration;
    opt_positive: Duration = "a duration such as \"1s\"", v::positive_duration;
    opt_size: ByteSize = "a size such as \"10MiB\"", v::size;
    opt_jobs_path: String = "a path such as \"/jobs\"", v::jobs_path;
    opt_store: StoreConfig = "a store such as \"memory\"", v::store;
    opt_header: HeaderName = "a header name", v::header_name;
    opt_query: String = "a query parameter name", v::query_name;
    opt_pointer: JsonPointer = "a JSON pointer such as \"/status\"", v::pointer;
    opt_field_pointer: JsonPointer = "a JSON pointer such as \"/mode\"", v::field_pointer;
    opt_link: Url = "a URL", v::link;
}

fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    let what = "a date such as \"2026-06-01T00:00:00Z\"";
    Parse {
        what,
        parse: v::date,
        datetime: true,
    }
    .deserialize(d)
    .map(Some)
}

fn opt_spanned_duration<'de, D>(d: D) -> Result<Option<Spanned<Duration>>, D::Error>
where
    D: Deserializer<'de>,
{
    spanned(d, v::duration).map(Some)
}

fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match String::deserialize(d)? {
        s if s.is_empty() => Err(de::Error::custom("must not be empty (leave the key out)")),
        s => Ok(Some(s)),
    }
}

fn opt_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(de::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

fn opt_in_flight<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<u32>>, D::Error> {
    let n = Spanned::<u32>::deserialize(d)?;
    if *n.get_ref() == 0 {
        return Err(de::Error::custom("must be at least 1"));
    }
    Ok(Some(n))
}

fn opt_schedule<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Duration>>, D::Error> {
    non_empty(d, p("a duration such as \"2m\"", v::duration), false).map(Some)
}

fn opt_networks<'de, D>(d: D) -> Result<Option<Vec<ipnet::IpNet>>, D::Error>
where
    D: Deserializer<'de>,
{
    let item = p("a network such as \"127.0.0.0/8\"", v::cidr);
    d.deserialize_seq(List {
        item,
        unique: false,
    })
    .map(Some)
}

fn opt_states<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(d, p("a state string", v::state), true).map(Some)
}

fn route_name<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<String>, D::Error> {
    spanned(d, v::route_name)
}

fn route_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<RouteKind>, D::Error> {
    spanned(d, v::route_kind)
}

fn route_path<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<String>, D::Error> {
    spanned(d, v::route_path)
}

fn methods<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Method>, D::Error> {
    non_empty(d, p("an HTTP method such as \"GET\"", v::method), true)
}

fn upstream<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    p("a URL such as \"http://127.0.0.1:9000\"", v::upstream).deserialize(d)
}

fn id_source<'de, D: Deserializer<'de>>(d: D) -> Result<IdSource, D::Error> {
    p("a JSON pointer or \"header:NAME\"", v::id_source).deserialize(d)
}

fn status_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    p("a URL template such as \"/v1/tasks/{id}\"", v::status_url).deserialize(d)
}

fn opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<ModeConfig>>, D::Error> {
    let raw = Spanned::<RawMode>::deserialize(d)?;
    let span = raw.span();
    let raw = raw.into_inner();
    let source = match (raw.query, raw.json) {
        (Some(q), None) => ModeSource::Query(q),
        (None, Some(ptr)) => ModeSource::Json(ptr),
        _ => {
            return Err(de::Error::custom(
                "mode needs exactly one of `query` or `json`",
            ))
        }
    };
    if let (Some(dep), Some(sunset)) = (raw.deprecation, raw.sunset) {
        if sunset < dep {
            return Err(de::Error::custom("sunset must not be before deprecation"));
        }
    }
    let mode = ModeConfig {
        source,
        deprecation: raw.deprecation,
        sunset: raw.sunset,
        link: raw.link,
    };
    Ok(Some(Spanned::new(span, mode)))
}

fn opt_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<FieldSource>>, D::Error> {
    let raw = Spanned::<RawField>::deserialize(d)?;
    let span = raw.span();
    let source = match raw.into_inner() {
        RawField {
            json: Some(ptr),
            header: None,
        } => FieldSource::Json(ptr),
        RawField {
            json: None,
            header: Some(h),
        } => FieldSource::Header(h),
        _ => return Err(de::Error::custom("needs exactly one of `json` or `header`")),
    };
    Ok(Some(Spanned::new(span, source)))
}

fn opt_task<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<TaskConfig>>, D::Error> {
    let raw = Spanned::<RawTask>::deserialize(d)?;
    let span = raw.span();
    let raw = raw.into_inner();
    let succeeded = raw
        .succeeded
        .unwrap_or_else(|| vec!["succeeded".to_owned()]);
    let failed = raw.failed.unwrap_or_else(|| vec!["failed".to_owned()]);
    if let Some(both) = succeeded.iter().find(|s| failed.contains(s)) {
        return Err(de::Error::custom(format!(
            "state {both:?} is in both succeeded and failed"
        )));
    }
    let state = match raw.state {
        Some(ptr) => ptr,
        None => v::pointer("/status").map_err(de::Error::custom)?,
    };
    let task = TaskConfig {
        id: raw.id,
        status_url: raw.status_url,
        state,
        succeeded,
        failed,
    };
    Ok(Some(Spanned::new(span, task)))
}
