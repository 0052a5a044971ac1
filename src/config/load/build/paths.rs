//! Route names and paths across the table: names unique, every request path matched by at
//! most one route (per method), and no route hidden under the gateway's own endpoints.
//! Each error names the route's key and points at its value.

use std::collections::HashMap;

use super::super::raw::RawRoute;
use super::super::{ConfigError, Source};
use crate::config::{RouteConfig, WEBHOOK_SECRET_PATH};

/// Route names are unique (they label logs and metrics).
pub(super) fn unique_names(routes: &[RawRoute], src: &Source<'_>) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (j, r) in routes.iter().enumerate() {
        let name = r.name.get_ref().as_str();
        if let Some(i) = seen.insert(name, j) {
            let msg = format!("duplicate route name {name:?} (also routes[{i}])");
            return Err(src.error(format!("routes[{j}].name"), Some(r.name.span()), msg));
        }
    }
    Ok(())
}

/// Every request maps to at most one route: routes that share a path string must not share a
/// method, and distinct path strings must be insertable into one matchit router (so
/// `/a/{x}` and `/a/{y}` conflict whatever their methods: the router matches the path first
/// and only then looks at the method, which is also what makes `405` + `Allow` possible).
pub(super) fn routable_paths(routes: &[RawRoute], src: &Source<'_>) -> Result<(), ConfigError> {
    let mut router = matchit::Router::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (j, r) in routes.iter().enumerate() {
        let path = r.path.get_ref().as_str();
        let key = format!("routes[{j}].path");
        if first.contains_key(path) {
            for (i, prev) in routes.iter().enumerate().take(j) {
                let shared = r.methods.iter().find(|m| prev.methods.contains(m));
                if let (true, Some(m)) = (prev.path.get_ref() == path, shared) {
                    let name = prev.name.get_ref();
                    let msg = format!("{m} {path} is already routed to {name:?} (routes[{i}])");
                    return Err(src.error(key, Some(r.path.span()), msg));
                }
            }
            continue;
        }
        if let Err(e) = router.insert(path, j) {
            let msg = match e {
                matchit::InsertError::Conflict { with } => match first.get(with.as_str()) {
                    Some(&i) => format!(
                        "{path} conflicts with {with} of route {:?} (routes[{i}]); \
                         one request path could match both",
                        routes.get(i).map_or("", |p| p.name.get_ref().as_str())
                    ),
                    None => format!("{path} conflicts with {with}"),
                },
                other => format!("{path}: {other}"),
            };
            return Err(src.error(key, Some(r.path.span()), msg));
        }
        first.insert(path, j);
    }
    Ok(())
}

/// The gateway's own endpoints — the job API (`{jobs.path}/{id}`, `…/result`, …) and
/// `GET /webhook-secret` — are answered before the route table is consulted, while any route
/// runs jobs (see [`RouteConfig::runs_jobs`]). A route at or under `jobs.path`, or on
/// `/webhook-secret`, would then never be reached: refused here instead of silently shadowed.
///
/// Only literal paths are compared: a pattern that can merely match a reserved path (`/{x}`,
/// `/{*rest}`) is a fallback, and the gateway's endpoint winning there is what it says.
pub(super) fn outside_reserved_paths(
    raw: &[RawRoute],
    routes: &[RouteConfig],
    jobs_path: &str,
    src: &Source<'_>,
) -> Result<(), ConfigError> {
    let Some((j, owner)) = routes.iter().enumerate().find(|(_, r)| r.runs_jobs()) else {
        return Ok(());
    };
    let why = format!(
        "while any route runs jobs (a sync route, or a task route with callback, admission or \
         task.callback: \
         here {:?}, routes[{j}])",
        owner.name
    );
    let prefix = format!("{jobs_path}/");
    for (i, r) in raw.iter().enumerate() {
        let path = r.path.get_ref();
        let msg = if path == jobs_path || path.starts_with(&prefix) {
            format!(
                "{path} falls under jobs.path {jobs_path:?}, which the job API owns {why}; \
                 move the route or change [jobs].path"
            )
        } else if path == WEBHOOK_SECRET_PATH {
            format!(
                "{path} is the gateway's own endpoint (each tenant's webhook signing secret) \
                 {why}; move the route"
            )
        } else {
            continue;
        };
        return Err(src.error(format!("routes[{i}].path"), Some(r.path.span()), msg));
    }
    Ok(())
}
