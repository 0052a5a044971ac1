//! The running index of the [`MemoryStore`](super::MemoryStore): which jobs are running
//! and how many per route, on the locked [`State`]. The per-route count is what `claim`
//! checks against the route's limit, so every transition into or out of running goes
//! through these two helpers and the set and the counts cannot disagree. The same counts,
//! with the pending queues' sizes, are the store's `depths`; and `recover` moves running
//! jobs whose runner is gone back to pending or to failed. A pending job's queue position
//! is read from the same pending queues.

use super::State;
use crate::store::model::{Job, JobError, JobStatus, Millis, RunNote};
use crate::store::{Recovery, RouteDepth, StoreError};

impl State {
    /// `JobStore::claim` on the locked state: the route's oldest pending job, if the route
    /// runs fewer than `max_running`.
    pub(super) fn claim(
        &mut self,
        route: &str,
        max_running: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Job>, StoreError> {
        if self.running_per_route.get(route).copied().unwrap_or(0) >= max_running {
            return Ok(None);
        }
        let Some(queue) = self.pending.get_mut(route) else {
            return Ok(None);
        };
        let next = queue.pop_first();
        if queue.is_empty() {
            self.pending.remove(route);
        }
        let Some((_, id)) = next else {
            return Ok(None);
        };
        let Some(job) = self.jobs.get_mut(&id) else {
            return Err(StoreError::new(format!("pending job {id} has no record")));
        };
        job.status = JobStatus::Running;
        job.attempts = job.attempts.saturating_add(1);
        job.lease_until = Some(lease_until);
        job.updated_at = now;
        self.schedule_started(&id, now);
        let claimed = self.jobs.get(&id).cloned();
        self.start_run(id, route);
        Ok(claimed)
    }

    /// `JobStore::note_attempt` on the locked state.
    pub(super) fn note_attempt(&mut self, id: &str, note: &RunNote) -> bool {
        match self.jobs.get_mut(id) {
            Some(job) if job.status == JobStatus::Running => {
                match note {
                    RunNote::Failed(e) => job.error = Some(e.clone()),
                    RunNote::Next => job.attempts = job.attempts.saturating_add(1),
                }
                true
            }
            _ => false,
        }
    }

    /// Job `id` of `route` entered running.
    pub(super) fn start_run(&mut self, id: String, route: &str) {
        if self.running.insert(id) {
            *self.running_per_route.entry(route.to_owned()).or_default() += 1;
        }
    }

    /// Job `id` of `route` left running (finished, or back to pending).
    pub(super) fn end_run(&mut self, id: &str, route: &str) {
        if !self.running.remove(id) {
            return;
        }
        if let Some(n) = self.running_per_route.get_mut(route) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running_per_route.remove(route);
            }
        }
    }

    /// Whether a job is running with its lease over (or leases are ignored).
    pub(super) fn is_stale(job: &Job, now: Millis, ignore_leases: bool) -> bool {
        job.status == JobStatus::Running
            && (ignore_leases || job.lease_until.is_none_or(|lease| lease < now))
    }

    /// Pending job `id`'s place on `route`'s queue (`1` = next), counted along the queue
    /// up to it: O(position), like the SQLite store's count over its index.
    pub(super) fn queue_position(&self, route: &str, id: &str) -> Option<u64> {
        let job = self.jobs.get(id)?;
        if job.status != JobStatus::Pending || job.route != route {
            return None;
        }
        let queue = self.pending.get(route)?;
        let me = (job.created_at, id.to_owned());
        if !queue.contains(&me) {
            return None;
        }
        u64::try_from(queue.range(..=me).count()).ok()
    }

    /// Pending and running jobs per route: the queues' sizes and the running counts (both
    /// drop a route at zero, so every entry is a route with work).
    pub(super) fn depths(&self) -> Vec<RouteDepth> {
        let pending = self.pending.iter().map(|(route, queue)| {
            (
                route.clone(),
                u64::try_from(queue.len()).unwrap_or(u64::MAX),
                0,
            )
        });
        let running = self
            .running_per_route
            .iter()
            .map(|(route, n)| (route.clone(), 0, u64::from(*n)));
        RouteDepth::tally(pending.chain(running))
    }

    /// Running jobs whose runner is gone (every one when `ignore_leases`, else those whose
    /// lease ended): back to pending or failed as `interrupted`, as `decide` says per route.
    /// Returns how many were recovered.
    pub(super) fn recover(
        &mut self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> usize {
        let stale: Vec<(String, String)> = self
            .running
            .iter()
            .filter_map(|id| self.jobs.get(id))
            .filter(|job| Self::is_stale(job, now, ignore_leases))
            .map(|job| (job.id.clone(), job.route.clone()))
            .collect();
        for (id, route) in &stale {
            match decide(route) {
                Recovery::Retry => {
                    let Some(job) = self.jobs.get_mut(id) else {
                        continue;
                    };
                    job.status = JobStatus::Pending;
                    job.lease_until = None;
                    job.updated_at = now;
                    let created_at = job.created_at;
                    self.end_run(id, route);
                    self.pending
                        .entry(route.clone())
                        .or_default()
                        .insert((created_at, id.clone()));
                }
                Recovery::Fail => {
                    let error = JobError {
                        code: "interrupted".into(),
                        message: "the gateway stopped while this job was running".into(),
                    };
                    let expires_at = now.saturating_add(retention_ms);
                    self.finish(id, JobStatus::Failed, None, Some(error), expires_at, now);
                }
            }
        }
        stale.len()
    }
}
