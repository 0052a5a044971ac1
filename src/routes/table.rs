//! The route table the gateway serves from, built from a [`Config`] at start and again on
//! every reload — the one table: the pipeline looks requests up in it, the job engine
//! finds a job's route in it, the delivery workers read a route's settings from it.
//!
//! A [`Table`] is immutable once built; it is held in a [`Shared`] (`ArcSwap`) and a
//! reload replaces it with one atomic store. A request loads the table once, so it is
//! served entirely by the old routes or entirely by the new ones, and a request (or job)
//! already in flight keeps the `Arc<Route>` it started with (its upstream, timeouts) until
//! it ends — nginx's "old workers finish their requests" without a second process.
//!
//! Each route's upstream URL is turned into an [`Upstream`] exactly once, here; the hosts
//! to resolve before traffic are read back from those ([`Table::hosts`]).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use super::router::Router;
use crate::config::{
    Config, Defaults, JobsConfig, RouteConfig, RouteKind, TaskConfig, WEBHOOK_SECRET_PATH,
};
use crate::metrics::{Metrics, RouteLabel, RouteMetrics};
use crate::store::document::Links;
use crate::store::Job;
use crate::upstream::forward::Upstream;
use crate::upstream::operation::StatusUrl;

/// Concurrent watches of handed-off task operations per route (mostly asleep, so they get
/// a high ceiling instead of `max_in_flight`).
const MAX_WATCHES: u32 = 10_000;

/// The table as everyone holds it: swapped whole on reload.
pub type Shared = Arc<ArcSwap<Table>>;

/// One configured route, ready to serve.
pub struct Route {
    /// Its config.
    pub cfg: RouteConfig,
    /// Where it forwards (parsed once, when the table was built).
    pub upstream: Upstream,
    /// What a request on it does.
    pub kind: Kind,
    /// What its requests are counted under.
    pub metrics: Arc<RouteMetrics>,
    /// Its job slots, when it runs jobs (`sync` routes; `task` routes whose operations the
    /// gateway watches for a callback or an admission endpoint).
    pub jobs: Option<Slots>,
}

/// What a route does with a request — one arm per route kind, no fallback.
pub enum Kind {
    /// Streams the request to the upstream and the answer back.
    Proxy,
    /// An async-first upstream: submit, read the operation id, poll its status URL.
    /// Boxed: a task's settings are several times the size of the other arms.
    Task(Box<Task>),
    /// A synchronous upstream: the gateway runs the call as a job when asked to.
    Sync,
}

/// A task route's operation settings.
pub struct Task {
    /// `[routes.task]`.
    pub cfg: TaskConfig,
    /// The status URL template.
    pub status: StatusUrl,
}

/// A route's limit on running jobs: a local semaphore, and the count the store's claim
/// checks across every process sharing it.
pub struct Slots {
    /// Most jobs running at once on this route (all processes).
    pub max_running: u32,
    /// This process's share of the limit.
    pub semaphore: Arc<Semaphore>,
}

/// What a path leads to: a configured route or one of the gateway's own endpoints.
#[derive(Clone)]
pub enum Target {
    /// A configured route.
    Route(Arc<Route>),
    /// The job API under `[jobs].path`.
    Jobs,
    /// `GET /webhook-secret`.
    WebhookSecret,
}

/// The built-in endpoints this gateway serves (their paths are reserved at config load
/// whether or not they are served, so a route cannot appear or vanish under them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtins<'a> {
    /// The job API's prefix, when the gateway runs jobs.
    pub jobs: Option<&'a str>,
    /// Whether `/webhook-secret` is served (callbacks are configured).
    pub webhook_secret: bool,
}

/// Everything a reload replaces at once.
pub struct Table {
    /// Path + method → route or built-in endpoint.
    pub router: Router<Target>,
    /// `[defaults]` (the job API's `Prefer: wait` bounds read them).
    pub defaults: Defaults,
    by_name: HashMap<String, Arc<Route>>,
}

impl Table {
    /// Builds the table for `cfg`. A route that keeps its name and job limit keeps its slot
    /// semaphore from `old`, so jobs already running on it still count after a reload.
    pub fn build(
        cfg: &Config,
        old: Option<&Table>,
        builtins: Builtins<'_>,
    ) -> Result<Table, String> {
        let mut routes = Vec::with_capacity(cfg.routes.len() + 2);
        let mut by_name = HashMap::with_capacity(cfg.routes.len());
        for rc in &cfg.routes {
            check_reserved(rc, builtins)?;
            let route = Arc::new(build_route(rc, old)?);
            by_name.insert(rc.name.clone(), Arc::clone(&route));
            routes.push((rc.path.clone(), rc.methods.clone(), Target::Route(route)));
        }
        if let Some(prefix) = builtins.jobs {
            let escaped = prefix.replace('{', "{{").replace('}', "}}");
            // The prefix itself is the list of the caller's jobs.
            routes.push((escaped.clone(), vec![], Target::Jobs));
            routes.push((format!("{escaped}/{{*rest}}"), vec![], Target::Jobs));
        }
        if builtins.webhook_secret {
            routes.push((
                WEBHOOK_SECRET_PATH.to_owned(),
                vec![],
                Target::WebhookSecret,
            ));
        }
        Ok(Table {
            router: Router::new(routes)?,
            defaults: cfg.defaults,
            by_name,
        })
    }

    /// The route called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_name.get(name)
    }

    /// The routes that run jobs.
    pub fn job_routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.by_name.values().filter(|r| r.jobs.is_some())
    }

    /// Every upstream `(host, port)`: route upstreams and absolute task status URLs, for
    /// resolving once before traffic.
    pub fn hosts(&self) -> Vec<(String, u16)> {
        let mut hosts = Vec::with_capacity(self.by_name.len());
        for route in self.by_name.values() {
            hosts.push(route.upstream.host_port());
            if let Kind::Task(task) = &route.kind {
                hosts.extend(task.status.host_port());
            }
        }
        hosts
    }

    /// Where `job`'s links point. Its `download_url` is signed only when the key is
    /// configured and the job's route, as configured *now*, has `signed_results` (the
    /// record keeps the route's name, not its settings).
    /// `base` is the public base URL the links start with (see `pipeline::public`).
    pub fn links<'a>(&self, jobs: &'a JobsConfig, job: &Job, base: &str) -> Links<'a> {
        let signed = self.get(&job.route).is_some_and(|r| r.cfg.signed_results);
        Links {
            prefix: format!("{base}{}", jobs.path),
            signer: jobs.signing_key.as_ref().filter(|_| signed),
        }
    }
}

/// Whether any route of `cfg` runs jobs (a gateway without one opens no store).
pub fn runs_jobs(cfg: &Config) -> bool {
    cfg.routes.iter().any(RouteConfig::runs_jobs)
}

/// A route may not sit on a built-in endpoint the table serves. Config loading refuses
/// that while the config runs jobs; this also covers a reload that removed every job
/// route of a gateway whose job API stays mounted (its jobs are still readable).
fn check_reserved(rc: &RouteConfig, builtins: Builtins<'_>) -> Result<(), String> {
    let path = rc.path.as_str();
    let under_jobs = builtins
        .jobs
        .is_some_and(|p| path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')));
    if under_jobs || (builtins.webhook_secret && path == WEBHOOK_SECRET_PATH) {
        return Err(format!(
            "route {:?}: {path} is one of the gateway's own endpoints (the job API or \
             /webhook-secret), which this gateway serves; move the route",
            rc.name
        ));
    }
    Ok(())
}

fn build_route(rc: &RouteConfig, old: Option<&Table>) -> Result<Route, String> {
    let kind = match rc.kind {
        RouteKind::Proxy => Kind::Proxy,
        RouteKind::Sync => Kind::Sync,
        RouteKind::Task => {
            let cfg = rc
                .task
                .clone()
                .ok_or_else(|| format!("route {:?}: a task route needs [task]", rc.name))?;
            let status = StatusUrl::new(&cfg.status_url);
            Kind::Task(Box::new(Task { cfg, status }))
        }
    };
    let max_running = match rc.kind {
        _ if !rc.runs_jobs() => None,
        RouteKind::Sync => Some(rc.max_in_flight),
        _ => Some(MAX_WATCHES),
    };
    let jobs = max_running.map(|max_running| {
        let kept = old
            .and_then(|t| t.get(&rc.name))
            .and_then(|r| r.jobs.as_ref())
            .filter(|s| s.max_running == max_running);
        Slots {
            max_running,
            semaphore: kept.map_or_else(
                || Arc::new(Semaphore::new(max_running as usize)),
                |s| Arc::clone(&s.semaphore),
            ),
        }
    });
    Ok(Route {
        cfg: rc.clone(),
        upstream: Upstream::from_url(&rc.upstream)?,
        kind,
        metrics: Metrics::route(RouteLabel::new(&rc.name)),
        jobs,
    })
}

#[cfg(test)]
mod tests;
