//! [`MemoryStore`]: the in-process [`JobStore`], for tests, demos and gateways that accept
//! losing queued jobs on restart.
//!
//! One `std::sync::Mutex` around all maps makes every method one atomic step, as the trait
//! requires; no method awaits, so the lock is never held across an `.await` (a tokio mutex
//! would only add cost). A poisoned lock is recovered: every method either finishes its
//! changes or makes none before anything can panic.
//!
//! Besides the jobs themselves the state keeps the indexes the SQLite schema has, so the
//! hot paths stay cheap with many finished jobs around: pending jobs per route in claim
//! order, the running set and its size per route (the claim limit, see `running`),
//! finished jobs by expiry, unfinished counts per tenant, every job per tenant in list
//! order (`listing`), the idempotency index and tombstones by purge time (sweeping them is
//! in `retention`). Semantics match
//! [`SqliteStore`](super::sqlite::SqliteStore) in every detail; `tests/job_store.rs` runs
//! one suite against both.
//!
//! Deliveries (callback, admission release) live inside their [`Job`] (`job.callback`,
//! `job.admission`), so `get` and friends return them for free and `sweep` drops them with
//! the job. Pending deliveries are also indexed by due time, one index per kind (see
//! `deliveries`), which keeps `claim_delivery` from walking every job; every change to a
//! delivery goes through one helper that keeps those indexes right.

mod deliveries;
mod listing;
mod retention;
mod running;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::model::{
    Attempt, Delivery, DeliveryKind, Job, JobError, JobStatus, Millis, NewJob, Outcome, RunNote,
    StoredResponse,
};
use super::{
    Canceled, Created, JobStore, ListQuery, Lookup, Page, Purged, Recovery, Redeliver, RouteDepth,
    StoreError,
};

/// `(tenant, route, idempotency key)`.
type IdemKey = (String, String, String);

/// The in-memory job store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    jobs: HashMap<String, Job>,
    idem: HashMap<IdemKey, String>,
    /// Route → `(created_at, id)` of its pending jobs: the first is the next to claim.
    pending: HashMap<String, BTreeSet<(Millis, String)>>,
    running: HashSet<String>,
    /// Route → how many of `running` are its jobs; absent means zero. Read by `claim` for
    /// the route's limit, so it must move with `running` (see `start_run` / `end_run`).
    running_per_route: HashMap<String, u32>,
    /// `(expires_at, id)` of finished jobs: the sweeper takes from the front.
    expiring: BTreeSet<(Millis, String)>,
    /// Tenant → unfinished jobs; absent means zero.
    unfinished: HashMap<String, u64>,
    /// Tenant → `(created_at, id)` of all its jobs, the list order read backwards (see
    /// `listing`); a tenant goes with its last job.
    by_tenant: HashMap<String, BTreeSet<(Millis, String)>>,
    /// Swept job id → `(tenant, purge_at)`.
    tombstones: HashMap<String, (String, Millis)>,
    /// `(purge_at, id)` of tombstones.
    purges: BTreeSet<(Millis, String)>,
    /// Pending callback deliveries by due time.
    callbacks_due: deliveries::DueIndex,
    /// Pending admission deliveries by due time (apart, so neither kind waits on the
    /// other's backlog).
    admissions_due: deliveries::DueIndex,
    /// The same for `started` events.
    started_due: deliveries::DueIndex,
}

// === impl MemoryStore ===

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl State ===

impl State {
    fn tombstoned(&self, tenant: &str, id: &str) -> bool {
        self.tombstones
            .get(id)
            .is_some_and(|(owner, _)| owner == tenant)
    }

    /// Moves an unfinished job to a terminal status: out of the pending / running indexes,
    /// into the expiry index, one fewer unfinished job for its tenant, its waiting
    /// deliveries (callback, admission; if any) due now.
    fn finish(
        &mut self,
        id: &str,
        status: JobStatus,
        response: Option<StoredResponse>,
        error: Option<JobError>,
        expires_at: Millis,
        now: Millis,
    ) -> Option<Job> {
        let job = self.jobs.get_mut(id)?;
        let was = job.status;
        let created_at = job.created_at;
        job.status = status;
        job.updated_at = now;
        job.expires_at = Some(expires_at);
        job.lease_until = None;
        job.response = response;
        job.error = error;
        let (tenant, route) = (job.tenant.clone(), job.route.clone());
        self.schedule_deliveries(id, now);
        match was {
            JobStatus::Pending => self.unqueue(&route, created_at, id),
            _ => self.end_run(id, &route),
        }
        self.expiring.insert((expires_at, id.to_owned()));
        if let Some(n) = self.unfinished.get_mut(&tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unfinished.remove(&tenant);
            }
        }
        self.jobs.get(id).cloned()
    }

    fn unqueue(&mut self, route: &str, created_at: Millis, id: &str) {
        if let Some(queue) = self.pending.get_mut(route) {
            queue.remove(&(created_at, id.to_owned()));
            if queue.is_empty() {
                self.pending.remove(route);
            }
        }
    }
}

// === impl JobStore ===

#[async_trait]
impl JobStore for MemoryStore {
    async fn create(
        &self,
        job: NewJob,
        max_queued: u64,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let mut state = self.state();
        let idem = job
            .idempotency_key
            .as_ref()
            .map(|key| (job.tenant.clone(), job.route.clone(), key.clone()));
        // The key check comes first: a retry of an accepted job is answered with that job
        // even when the tenant's queue is full now.
        if let Some(existing) = idem
            .as_ref()
            .and_then(|k| state.idem.get(k))
            .and_then(|id| state.jobs.get(id))
        {
            return Ok(if existing.fingerprint == job.fingerprint {
                Created::Existing(existing.clone())
            } else {
                Created::KeyConflict
            });
        }
        if state.unfinished.get(&job.tenant).copied().unwrap_or(0) >= max_queued {
            return Ok(Created::QueueFull);
        }
        if state.jobs.contains_key(&job.id) {
            return Err(StoreError::new(format!("job {} already exists", job.id)));
        }
        let job = job.into_job(now);
        if let Some(key) = idem {
            state.idem.insert(key, job.id.clone());
        }
        state
            .pending
            .entry(job.route.clone())
            .or_default()
            .insert((job.created_at, job.id.clone()));
        *state.unfinished.entry(job.tenant.clone()).or_default() += 1;
        state
            .by_tenant
            .entry(job.tenant.clone())
            .or_default()
            .insert((job.created_at, job.id.clone()));
        state.jobs.insert(job.id.clone(), job.clone());
        Ok(Created::New(job))
    }

    async fn get(&self, tenant: &str, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let state = self.state();
        Ok(match state.jobs.get(id) {
            Some(job) if job.tenant != tenant => Lookup::Missing,
            Some(job) if job.expires_at.is_some_and(|at| at <= now) => Lookup::Expired,
            Some(job) => Lookup::Found(job.clone()),
            None if state.tombstoned(tenant, id) => Lookup::Expired,
            None => Lookup::Missing,
        })
    }

    async fn get_unscoped(&self, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let state = self.state();
        Ok(match state.jobs.get(id) {
            Some(job) if job.expires_at.is_some_and(|at| at <= now) => Lookup::Expired,
            Some(job) => Lookup::Found(job.clone()),
            None if state.tombstones.contains_key(id) => Lookup::Expired,
            None => Lookup::Missing,
        })
    }

    async fn claim(
        &self,
        route: &str,
        max_running: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Job>, StoreError> {
        self.state().claim(route, max_running, lease_until, now)
    }

    async fn renew(&self, id: &str, lease_until: Millis, _now: Millis) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.jobs.get_mut(id) {
            Some(job) if job.status == JobStatus::Running => {
                job.lease_until = Some(lease_until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn note_attempt(
        &self,
        id: &str,
        note: &RunNote,
        _now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.state().note_attempt(id, note))
    }

    async fn complete(
        &self,
        id: &str,
        outcome: Outcome,
        retention_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.jobs.get(id).map(|job| job.status) != Some(JobStatus::Running) {
            return Ok(false);
        }
        let (status, response, error) = outcome.into_parts();
        Ok(state
            .finish(
                id,
                status,
                response,
                error,
                now.saturating_add(retention_ms),
                now,
            )
            .is_some())
    }

    async fn cancel_with(
        &self,
        tenant: &str,
        id: &str,
        why: &JobError,
        retention_ms: i64,
        now: Millis,
    ) -> Result<Canceled, StoreError> {
        let mut state = self.state();
        match state.jobs.get(id) {
            Some(job) if job.tenant != tenant => return Ok(Canceled::Missing),
            Some(job) if job.expires_at.is_some_and(|at| at <= now) => {
                return Ok(Canceled::Expired)
            }
            Some(job) if job.status.is_terminal() => {
                return Ok(Canceled::AlreadyTerminal(job.clone()))
            }
            Some(_) => {}
            None if state.tombstoned(tenant, id) => return Ok(Canceled::Expired),
            None => return Ok(Canceled::Missing),
        }
        let expires_at = now.saturating_add(retention_ms);
        match state.finish(
            id,
            JobStatus::Canceled,
            None,
            Some(why.clone()),
            expires_at,
            now,
        ) {
            Some(job) => Ok(Canceled::Done(job)),
            None => Ok(Canceled::Missing),
        }
    }

    async fn recover(
        &self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> Result<usize, StoreError> {
        Ok(self
            .state()
            .recover(now, ignore_leases, retention_ms, decide))
    }

    async fn sweep(
        &self,
        now: Millis,
        retention_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        Ok(self.state().sweep(now, retention_ms, batch))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn depths(&self) -> Result<Vec<RouteDepth>, StoreError> {
        Ok(self.state().depths())
    }

    async fn queue_position(&self, route: &str, id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.state().queue_position(route, id))
    }

    async fn claim_delivery(
        &self,
        kind: DeliveryKind,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Result<Option<(Delivery, Job)>, StoreError> {
        Ok(self
            .state()
            .claim_delivery(kind, now, first_delay_ms, lease_until))
    }

    async fn record_attempt(
        &self,
        job_id: &str,
        kind: DeliveryKind,
        attempt: Attempt,
        _now: Millis,
    ) -> Result<(), StoreError> {
        self.state().record_attempt(job_id, kind, attempt);
        Ok(())
    }

    async fn redeliver(
        &self,
        tenant: &str,
        job_id: &str,
        now: Millis,
    ) -> Result<Redeliver, StoreError> {
        Ok(self.state().redeliver(tenant, job_id, now))
    }

    async fn list(&self, tenant: &str, query: &ListQuery, now: Millis) -> Result<Page, StoreError> {
        Ok(self.state().list(tenant, query, now))
    }

    async fn purge(&self, tenant: &str, id: &str, now: Millis) -> Result<Purged, StoreError> {
        Ok(self.state().purge(tenant, id, now))
    }
}
