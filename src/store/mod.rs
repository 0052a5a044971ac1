//! The `JobStore` trait: every operation the gateway needs from durable storage.
//!
//! Shaped so a shared store (Redis) can implement it without changing callers: each
//! method is one atomic step (a transaction in SQLite, a Lua script in Redis), and nothing
//! relies on in-process state. In particular:
//! - [`JobStore::create`] is create-if-absent on `(tenant, route, idempotency key)` and
//!   checks the tenant's unfinished-job count in the same step;
//! - [`JobStore::claim`] moves one pending job of a route to running with a lease, so two
//!   runners never take the same job, and only while fewer than the route's limit are
//!   running (counted in the store, so the limit is global, not per process);
//! - [`JobStore::complete`] and [`JobStore::cancel`] race safely: whichever lands first
//!   wins, the other reports that the job was no longer running.
//!
//! Deliveries: a job carries up to one delivery per [`DeliveryKind`] — its callback
//! (`job.callback`) and its admission's settle / release (`job.admission`) — each created
//! in state `waiting` with the job. Every transition to a terminal state (complete, cancel
//! of a pending or running job, recover → failed) makes *every* waiting delivery of the
//! job `pending` with `next_attempt_at = now` in the same atomic step, so a finished job's
//! callback or admission release can never be forgotten; re-queueing an interrupted job
//! (recover → retry) is not terminal and leaves them waiting. Deliveries are claimed per
//! kind with a lease like jobs, so each attempt is made once even with several runners,
//! and each kind has its own due index, so a backlog of one kind never delays the other.
//!
//! Retention: a finished job keeps answering until `expires_at`; after that
//! [`JobStore::get`] (and [`JobStore::get_unscoped`]) reports [`Lookup::Expired`] (→ `410`) — also after the sweeper
//! ([`JobStore::sweep`]) has deleted the row, because it leaves a small tombstone that
//! lives for [`TOMBSTONE_FACTOR`] × retention.
//!
//! Metrics: [`JobStore::depths`] counts the unfinished jobs per route for `/metrics`, read
//! at one instant where the store allows it (see each store for how).
//!
//! Queue position: [`JobStore::queue_position`] reads a pending job's place on its route's
//! shared queue (every tenant's jobs, in claim order), from the same pending index `claim`
//! takes from, so on Redis every replica reports the same number.
//!
//! Listing and purge: [`JobStore::list`] pages through one tenant's jobs newest first along
//! a per-tenant index every store keeps in the same atomic steps that create and delete
//! jobs; [`JobStore::purge`] deletes a finished job at once, without a tombstone (see
//! [`listing`] for the order, the cursor, the bounded work per page and what a purge takes
//! with it).

pub mod claims;
pub mod deadline;
pub mod document;
pub mod headers;
pub mod listing;
pub mod memory;
pub mod model;
pub mod open;
pub mod redis;
pub mod sqlite;

pub use listing::{Cursor, ListQuery, Page, Purged};
pub use model::{
    Admission, Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, Job, JobError, JobKind,
    JobStatus, Millis, NewAdmission, NewJob, Outcome, RunNote, StoredRequest, StoredResponse,
};
pub use open::open_store;

use std::collections::BTreeMap;

use async_trait::async_trait;

/// How long a tombstone outlives its job's expiry, as a multiple of the retention.
pub const TOMBSTONE_FACTOR: i64 = 7;

/// The store could not do its work (disk, connection, corrupt row): a `503` for clients.
#[derive(Debug, Clone, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    /// Wraps any displayable error.
    pub fn new(e: impl std::fmt::Display) -> Self {
        StoreError(e.to_string())
    }
}

/// What [`JobStore::create`] did.
// A job is returned once per call, never held in bulk: boxing it would only add an
// allocation to every lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Created {
    /// Stored durably as a new pending job.
    New(Job),
    /// The idempotency key is taken by the same request: the original job.
    Existing(Job),
    /// The idempotency key is taken by a different request (→ `422`).
    KeyConflict,
    /// The tenant already has `max_queued` unfinished jobs (→ `429`).
    QueueFull,
}

/// What [`JobStore::get`] found.
// Not boxed: a `Lookup` lives for one request and is matched at once; `Created` and
// `Canceled` carry a `Job` unboxed too, and the API stays uniform.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The job, within retention.
    Found(Job),
    /// It existed for this tenant but is past retention (→ `410`).
    Expired,
    /// Never existed, or belongs to another tenant (→ `404`).
    Missing,
}

/// What [`JobStore::cancel`] did.
// A job is returned once per call, never held in bulk: boxing it would only add an
// allocation to every lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Canceled {
    /// It was pending or running and is now canceled (the job after the change).
    Done(Job),
    /// It had already finished (→ `409`).
    AlreadyTerminal(Job),
    /// See [`Lookup::Expired`].
    Expired,
    /// See [`Lookup::Missing`].
    Missing,
}

/// What to do with running jobs whose lease ran out (their runner died).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Back to pending: the route allows re-running interrupted jobs.
    Retry,
    /// Failed with code `interrupted`.
    Fail,
}

/// How many jobs of one route are unfinished right now (see [`JobStore::depths`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDepth {
    /// The route's name.
    pub route: String,
    /// Jobs waiting to be claimed.
    pub pending: u64,
    /// Jobs claimed and not finished.
    pub running: u64,
}

impl RouteDepth {
    /// Per-route counts, in any order and possibly split over several entries per route
    /// (`(route, pending, running)`), as [`JobStore::depths`] answers them: one entry per
    /// route, sorted by route name (byte order), routes with nothing unfinished left out.
    pub(crate) fn tally(counts: impl IntoIterator<Item = (String, u64, u64)>) -> Vec<RouteDepth> {
        let mut routes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (route, pending, running) in counts {
            let entry = routes.entry(route).or_default();
            entry.0 = entry.0.saturating_add(pending);
            entry.1 = entry.1.saturating_add(running);
        }
        routes
            .into_iter()
            .filter(|(_, (pending, running))| *pending > 0 || *running > 0)
            .map(|(route, (pending, running))| RouteDepth {
                route,
                pending,
                running,
            })
            .collect()
    }
}

/// Durable job storage. All methods are atomic; all times are passed in by the caller.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Stores `job` as pending unless its idempotency key is taken or the tenant's queue is
    /// full (`max_queued` unfinished jobs). Durable before it returns `New`.
    async fn create(
        &self,
        job: NewJob,
        max_queued: u64,
        now: Millis,
    ) -> Result<Created, StoreError>;

    /// The job `id` as `tenant` may see it.
    async fn get(&self, tenant: &str, id: &str, now: Millis) -> Result<Lookup, StoreError>;

    /// The job `id` whichever tenant it belongs to: `Expired` past retention or when a
    /// tombstone of any tenant is left, else `Missing`. Only for callers that authenticated
    /// the id by other means — a signed result URL, whose signature names the job.
    async fn get_unscoped(&self, id: &str, now: Millis) -> Result<Lookup, StoreError>;

    /// Claims the oldest pending job of `route`: running, `attempts + 1`, leased until
    /// `lease_until`. `None` when nothing is pending, or when `max_running` jobs of
    /// `route` are already running. That count is taken in the store, in the same atomic
    /// step as the claim, so the limit holds across every process sharing the store (a
    /// per-process semaphore alone would allow one limit per replica).
    async fn claim(
        &self,
        route: &str,
        max_running: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Job>, StoreError>;

    /// Extends a running job's lease. `false` if it is no longer running (canceled, or
    /// recovered by someone else): the runner must stop.
    async fn renew(&self, id: &str, lease_until: Millis, now: Millis) -> Result<bool, StoreError>;

    /// Records a retry within a running job's run (`routes[].retry`): its last error
    /// ([`RunNote::Failed`], before the backoff) or the start of its next upstream attempt
    /// ([`RunNote::Next`]: `attempts + 1`, after the backoff). Persisted, so a status read
    /// on any replica shows them and a crash mid-backoff keeps the count (the re-claim adds
    /// the attempt it makes). `updated_at` is left alone: the state did not change. `false`
    /// if the job is no longer running (canceled, or recovered by someone else): the runner
    /// must stop.
    async fn note_attempt(&self, id: &str, note: &RunNote, now: Millis)
        -> Result<bool, StoreError>;

    /// Records the end of a run: succeeded / failed, `expires_at = now + retention_ms`.
    /// `false` if the job was no longer running (canceled meanwhile): nothing changes.
    async fn complete(
        &self,
        id: &str,
        outcome: Outcome,
        retention_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Cancels a pending or running job of `tenant` on the client's request (error code
    /// `canceled`): [`JobStore::cancel_with`] with that reason.
    async fn cancel(
        &self,
        tenant: &str,
        id: &str,
        retention_ms: i64,
        now: Millis,
    ) -> Result<Canceled, StoreError> {
        let why = JobError {
            code: "canceled".into(),
            message: "canceled by the client".into(),
        };
        self.cancel_with(tenant, id, &why, retention_ms, now).await
    }

    /// Cancels a pending or running job of `tenant`, recording `why` as its error: the one
    /// transition both a client's `DELETE` and a passed deadline (`deadline_exceeded`, see
    /// [`deadline`]) take, so the callback and the admission release follow either alike.
    async fn cancel_with(
        &self,
        tenant: &str,
        id: &str,
        why: &JobError,
        retention_ms: i64,
        now: Millis,
    ) -> Result<Canceled, StoreError>;

    /// Handles running jobs whose lease ended before `now` (all running jobs when
    /// `ignore_leases`, used at start by single-process stores): `decide(route)` says
    /// retry or fail. A failed job expires `retention_ms` later. Returns how many.
    async fn recover(
        &self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        // `for<'r>` spelled out: `#[async_trait]` would otherwise name the elided lifetime
        // of `&str` after the method, and an implementation could then only pass strings
        // that outlive the call — never the route names it just read from storage.
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> Result<usize, StoreError>;

    /// Deletes up to `batch` jobs whose `expires_at` is before `now`, leaving tombstones,
    /// and purges old tombstones. A deleted job takes everything of it along: its
    /// idempotency key and its deliveries of every kind with their due-index entries.
    /// Returns how many jobs were deleted.
    async fn sweep(
        &self,
        now: Millis,
        retention_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError>;

    /// Whether the store is reachable (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Unfinished jobs per route right now: (route, pending, running) for every route that
    /// has any, across all replicas sharing the store, sorted by route. Read-only; cheap
    /// enough to call per scrape (`/metrics`).
    async fn depths(&self) -> Result<Vec<RouteDepth>, StoreError>;

    /// Where pending job `id` of `route` stands in that route's queue: `1` for the next job
    /// a claim takes, counting every tenant's pending jobs ahead of it in claim order
    /// (`created_at`, then id). `None` when the job is not pending on `route` (claimed,
    /// finished, unknown). Read-only and not scoped to a tenant: the caller has read the
    /// job for its tenant already, and only ever shows that job's own number. The cost is
    /// the position itself at most (a count over the route's pending index; Redis: `ZRANK`).
    async fn queue_position(&self, route: &str, id: &str) -> Result<Option<u64>, StoreError>;

    /// Ids of jobs that reached a terminal state in *any* process sharing this store, as
    /// they happen (Redis pub/sub), so a waiter on one replica wakes when another replica
    /// finishes the job. Best effort: waiters still re-read the store once a second.
    /// `None` for single-process stores (memory, SQLite), where in-process wake-ups
    /// already cover every completion.
    async fn finished_feed(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        None
    }

    // === deliveries (callbacks, admission releases) ===

    /// Claims the most overdue delivery of `kind`: state pending and due —
    /// `next_attempt_at <= now`, or for a first attempt (`attempts == 0`)
    /// `next_attempt_at + first_delay_ms <= now` — and not leased (or its lease ended).
    /// Leases it until `lease_until` and returns it with its job (the payload is built from
    /// the job). Deliveries of the other kind are never returned, nor looked at: each kind
    /// is due-indexed on its own, and `first_delay_ms` is that kind's schedule's.
    async fn claim_delivery(
        &self,
        kind: DeliveryKind,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Result<Option<(Delivery, Job)>, StoreError>;

    /// Records one attempt of job `job_id`'s delivery of `kind`: `attempts + 1`, last
    /// status and error, lease cleared, and the state from `attempt.next` (`Retry(at)` →
    /// pending at `at`; `Delivered`/`GiveUp`/`Stop` → delivered/failed/stopped). The job's
    /// other delivery is untouched. An unknown job (swept meanwhile) or one without a
    /// delivery of `kind` is left alone, and is not an error.
    async fn record_attempt(
        &self,
        job_id: &str,
        kind: DeliveryKind,
        attempt: Attempt,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// `POST {jobs}/{id}/callback`: schedules a fresh delivery (attempts back to 0, due
    /// now) of a finished job of `tenant` that has a callback. Callbacks only: an admission
    /// is settled or released once, never again on a client's request.
    async fn redeliver(
        &self,
        tenant: &str,
        job_id: &str,
        now: Millis,
    ) -> Result<Redeliver, StoreError>;

    // === listing and purge ===

    /// A page of `tenant`'s jobs, newest first (`created_at`, then id, descending), after
    /// `query.after`, filtered by status and route; jobs past retention at `now` are left
    /// out. Reads at most [`listing::SCAN_LIMIT`] entries of the tenant's index, so a page
    /// may hold fewer than `query.limit` jobs and still have a `next` cursor. The jobs are
    /// summaries ([`Job::summary`]): no request or response headers and bodies.
    async fn list(&self, tenant: &str, query: &ListQuery, now: Millis) -> Result<Page, StoreError>;

    /// Deletes job `id` of `tenant` at once if it is terminal and its admission notice (if
    /// any) is settled, with its deliveries and idempotency key and no tombstone: `get`
    /// then answers `Missing`. Counts of unfinished jobs are untouched (only finished jobs
    /// go). Past retention → `Expired` (the sweeper deletes it); another tenant's or an
    /// unknown id → `Missing`.
    async fn purge(&self, tenant: &str, id: &str, now: Millis) -> Result<Purged, StoreError>;
}

/// What [`JobStore::redeliver`] did.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Redeliver {
    /// Scheduled; the job after the change.
    Scheduled(Job),
    /// The job has not finished: its delivery will happen anyway (→ `409`).
    NotFinished(Job),
    /// The job has no callback (→ `409`).
    NoCallback(Job),
    /// See [`Lookup::Expired`].
    Expired,
    /// See [`Lookup::Missing`].
    Missing,
}
