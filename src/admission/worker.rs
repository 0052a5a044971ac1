//! The settle/release worker: claims due admission deliveries from the job store and makes
//! one attempt each, on the callbacks' retry schedule.
//!
//! The store makes a job's admission delivery due in the same atomic step that makes the
//! job terminal (see [`crate::store`]), so a notice survives a crash between the two
//! and is never forgotten; claims carry a lease, so with several replicas each attempt is
//! made by one of them. The URL is the one stored with the job (a reload that changes the
//! route's endpoint does not redirect notices for work the old endpoint admitted); the
//! timeout is the route's current one, 5 s when the route is gone.
//!
//! Work admitted without a job (a plain forward, a task that finished while the client
//! waited) is notified by [`send_soon`]: three quick attempts in-process, not durable.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::notice::{self, Action, Notice};
use crate::config::AdmissionConfig;
use crate::routes::table::{Shared, Table};
use crate::store::claims::{claim_loop, millis, Round};
use crate::store::model::{now_millis, Attempt, AttemptNext, Delivery, DeliveryKind, Job};
use crate::store::JobStore;
use crate::webhook::schedule;

/// Timeout when the job's route is no longer configured.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the notice worker reads besides the store.
#[derive(Clone)]
pub struct Worker {
    /// The admission client.
    pub client: reqwest::Client,
    /// Retry schedule of settle/release notices (`[webhooks].retry_schedule`).
    pub schedule: Arc<Vec<Duration>>,
    /// The route table (a route's admission timeout), as reloads swap it.
    pub routes: Shared,
}

/// Claims due notices and attempts them, until the store is dropped.
pub async fn worker(store: Weak<dyn JobStore>, wake: Arc<Notify>, w: Worker) {
    let routes = w.routes.clone();
    let round = move || {
        let table = routes.load();
        // Look often while a route has an endpoint; once a second otherwise (notices of a
        // route whose endpoint was removed by a reload still go out).
        let tick = if any_admission(&table) { 200 } else { 1000 };
        Some(Round {
            first_delay_ms: 0,
            lease_ms: 2 * millis(DEFAULT_TIMEOUT.max(max_timeout(&table))),
            tick: Duration::from_millis(tick),
        })
    };
    let attempt = move |store: Arc<dyn JobStore>, delivery: Delivery, job: Job| {
        let w = w.clone();
        async move { attempt_one(&*store, &w, delivery, job).await }
    };
    claim_loop(store, wake, DeliveryKind::Admission, round, attempt).await;
}

fn any_admission(table: &Table) -> bool {
    table.job_routes().any(|r| r.cfg.admission.is_some())
}

/// The longest admission timeout of the current routes (bounds the claim's lease).
fn max_timeout(table: &Table) -> Duration {
    table
        .job_routes()
        .filter_map(|r| r.cfg.admission.as_ref().map(|a| a.timeout))
        .max()
        .unwrap_or(DEFAULT_TIMEOUT)
}

async fn attempt_one(store: &dyn JobStore, w: &Worker, delivery: Delivery, job: Job) {
    let Some(url) = url::Url::parse(&delivery.url).ok() else {
        record(
            store,
            &job,
            give_up("the stored admission URL does not parse"),
        )
        .await;
        return;
    };
    let timeout = w
        .routes
        .load()
        .get(&job.route)
        .and_then(|r| r.cfg.admission.as_ref().map(|a| a.timeout))
        .unwrap_or(DEFAULT_TIMEOUT);
    let cfg = AdmissionConfig { url, timeout };
    let reservation = job.admission.as_ref().and_then(|a| a.reservation.clone());
    let status = job.status.as_str();
    let n = Notice {
        action: Action::for_status(status),
        reservation: reservation.as_deref(),
        job_id: &job.id,
        tenant: &job.tenant,
        route: &job.route,
        status,
    };
    let (got, error, retry_after) = notice::send(&w.client, &cfg, &n).await;
    let next = match got {
        Some(s) if (200..300).contains(&s) => AttemptNext::Delivered,
        Some(410) => AttemptNext::Stop,
        _ => {
            let done = delivery.attempts + 1;
            let delay =
                schedule::next_delay(&w.schedule, done, retry_after, schedule::jitter_unit());
            match delay {
                Some(d) => AttemptNext::Retry(schedule::retry_at(now_millis(), d)),
                None => AttemptNext::GiveUp,
            }
        }
    };
    crate::metrics::get().admission_notice(match next {
        AttemptNext::Delivered => "delivered",
        AttemptNext::Retry(_) => "retry",
        AttemptNext::Stop => "gone",
        AttemptNext::GiveUp => "failed",
    });
    tracing::info!(
        job = %job.id,
        action = n.action.as_str(),
        attempt = delivery.attempts + 1,
        status = got,
        error = error.as_deref().unwrap_or(""),
        next = ?next,
        "admission notice"
    );
    let attempt = Attempt {
        status: got,
        error,
        next,
    };
    record(store, &job, attempt).await;
}

fn give_up(why: &str) -> Attempt {
    Attempt {
        status: None,
        error: Some(why.to_owned()),
        next: AttemptNext::GiveUp,
    }
}

async fn record(store: &dyn JobStore, job: &Job, attempt: Attempt) {
    let recorded = store
        .record_attempt(&job.id, DeliveryKind::Admission, attempt, now_millis())
        .await;
    if let Err(err) = recorded {
        // The lease runs out and another attempt is made: at-least-once, never lost.
        crate::metrics::get().store_errors.inc();
        tracing::warn!(job = %job.id, error = %err, "cannot record an admission notice");
    }
}

/// An owned notice for [`send_soon`].
#[derive(Debug, Clone)]
pub struct Owned {
    /// Settle or release.
    pub action: Action,
    /// Reservation id.
    pub reservation: Option<String>,
    /// Request id (there is no job).
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Route name.
    pub route: String,
    /// What the work ended with (an HTTP status, or a task state).
    pub status: String,
}

/// Sends a notice for work that has no job, in the background: attempts at once, after 1 s
/// and after 5 s; the first `2xx` or `410` ends it. Not durable (see the module doc).
pub fn send_soon(client: reqwest::Client, cfg: AdmissionConfig, owned: Owned) {
    tokio::spawn(async move {
        const DELAYS: [u64; 3] = [0, 1, 5];
        for (i, delay) in DELAYS.into_iter().enumerate() {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            let n = Notice {
                action: owned.action,
                reservation: owned.reservation.as_deref(),
                job_id: &owned.id,
                tenant: &owned.tenant,
                route: &owned.route,
                status: &owned.status,
            };
            match notice::send(&client, &cfg, &n).await {
                (Some(s), _, _) if (200..300).contains(&s) || s == 410 => {
                    let outcome = if s == 410 { "gone" } else { "delivered" };
                    crate::metrics::get().admission_notice(outcome);
                    return;
                }
                (_, error, _) => {
                    // Counted like the durable path: `retry` when another attempt follows.
                    if i + 1 < DELAYS.len() {
                        crate::metrics::get().admission_notice("retry");
                    }
                    tracing::warn!(
                        id = %owned.id,
                        action = owned.action.as_str(),
                        error = error.as_deref().unwrap_or(""),
                        "admission notice failed"
                    );
                }
            }
        }
        crate::metrics::get().admission_notice("failed");
        tracing::error!(id = %owned.id, action = owned.action.as_str(), "admission notice given up");
    });
}
