//! Prometheus metrics, served on the admin listener at `/metrics` (OpenMetrics text format,
//! which Prometheus scrapes natively).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `prefer_gateway_requests_total` | counter | `route`, `status`, `preference` |
//! | `prefer_gateway_request_duration_seconds` | histogram | `route` |
//! | `prefer_gateway_upstream_duration_seconds` | histogram | `route` |
//! | `prefer_gateway_waiting_requests` | gauge | — |
//! | `prefer_gateway_polls_total` | counter | `outcome` = pending, terminal, transient, broken |
//! | `prefer_gateway_jobs` | gauge | `route`, `state` = pending, running (from the store, all replicas) |
//! | `prefer_gateway_queue_depth` | gauge | `route` (pending jobs, from the store) |
//! | `prefer_gateway_jobs_finished_total` | counter | `route`, `state` (this replica) |
//! | `prefer_gateway_event_streams` | gauge | `route` (open live status streams, this replica) |
//! | `prefer_gateway_webhook_attempts_total` | counter | `outcome` = delivered, retry, gone, failed |
//! | `prefer_gateway_admission_checks_total` | counter | `outcome` = admitted, refused, unavailable |
//! | `prefer_gateway_task_callbacks_total` | counter | `outcome` = completed, progress, repeated, unknown, refused |
//! | `prefer_gateway_admission_notices_total` | counter | `outcome` = delivered, retry, gone, failed |
//! | `prefer_gateway_store_errors_total` | counter | — |
//! | `prefer_gateway_config_reloads_total` | counter | `outcome` = applied, rejected |
//!
//! Decisions:
//! - **One process-wide set** (as every Prometheus client's default registry): the pollers,
//!   the job engine and the webhook deliverer count into it without being handed a value.
//!   Several gateways in one process (tests) share it; their route labels keep them apart.
//! - `route` is the route's configured `name`; requests that matched no route are
//!   `route="-"`, the jobs API is `route="jobs-api"`. `preference` is what the answer's
//!   `Preference-Applied` says: `respond-async`, `wait`, or `none`.
//! - **Per-route handles** ([`RouteMetrics`]): a route's latency histograms and its
//!   `status="200",preference="none"` counter are looked up in their families once, on the
//!   route's first request, and reused — a family lookup hashes the labels and probes a
//!   map under a lock, three times per request otherwise (callgrind: ~1,000 instructions
//!   per proxied request).
//! - Latency buckets run from 0.5 ms to ~600 s (a `wait` may last ten minutes), factor 2.5.
//! - The store gauges are read when scraped (one cheap query), so they are right across
//!   replicas and restarts; a failing query leaves them out and counts a store error.

use std::fmt;
use std::sync::{Arc, LazyLock};

mod route;
pub use route::RouteMetrics;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A route name as a label value (shared, so labelling a request copies no string).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RouteLabel(Arc<str>);

impl RouteLabel {
    /// The label for route `name`.
    pub fn new(name: &str) -> Self {
        RouteLabel(Arc::from(name))
    }

    /// Requests that matched no route.
    pub fn unmatched() -> Self {
        static L: LazyLock<RouteLabel> = LazyLock::new(|| RouteLabel::new("-"));
        L.clone()
    }

    /// The jobs API (`{jobs.path}/…`, `/webhook-secret`).
    pub fn jobs_api() -> Self {
        static L: LazyLock<RouteLabel> = LazyLock::new(|| RouteLabel::new("jobs-api"));
        L.clone()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, &self.0)
    }
}

/// Labels of `prefer_gateway_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name.
    pub route: RouteLabel,
    /// Response status code.
    pub status: u16,
    /// `respond-async`, `wait` or `none`.
    pub preference: &'static str,
}

/// A single `route` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route name.
    pub route: RouteLabel,
}

/// A single `outcome` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// What happened.
    pub outcome: &'static str,
}

/// `route` and `state` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStateLabels {
    /// Route name.
    pub route: String,
    /// Job state.
    pub state: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.5, 14))
}

/// Every metric the gateway keeps.
pub struct Metrics {
    registry: Registry,
    /// Answered requests.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from request arrival to response head.
    pub request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Time of upstream calls (to the response head).
    pub upstream_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests waiting for a task or job right now.
    pub waiting: Gauge,
    /// Status polls by outcome.
    pub polls: Family<OutcomeLabels, Counter>,
    /// Unfinished jobs per route and state (set at scrape time).
    pub jobs: Family<RouteStateLabels, Gauge>,
    /// Pending jobs per route (set at scrape time).
    pub queue_depth: Family<RouteLabels, Gauge>,
    /// Jobs this replica finished, per route and final state.
    pub jobs_finished: Family<RouteStateLabels, Counter>,
    /// Open live status streams (`GET {jobs}/{id}` as Server-Sent Events) by job route.
    pub event_streams: Family<RouteLabels, Gauge>,
    /// Callback delivery attempts by outcome.
    pub webhook_attempts: Family<OutcomeLabels, Counter>,
    /// Admission reserve calls by outcome.
    pub admission_checks: Family<OutcomeLabels, Counter>,
    /// Settle/release attempts by outcome (durable and in-process ones).
    pub admission_notices: Family<OutcomeLabels, Counter>,
    /// `POST`s to task callback URLs by outcome.
    pub task_callbacks: Family<OutcomeLabels, Counter>,
    /// Failed job-store operations.
    pub store_errors: Counter,
    /// SIGHUP reloads by outcome.
    pub reloads: Family<OutcomeLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("prefer_gateway"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            upstream_seconds: Family::new_with_constructor(latency),
            waiting: Gauge::default(),
            polls: Family::default(),
            jobs: Family::default(),
            queue_depth: Family::default(),
            jobs_finished: Family::default(),
            event_streams: Family::default(),
            webhook_attempts: Family::default(),
            admission_checks: Family::default(),
            admission_notices: Family::default(),
            task_callbacks: Family::default(),
            store_errors: Counter::default(),
            reloads: Family::default(),
        };
        let mut r = m.registry;
        r.register(
            "requests",
            "Requests answered, by route, status and the preference applied",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from request arrival to the response head",
            m.request_seconds.clone(),
        );
        r.register(
            "upstream_duration_seconds",
            "Time of upstream calls until the response head",
            m.upstream_seconds.clone(),
        );
        r.register(
            "waiting_requests",
            "Requests waiting for a task or job to finish",
            m.waiting.clone(),
        );
        r.register("polls", "Status polls by outcome", m.polls.clone());
        r.register(
            "task_callbacks",
            "POSTs to task callback URLs, by outcome",
            m.task_callbacks.clone(),
        );
        r.register(
            "jobs",
            "Unfinished jobs by route and state (all replicas)",
            m.jobs.clone(),
        );
        r.register(
            "queue_depth",
            "Pending jobs by route (all replicas)",
            m.queue_depth.clone(),
        );
        r.register(
            "jobs_finished",
            "Jobs this replica finished, by route and final state",
            m.jobs_finished.clone(),
        );
        r.register(
            "event_streams",
            "Open live job status streams (Server-Sent Events) by the job's route",
            m.event_streams.clone(),
        );
        r.register(
            "webhook_attempts",
            "Callback delivery attempts by outcome",
            m.webhook_attempts.clone(),
        );
        r.register(
            "admission_checks",
            "Admission reserve calls by outcome",
            m.admission_checks.clone(),
        );
        r.register(
            "admission_notices",
            "Admission settle/release attempts by outcome",
            m.admission_notices.clone(),
        );
        r.register(
            "store_errors",
            "Job store operations that failed",
            m.store_errors.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads (SIGHUP) by outcome",
            m.reloads.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The handles of route `label` (resolved on first use, see [`RouteMetrics`]).
    pub fn route(label: RouteLabel) -> Arc<RouteMetrics> {
        Arc::new(RouteMetrics::new(label))
    }

    /// Counts one status poll.
    pub fn poll(&self, outcome: &'static str) {
        self.polls.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts one `POST` to a task callback URL.
    pub fn task_callback(&self, outcome: &'static str) {
        self.task_callbacks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one callback attempt.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one admission reserve call.
    pub fn admission_check(&self, outcome: &'static str) {
        self.admission_checks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one settle/release attempt.
    pub fn admission_notice(&self, outcome: &'static str) {
        self.admission_notices
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Replaces the store gauges with a fresh reading: `(route, pending, running)`.
    pub fn set_depths(&self, depths: impl IntoIterator<Item = (String, u64, u64)>) {
        self.jobs.clear();
        self.queue_depth.clear();
        for (route, pending, running) in depths {
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            self.queue_depth
                .get_or_create(&RouteLabels {
                    route: RouteLabel::new(&route),
                })
                .set(gauge(pending));
            for (state, n) in [("pending", pending), ("running", running)] {
                self.jobs
                    .get_or_create(&RouteStateLabels {
                        route: route.clone(),
                        state,
                    })
                    .set(gauge(n));
            }
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Holds `prefer_gateway_waiting_requests` one higher while alive.
pub struct Waiting(());

impl Waiting {
    /// A request starts waiting.
    pub fn start() -> Waiting {
        get().waiting.inc();
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        get().waiting.dec();
    }
}

/// The `preference` label for a response's `Preference-Applied` value.
pub fn preference_label(applied: Option<&http::HeaderValue>) -> &'static str {
    let Some(v) = applied else {
        return "none";
    };
    let b = v.as_bytes();
    // `wait` first: `respond-async, wait=N` is a wait that may end in a 202.
    if b.windows(5).any(|w| w.eq_ignore_ascii_case(b"wait=")) {
        "wait"
    } else if b
        .windows(13)
        .any(|w| w.eq_ignore_ascii_case(b"respond-async"))
    {
        "respond-async"
    } else {
        "none"
    }
}
