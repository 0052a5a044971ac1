//! Enforcing deadlines (the rule is in [`crate::store::deadline`]).
//!
//! Queue deadlines are kept twice. A timer per process holds the queue deadline of every
//! job this process accepted and cancels the job at that time if it is still pending — so
//! a job stuck behind a full route ends on time instead of when a slot frees. The timer is
//! in memory only; the dispatcher also checks the queue deadline of every job it claims
//! and cancels it unsent when it has passed, which covers jobs accepted before a restart
//! or by another replica. Run deadlines are raced by the runner (`jobs::run`).
//!
//! The timer reads the job and cancels it only if it is pending. A claim can land between
//! the read and the cancel; the cancel then ends a job that has just started (its call is
//! dropped at once, as for a `DELETE`), which is what its deadline asked for anyway.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::Engine;
use crate::store::deadline::{self, exceeded};
use crate::store::model::{Job, JobError, JobStatus, Millis};
use crate::store::{Canceled, Lookup, StoreError};

/// Pending jobs' queue deadlines, earliest first: `(at, tenant, id)`.
#[derive(Default)]
pub(super) struct QueueTimers {
    due: Mutex<BinaryHeap<Reverse<(Millis, String, String)>>>,
    wake: Arc<Notify>,
}

impl Engine {
    /// Arms the queue-deadline timer of a just-created `job` (none without a deadline).
    pub(crate) fn watch_queue_deadline(&self, job: &Job, max_queue_time: Option<Duration>) {
        let Some(at) = deadline::queue_deadline(job, max_queue_time) else {
            return;
        };
        self.queue_timers
            .due
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Reverse((at, job.tenant.clone(), job.id.clone())));
        self.queue_timers.wake.notify_one();
    }

    /// Cancels job `id` of `tenant` because `why` (a deadline) passed, through the store's
    /// cancel transition, and stops its local run; retried while the store fails, since a
    /// job must not outlive its deadline for a store hiccup. Whether it was this cancel
    /// that ended the job.
    pub(crate) async fn cancel_for_deadline(&self, tenant: &str, id: &str, why: JobError) -> bool {
        let mut delay = Duration::from_millis(100);
        for _ in 0..8 {
            let done = self
                .store
                .cancel_with(tenant, id, &why, self.retention_ms(), self.now())
                .await;
            match done {
                Ok(Canceled::Done(job)) => {
                    crate::metrics::get()
                        .jobs_finished
                        .get_or_create(&crate::metrics::RouteStateLabels {
                            route: job.route.clone(),
                            state: "canceled",
                        })
                        .inc();
                    tracing::info!(job = %id, "canceled: {}", why.message);
                    self.abort_run(id);
                    self.finished(id);
                    crate::jobs::task_cancel::cancel_upstream(self, &job);
                    return true;
                }
                Ok(_) => return false,
                Err(e) => {
                    crate::metrics::get().store_errors.inc();
                    tracing::warn!(job = %id, error = %e, "cannot cancel at the deadline; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        false
    }

    /// A claimed `job` whose queue deadline passed before it was claimed: canceled unsent.
    /// `true` when the job must not run.
    pub(crate) async fn claimed_too_late(&self, job: &Job) -> bool {
        let limit = self.route(&job.route).and_then(|r| r.cfg.max_queue_time);
        match deadline::queue_deadline(job, limit) {
            Some(at) if at <= self.now() => {
                let why = exceeded("before it started");
                self.cancel_for_deadline(&job.tenant, &job.id, why).await;
                true
            }
            _ => false,
        }
    }

    async fn expire_if_pending(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        if let Lookup::Found(job) = self.store.get(tenant, id, self.now()).await? {
            if job.status == JobStatus::Pending {
                self.cancel_for_deadline(tenant, id, exceeded("before it started"))
                    .await;
            }
        }
        Ok(())
    }
}

/// Cancels pending jobs at their queue deadlines (see the module doc).
pub(super) async fn expire_queued(engine: Weak<Engine>) {
    loop {
        let Some(e) = engine.upgrade() else { return };
        let now = e.now();
        let next = {
            let mut due = e.queue_timers.due.lock().unwrap_or_else(|p| p.into_inner());
            match due.peek() {
                Some(Reverse((at, _, _))) if *at <= now => due.pop().map(|Reverse(d)| Ok(d)),
                Some(Reverse((at, _, _))) => Some(Err(*at)),
                None => None,
            }
        };
        let wait = match next {
            Some(Ok((_, tenant, id))) => {
                if let Err(err) = e.expire_if_pending(&tenant, &id).await {
                    crate::metrics::get().store_errors.inc();
                    tracing::warn!(job = %id, error = %err, "queue deadline check failed");
                }
                continue;
            }
            Some(Err(at)) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)),
            // Nothing armed: sleep until a timer is added.
            None => Duration::from_secs(3600),
        };
        // Hold only the wake signal while idle, so a dropped gateway ends this task.
        let wake = Arc::clone(&e.queue_timers.wake);
        drop(e);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
        }
    }
}
