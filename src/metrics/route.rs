//! One route's metric handles: what the pipeline counts a request under, resolved in their
//! families on the route's first request and reused (see the [`super`] module doc).

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{get, Metrics, RequestLabels, RouteLabel, RouteLabels};

/// One route's metric handles (see the module doc): what the pipeline counts a request
/// under. Requests that matched no route and the job API have their own.
#[derive(Debug)]
pub struct RouteMetrics {
    label: RouteLabel,
    request_seconds: OnceLock<Histogram>,
    upstream_seconds: OnceLock<Histogram>,
    /// `requests_total{status="200",preference="none"}`, the most common answer by far.
    ok: OnceLock<Counter>,
}

impl RouteMetrics {
    pub(super) fn new(label: RouteLabel) -> RouteMetrics {
        RouteMetrics {
            label,
            request_seconds: OnceLock::new(),
            upstream_seconds: OnceLock::new(),
            ok: OnceLock::new(),
        }
    }

    /// Requests that matched no route (`route="-"`).
    pub fn unmatched() -> Arc<RouteMetrics> {
        static M: LazyLock<Arc<RouteMetrics>> =
            LazyLock::new(|| Metrics::route(RouteLabel::unmatched()));
        Arc::clone(&M)
    }

    /// The job API (`route="jobs-api"`).
    pub fn jobs_api() -> Arc<RouteMetrics> {
        static M: LazyLock<Arc<RouteMetrics>> =
            LazyLock::new(|| Metrics::route(RouteLabel::jobs_api()));
        Arc::clone(&M)
    }

    /// The route's label.
    pub fn label(&self) -> &RouteLabel {
        &self.label
    }

    /// Counts one answered request.
    pub fn request(&self, status: u16, preference: &'static str, took: Duration) {
        let m = get();
        if status == 200 && preference == "none" {
            self.ok
                .get_or_init(|| {
                    let labels = RequestLabels {
                        route: self.label.clone(),
                        status,
                        preference,
                    };
                    m.requests.get_or_create(&labels).clone()
                })
                .inc();
        } else {
            m.requests
                .get_or_create(&RequestLabels {
                    route: self.label.clone(),
                    status,
                    preference,
                })
                .inc();
        }
        let seconds = self.request_seconds.get_or_init(|| {
            let labels = RouteLabels {
                route: self.label.clone(),
            };
            m.request_seconds.get_or_create(&labels).clone()
        });
        seconds.observe(took.as_secs_f64());
    }

    /// Records one upstream call's time to its response head.
    pub fn upstream(&self, took: Duration) {
        let seconds = self.upstream_seconds.get_or_init(|| {
            let labels = RouteLabels {
                route: self.label.clone(),
            };
            get().upstream_seconds.get_or_create(&labels).clone()
        });
        seconds.observe(took.as_secs_f64());
    }
}
