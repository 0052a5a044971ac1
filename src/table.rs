//! The route table the gateway serves from, built from a [`Config`] at start and again on
//! every reload.
//!
//! A [`Table`] is immutable once built; the gateway holds it in an `ArcSwap` and a reload
//! replaces it with one atomic store. A request loads the table once, so it is served
//! entirely by the old routes or entirely by the new ones, and a request already in flight
//! keeps the `Arc<Route>` it started with (its upstream, timeouts and job route) until it
//! ends — nginx's "old workers finish their requests" without a second process.

use std::sync::Arc;

use crate::config::{Config, Defaults, RouteConfig};
use crate::jobs::engine::{JobRoute, JobRoutes};
use crate::metrics::RouteLabel;
use crate::proxy::Upstream;
use crate::router::Router;
use crate::task::StatusUrl;

/// One configured route, ready to serve.
pub struct Route {
    /// Its config.
    pub cfg: RouteConfig,
    /// Where it forwards.
    pub upstream: Upstream,
    /// Status URL template (task routes).
    pub status: Option<StatusUrl>,
    /// Its name as a metrics label.
    pub label: RouteLabel,
    /// Its job settings, when it runs jobs (`sync` routes; `task` routes with a callback).
    pub job: Option<Arc<JobRoute>>,
}

/// Everything a reload replaces at once.
pub struct Table {
    /// Path + method → route.
    pub router: Router<Arc<Route>>,
    /// `[defaults]` (the job API's `Prefer: wait` bounds read them).
    pub defaults: Defaults,
}

/// Builds the table for `cfg`; `jobs` are the job routes built from the same config.
pub fn build(cfg: &Config, jobs: Option<&JobRoutes>) -> Result<Table, String> {
    let mut routes = Vec::with_capacity(cfg.routes.len());
    for rc in &cfg.routes {
        let route = Route {
            cfg: rc.clone(),
            upstream: Upstream::from_url(&rc.upstream)?,
            status: rc.task.as_ref().map(|t| StatusUrl::new(&t.status_url)),
            label: RouteLabel::new(&rc.name),
            job: jobs.and_then(|j| j.get(&rc.name)).cloned(),
        };
        routes.push((rc.path.clone(), rc.methods.clone(), Arc::new(route)));
    }
    Ok(Table {
        router: Router::new(routes)?,
        defaults: cfg.defaults,
    })
}

/// Every upstream `(host, port)` of `cfg`'s routes (route upstreams and absolute task status
/// URLs), for resolving once before traffic.
pub fn upstream_hosts(cfg: &Config) -> Result<Vec<(String, u16)>, String> {
    let mut hosts = Vec::new();
    for rc in &cfg.routes {
        hosts.push(Upstream::from_url(&rc.upstream)?.host_port());
        let status = rc.task.as_ref().map(|t| t.status_url.as_str());
        if let Some(abs) = status.and_then(|s| url::Url::parse(s).ok()) {
            if let (Some(h), Some(p)) = (abs.host_str(), abs.port_or_known_default()) {
                hosts.push((h.trim_matches(['[', ']']).to_owned(), p));
            }
        }
    }
    Ok(hosts)
}
