//! Validated gateway configuration: the typed form of `gateway.example.toml`.
//!
//! The structs here are what the rest of the gateway reads; every value is already checked
//! (durations parsed, sizes parsed, JSON pointers and URLs validated, routes unique), so no
//! caller ever re-validates. Loading and error reporting (key, line, column) live in
//! [`load`]; the small value types with their own parsing rules live in [`types`].
//!
//! Every key of the example file is in use: `[jobs]` and the route keys `idempotency`,
//! `max_in_flight`, `retry_interrupted` by gateway jobs, `[webhooks]` and `callback` by
//! signed callbacks, `[jobs].signing_secret` and `signed_results` by signed result URLs,
//! `mode` (with its `kind`) and `async_requires` by [`crate::intent`].
//! `server.admin_listen` serves `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.

pub mod env;
pub mod load;
pub mod retry;
pub mod table;
pub mod tls;
pub mod types;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub(crate) use load::public_url_value;
pub use load::{load_file, load_str, ConfigError};
pub use retry::{RetryConfig, RetryOn};
pub use types::{ByteSize, IdSource, JsonPointer};

use crate::signed_url::UrlKey;

/// Where a tenant reads its webhook signing secret: one of the gateway's own endpoints, so
/// no route may use it while the gateway serves it (see [`RouteConfig::runs_jobs`]).
pub const WEBHOOK_SECRET_PATH: &str = "/webhook-secret";

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: listeners and connection limits.
    pub server: ServerConfig,
    /// `[defaults]`: values every route inherits.
    pub defaults: Defaults,
    /// `[jobs]`: gateway jobs for `sync` routes.
    pub jobs: JobsConfig,
    /// `[webhooks]`: signed callbacks.
    pub webhooks: WebhooksConfig,
    /// `[[routes]]`, in file order.
    pub routes: Vec<RouteConfig>,
    /// The environment overrides in force (see [`env`]), by variable name.
    pub overridden: Vec<&'static str>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Client-facing listener (HTTP/1.1 and h2c). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Admin listener (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`); `None` disables it.
    pub admin_listen: Option<SocketAddr>,
    /// Longest time a client may take to send the request head. Default 10 s.
    pub header_read_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish. Default 30 s.
    pub drain_timeout: Duration,
    /// On SIGTERM, how long `/readyz` reports unready while traffic is still served, before
    /// the listener closes (so load balancers stop sending first). Default 0 s.
    pub drain_delay: Duration,
    /// Longest gap between two reads of a request body (slow uploads → `408`). Default 60 s.
    pub body_idle_timeout: Duration,
    /// Most open client connections; at the limit the listener stops accepting until one
    /// closes (the kernel's backlog holds the rest). Default 10,000.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per connection. Default 1024.
    pub h2_max_concurrent_streams: u32,
    /// How many per-core runtimes serve client connections (`crate::server::cores`);
    /// `None` (the default) = one per CPU the process may use; `Some(0)` serves them on
    /// the main work-stealing runtime instead. Fixed at start (a reload keeps it).
    pub worker_threads: Option<usize>,
    /// Per-tenant request rate (`429` beyond it); `None` = unlimited (the default).
    pub tenant_rate: Option<TenantRate>,
    /// Serve TLS (HTTPS, ALPN `h2` and `http/1.1`) instead of cleartext; `None` = cleartext.
    pub tls: Option<TlsFiles>,
    /// The base of every URL the gateway hands out (`https://api.example.com`, a path
    /// prefix allowed, no trailing `/`); `None` = the request's own scheme and host.
    pub public_url: Option<String>,
    /// Peers whose `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` are believed when
    /// building those URLs (and passed on upstream). Default: none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[server].tls`: PEM files, read at start and again on every reload (certificate
/// rotation). Relative paths are relative to the working directory, as the SQLite path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// A token bucket: `per_second` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRate {
    /// Sustained requests per second.
    pub per_second: u64,
    /// Bucket size. Default: `per_second`.
    pub burst: u64,
}

/// `[defaults]`, and the per-route overrides once resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// How often a waiting request polls a task's status URL. Default 1 s.
    pub poll_interval: Duration,
    /// `wait=N` above this is capped to it. Default 600 s.
    pub max_wait: Duration,
    /// `wait=N` below this is ignored. Default 1 s (not in the example file; documented).
    pub min_wait: Duration,
    /// How long a request without `Prefer` waits on a task route. Default 60 s.
    pub sync_wait: Duration,
    /// `sync`/`proxy` routes: longest upstream call (until the response head). Default 60 s.
    pub upstream_timeout: Duration,
    /// Largest request body the gateway buffers (jobs, JSON `mode`, `async_requires`).
    /// Default 10 MiB.
    pub max_body: ByteSize,
}

/// Where jobs are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In-process only; lost on restart (tests, demos).
    Memory,
    /// `sqlite:PATH`: the embedded durable store.
    Sqlite(PathBuf),
    /// `redis://HOST:PORT/DB`: shared by many replicas.
    Redis(url::Url),
}

/// `[jobs]`.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Prefix of the job API (`GET {path}/{id}`). Default `/jobs`.
    pub path: String,
    /// Job store. Default `sqlite:data/jobs.db`.
    pub store: StoreConfig,
    /// How long a finished job stays readable before it answers `410`. Default 24 h.
    pub retention: Duration,
    /// Header that scopes jobs to a tenant; `None` for a single-tenant gateway.
    pub tenant_header: Option<http::HeaderName>,
    /// Unfinished jobs per tenant before `429`. Default 100,000.
    pub max_queued_per_tenant: u64,
    /// Prefix of every key the Redis store writes, so several gateways (or other
    /// applications) can share one Redis database. Default `"prefer:"`.
    pub key_prefix: String,
    /// How long a runner's claim on a job (or a callback delivery) lasts without renewal;
    /// a replica that dies leaves its jobs to others this long after its last renewal.
    /// Renewed every third of it. Default 30 s.
    pub lease: Duration,
    /// The key of signed result URLs, derived from `[jobs].signing_secret`; `None` when
    /// the secret is not configured (then no route may have `signed_results`).
    pub signing_key: Option<UrlKey>,
    /// How long a live status stream (`GET {path}/{id}` with `Accept: text/event-stream`)
    /// may stay silent before it gets a heartbeat comment. Default 15 s.
    pub sse_heartbeat: Duration,
}

/// `[webhooks]`.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Master secret; per-tenant keys derive from it. `None` when not configured.
    pub signing_secret: Option<String>,
    /// One delivery attempt per entry (delay after the previous attempt).
    pub retry_schedule: Vec<Duration>,
    /// Per-attempt timeout. Default 15 s.
    pub timeout: Duration,
    /// Whether plain-http callback URLs are allowed (development only).
    pub allow_http: bool,
    /// Networks exempt from the public-address rule.
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Ports a callback URL may use (default 80, 443, 8080, 8443); empty allows any.
    pub allow_ports: Vec<u16>,
    /// How long a `task` route's handed-off operation is watched for its callback
    /// (default 24 h); past it the callback reports `watch_expired`.
    pub watch_limit: Duration,
}

/// What a route does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Plain streaming reverse proxy; `Prefer` forwarded untouched.
    Proxy,
    /// Async-first upstream: the gateway polls its status URL.
    Task,
    /// Synchronous upstream: the gateway runs calls as jobs.
    Sync,
}

impl RouteKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Proxy => "proxy",
            RouteKind::Task => "task",
            RouteKind::Sync => "sync",
        }
    }
}

/// One `[[routes]]` entry, with defaults already merged in.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Unique name (logs, metrics).
    pub name: String,
    /// Route kind.
    pub kind: RouteKind,
    /// Methods this route answers (upper-case, at least one).
    pub methods: Vec<http::Method>,
    /// matchit path pattern, e.g. `/v1/tasks/{id}`.
    pub path: String,
    /// Upstream base URL (`http://host:port`, optionally with a path prefix).
    pub upstream: url::Url,
    /// Effective timing and size settings (route overrides merged over `[defaults]`).
    pub settings: Defaults,
    /// Where the deprecated `mode` parameter (or a boolean opt-in field) lives, if the
    /// route has one.
    pub mode: Option<ModeConfig>,
    /// Body fields an asynchronous request (ASYNC or WAIT) must hold (`async_requires`),
    /// in file order; empty when the route has none.
    pub async_requires: Vec<AsyncRule>,
    /// Where a callback URL comes from (signed webhooks).
    pub callback: Option<FieldSource>,
    /// Where the client names the events it wants delivered besides the terminal one
    /// (`callback_events`: `started`); only with `callback`. Default none: terminal only.
    pub callback_events: Option<FieldSource>,
    /// Where an idempotency key may come from besides the header (gateway jobs).
    pub idempotency: Option<FieldSource>,
    /// Concurrent upstream calls for this route's jobs. Default 64.
    pub max_in_flight: u32,
    /// Re-run jobs a crash interrupted. Default false.
    pub retry_interrupted: bool,
    /// Which transient upstream failures a job's call retries (see [`retry`]). Default:
    /// 3 attempts, a refused connection only.
    pub retry: RetryConfig,
    /// A job not started this long after it was accepted is canceled unsent
    /// (`deadline_exceeded`; see [`crate::store::deadline`]). Default none.
    pub max_queue_time: Option<Duration>,
    /// A job still running this long after it started has its call aborted and is
    /// canceled (`deadline_exceeded`). Default none.
    pub max_run_time: Option<Duration>,
    /// Finished jobs' status documents carry a signed `download_url`. Default false.
    pub signed_results: bool,
    /// `[routes.task]`: required for `kind = "task"`, refused otherwise.
    pub task: Option<TaskConfig>,
    /// The admission endpoint asked before work is accepted (see [`crate::admission`]).
    pub admission: Option<AdmissionConfig>,
    /// `default = "job"` on a `sync` route: a request without `Prefer` runs as a job too,
    /// answered like `wait = sync_wait` without `Preference-Applied` (the `202` handle
    /// instead of a `504`). `false` (`"proxy"`, the default): it streams through.
    pub default_job: bool,
}

impl RouteConfig {
    /// Whether requests on this route can become gateway jobs: every `sync` route, and a
    /// `task` route that watches operations for a callback, holds admission reservations,
    /// or is callback-driven (`task.callback`: every operation is a watch). While any route does, the gateway serves its own endpoints (the job
    /// API under `jobs.path`, [`WEBHOOK_SECRET_PATH`]), so loading reserves those paths.
    pub fn runs_jobs(&self) -> bool {
        self.kind == RouteKind::Sync
            || (self.kind == RouteKind::Task
                && (self.callback.is_some()
                    || self.admission.is_some()
                    || self.task.as_ref().is_some_and(|t| t.callback.is_some())))
    }
}

/// `admission = { url, timeout }` on a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Where the gateway `POST`s reserve, settle and release (`http` or `https`).
    pub url: url::Url,
    /// How long one call may take. Default 5 s.
    pub timeout: Duration,
}

/// Where the deprecated `mode` parameter lives and how its deprecation is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeConfig {
    /// Query parameter name or JSON body field.
    pub source: ModeSource,
    /// What the value means: `sync|async|auto` or a boolean opt-in.
    pub kind: ModeKind,
    /// `Deprecation` date (RFC 9745); `None` renders `@0` ("deprecated, date not given").
    pub deprecation: Option<SystemTime>,
    /// `Sunset` date (RFC 8594), sent when configured.
    pub sunset: Option<SystemTime>,
    /// `Link: <…>; rel="deprecation"`, sent when configured.
    pub link: Option<url::Url>,
}

/// Location of the deprecated `mode` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSource {
    /// `?name=async`
    Query(String),
    /// A JSON pointer into a JSON request body.
    Json(JsonPointer),
}

/// How the `mode` value is read (`routes[].mode.kind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModeKind {
    /// `"enum"` (the default): `async`, `sync` or `auto`.
    #[default]
    Enum,
    /// `"bool"`: an opt-in flag such as `"async": true`; `true` → ASYNC, `false` → DEFAULT.
    Bool,
}

impl ModeKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModeKind::Enum => "enum",
            ModeKind::Bool => "bool",
        }
    }
}

/// One `async_requires` entry: the body field at `field` must equal `expected` (JSON
/// equality) when the request is asynchronous, else `422`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncRule {
    /// Where the field is in the JSON body.
    pub field: JsonPointer,
    /// The value it must hold: a string, boolean, integer or finite float.
    pub expected: serde_json::Value,
}

/// A value carried in a JSON body field or a header (callback URL, idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A JSON pointer into the request body.
    Json(JsonPointer),
    /// A request header.
    Header(http::HeaderName),
}

/// `[routes.task]`: how to read an async-first upstream's contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskConfig {
    /// Where the operation id is in the submit's 202.
    pub id: IdSource,
    /// Status URL template containing `{id}`; relative to the upstream or absolute.
    pub status_url: String,
    /// JSON pointer to the state in the status body.
    pub state: JsonPointer,
    /// State values that mean success.
    pub succeeded: Vec<String>,
    /// State values that mean failure.
    pub failed: Vec<String>,
    /// How to ask the upstream to cancel an operation the gateway stops watching (a
    /// deadline, or `DELETE` of the watch job); none: the operation is left alone. Boxed:
    /// rarely set, and it would otherwise double the size of every route's `Kind`.
    pub cancel: Option<Box<TaskCancel>>,
    /// `callback = { json | header }`: the upstream reports completion to a one-time URL
    /// the gateway puts into the submit (see `crate::task::callback`). Boxed like `cancel`.
    pub callback: Option<Box<TaskCallback>>,
}

/// `[routes.task].callback` and `fallback_poll_interval`: a callback-driven task route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCallback {
    /// Where the submit takes the callback URL: a JSON body member (set, created if
    /// absent) or a request header.
    pub at: FieldSource,
    /// How often the gateway still polls the status URL while it waits for the callback
    /// (instead of `poll_interval`). Default 30 s.
    pub fallback_poll_interval: Duration,
}

/// The default `fallback_poll_interval`.
pub const DEFAULT_FALLBACK_POLL: Duration = Duration::from_secs(30);

/// `[routes.task].cancel = { method, url }`: the upstream's cancel call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCancel {
    /// Default `POST`.
    pub method: http::Method,
    /// URL template containing `{id}`, like `status_url`.
    pub url: String,
}
