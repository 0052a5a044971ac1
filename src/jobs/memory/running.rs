//! The running index of the [`MemoryStore`](super::MemoryStore): which jobs are running
//! and how many per route, on the locked [`State`]. The per-route count is what `claim`
//! checks against the route's limit, so every transition into or out of running goes
//! through these two helpers and the set and the counts cannot disagree.

use super::State;
use crate::jobs::model::{Job, JobStatus, Millis};

impl State {
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
}
