//! The routes that run jobs, as the engine sees them: built from a config at start and
//! again on every reload, keeping a route's slot semaphore across reloads so jobs already
//! running still count against its limit.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{Config, RouteConfig, RouteKind};
use crate::proxy::Upstream;

/// Concurrent watches of handed-off task operations per route.
const MAX_WATCHES: u32 = 10_000;

/// A `sync` route as the runner sees it.
pub struct JobRoute {
    /// Route config (name, settings, retry policy).
    pub cfg: RouteConfig,
    /// Where its jobs go.
    pub upstream: Upstream,
    /// The route's limit on running jobs, local and across the store.
    pub(super) max_running: u32,
    pub(super) slots: Arc<Semaphore>,
}

/// Route name → its job settings.
pub type JobRoutes = HashMap<String, Arc<JobRoute>>;

/// The routes of `cfg` that run jobs: `sync` routes run calls; `task` routes with a
/// callback run watches (mostly asleep, so they get a high ceiling instead of
/// `max_in_flight`). A route that keeps its name and limit keeps its slot semaphore from
/// `old`, so jobs already running on it still count against the limit after a reload.
pub fn job_routes(cfg: &Config, old: Option<&JobRoutes>) -> Result<JobRoutes, String> {
    let runs_jobs = |r: &&RouteConfig| {
        r.kind == RouteKind::Sync
            || (r.kind == RouteKind::Task && (r.callback.is_some() || r.admission.is_some()))
    };
    let mut routes = HashMap::new();
    for rc in cfg.routes.iter().filter(runs_jobs) {
        let max_running = match rc.kind {
            RouteKind::Sync => rc.max_in_flight,
            _ => MAX_WATCHES,
        };
        let slots = match old.and_then(|o| o.get(&rc.name)) {
            Some(prev) if prev.max_running == max_running => Arc::clone(&prev.slots),
            _ => Arc::new(Semaphore::new(max_running as usize)),
        };
        let upstream = Upstream::from_url(&rc.upstream)?;
        routes.insert(
            rc.name.clone(),
            Arc::new(JobRoute {
                cfg: rc.clone(),
                upstream,
                max_running,
                slots,
            }),
        );
    }
    Ok(routes)
}
