//! An honest `Retry-After` for unfinished jobs: per route, an estimate of how long a run
//! takes, learned from the runs this process finishes, and what it means for one job.
//!
//! **The estimate** is an exponentially weighted moving average of the wall time of the
//! route's recent *successful* runs (upstream answered 2xx; for a watched task, the watch
//! until the task finished), measured by the runner from claim to answer, each new run
//! weighing [`WEIGHT`]. Only successes count: a refused connection or a fast `500` says
//! nothing about how long real work takes and would talk clients into polling too early.
//! It lives in memory, per process: a replica that has not run a job of the route yet
//! answers the default, and a restart forgets it; sharing it through the store would cost
//! a write per finished job for a hint (documented; the queue position, by contrast, is
//! read from the store and is the same on every replica).
//!
//! **Retry-After** (whole seconds, never below 1, never above [`MAX_RETRY_AFTER`] so that
//! clients keep polling and see a cancel or a stuck job; [`DEFAULT`] — the 1 s sent before
//! this existed — while the route has no estimate):
//!
//! - running: the estimate minus the time since it was claimed (its `updated_at`), so a
//!   job near or past its usual time is polled every second;
//! - pending at `queue_position` p on a route running c at once: p × estimate / c, about
//!   when its turn comes (when its status next changes);
//! - the `202` handle of a new job (and of a `wait` that ran out while it was pending),
//!   which is sent without a queue read: one estimate, as if it started at once — exact on
//!   an idle route, and the status reads then refine it.
//!
//! Followed Azure's long-running-operation guidelines (the status monitor's `Retry-After`
//! says when to look again; azure-core's poller sleeps exactly that) for the header, and
//! Replicate / RunPod for showing the queue position in the status document itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::engine::Engine;
use crate::store::document::Progress;
use crate::store::{Job, JobStatus};

/// The weight of the newest run in the moving average: the last ~5 runs dominate, so the
/// estimate follows a route whose upstream slows down within a few jobs.
pub const WEIGHT: f64 = 0.3;

/// The longest `Retry-After` the gateway sends, in seconds.
pub const MAX_RETRY_AFTER: u64 = 60;

/// `Retry-After` while a route has no run time yet, in seconds.
pub const DEFAULT: u64 = 1;

/// Per-route run-time estimates of this process (milliseconds, moving average).
#[derive(Debug, Default)]
pub struct Pace {
    runs: Mutex<HashMap<String, f64>>,
}

impl Pace {
    /// A successful run of `route` took `took`.
    pub fn record(&self, route: &str, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        match runs.get_mut(route) {
            Some(avg) => *avg += WEIGHT * (ms - *avg),
            None => {
                runs.insert(route.to_owned(), ms);
            }
        }
    }

    /// The route's estimated run time in milliseconds, once it has one.
    pub fn estimate(&self, route: &str) -> Option<f64> {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
            .copied()
    }
}

/// Seconds until a client should look at a job again (see the module doc): `status` and
/// `position` of the job, the route's `estimate_ms` and `concurrency`, and `elapsed_ms`
/// since a running job was claimed. A pending job without a position is the `202`
/// handle's case.
pub fn retry_after(
    status: JobStatus,
    estimate_ms: Option<f64>,
    position: Option<u64>,
    concurrency: u32,
    elapsed_ms: i64,
) -> u64 {
    let Some(estimate) = estimate_ms.filter(|e| e.is_finite() && *e >= 0.0) else {
        return DEFAULT;
    };
    let ms = match (status, position) {
        (JobStatus::Running, _) => estimate - elapsed_ms as f64,
        (JobStatus::Pending, Some(p)) => p as f64 * estimate / f64::from(concurrency.max(1)),
        (JobStatus::Pending, None) => estimate,
        _ => return DEFAULT,
    };
    let secs = (ms / 1000.0).ceil();
    // `as` saturates (NaN → 0), and the clamp makes any value a valid header.
    (secs as u64).clamp(1, MAX_RETRY_AFTER)
}

// === impl Engine ===

impl Engine {
    /// What a status read shows of unfinished `job` beside the document: its queue
    /// position (pending only: one store read, see
    /// [`JobStore::queue_position`](crate::store::JobStore::queue_position)) and its
    /// `Retry-After`. A failed position read leaves the position out rather than failing
    /// a read that already succeeded.
    pub async fn progress(&self, job: &Job) -> Progress {
        if job.status.is_terminal() {
            return Progress::default();
        }
        let position = match job.status {
            JobStatus::Pending => match self.store.queue_position(&job.route, &job.id).await {
                Ok(p) => p,
                Err(e) => {
                    crate::metrics::get().store_errors.inc();
                    tracing::debug!(job = %job.id, error = %e, "queue position unavailable");
                    None
                }
            },
            _ => None,
        };
        Progress {
            queue_position: position,
            retry_after: self.retry_after(job, position),
        }
    }

    /// `Retry-After` for unfinished `job` at `position` (`None`: the handle's estimate).
    pub fn retry_after(&self, job: &Job, position: Option<u64>) -> u64 {
        let concurrency = self
            .route(&job.route)
            .and_then(|r| r.jobs.as_ref().map(|s| s.max_running))
            .unwrap_or(1);
        let elapsed = self.now().saturating_sub(job.updated_at);
        retry_after(
            job.status,
            self.pace.estimate(&job.route),
            position,
            concurrency,
            elapsed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_is_the_default() {
        for status in [JobStatus::Pending, JobStatus::Running] {
            assert_eq!(retry_after(status, None, Some(7), 1, 0), DEFAULT);
        }
        assert_eq!(
            retry_after(JobStatus::Pending, Some(f64::NAN), Some(3), 1, 0),
            1
        );
    }

    #[test]
    fn running_is_what_is_left_of_the_estimate() {
        let est = Some(10_000.0);
        assert_eq!(retry_after(JobStatus::Running, est, None, 1, 0), 10);
        assert_eq!(retry_after(JobStatus::Running, est, None, 1, 2_500), 8);
        assert_eq!(retry_after(JobStatus::Running, est, None, 1, 9_999), 1);
        // Overdue, or claimed "in the future" by a clock step: still 1 .. MAX.
        assert_eq!(retry_after(JobStatus::Running, est, None, 1, 60_000), 1);
        assert_eq!(
            retry_after(JobStatus::Running, est, None, 1, -1_000_000),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn pending_grows_with_position_and_shrinks_with_concurrency() {
        let est = Some(1_500.0);
        let at = |p, c| retry_after(JobStatus::Pending, est, Some(p), c, 0);
        assert_eq!([at(1, 1), at(2, 1), at(3, 1)], [2, 3, 5]);
        assert_eq!([at(1, 4), at(4, 4), at(8, 4)], [1, 2, 3]);
        assert_eq!(at(1_000_000, 1), MAX_RETRY_AFTER);
        assert_eq!(at(1, 0), 2, "a zero concurrency counts as one");
        // The handle: one run time.
        assert_eq!(retry_after(JobStatus::Pending, est, None, 4, 0), 2);
    }

    #[test]
    fn the_estimate_follows_recent_runs() {
        let pace = Pace::default();
        assert_eq!(pace.estimate("r"), None);
        pace.record("r", Duration::from_secs(10));
        assert_eq!(pace.estimate("r"), Some(10_000.0));
        pace.record("r", Duration::from_secs(0));
        assert_eq!(pace.estimate("r"), Some(7_000.0));
        for _ in 0..20 {
            pace.record("r", Duration::from_secs(2));
        }
        let e = pace.estimate("r").unwrap();
        assert!((e - 2_000.0).abs() < 10.0, "{e}");
        assert_eq!(pace.estimate("other"), None);
    }
}
