//! The job engine: the store, the per-route runners, and the waiters.
//!
//! One background task (the *dispatcher*) claims pending jobs per route while that route
//! has a free slot under `max_in_flight`, and spawns one task per claimed job. The limit
//! is enforced twice: a local semaphore bounds this process's tasks, and the store's claim
//! refuses once the route has that many running jobs in *any* process sharing the store,
//! so replicas together stay under it. It is woken at once when a job is created (or, on
//! a shared store, finished by any replica) and otherwise looks every second, which also
//! picks up work other processes left (a dead runner's expired leases are recovered on
//! the same tick). A running job renews its lease every `[jobs].lease` / 3; when renewal
//! reports the job is no longer running (canceled), the upstream call is dropped.
//! Deadlines (`Cancel-After`, `max_queue_time`, `max_run_time`) are enforced by `deadlines`
//! (queued jobs) and the runner (running ones).
//!
//! Waiters (`wait=N` on a submit, `Prefer: wait` on `GET {jobs}/{id}`, a live status
//! stream) are woken through a per-job `Notify` when this process changes the job's state
//! — a claim, a completion, a cancel — or the store's finished feed reports another
//! process finished it, and re-read the store once a second as a fallback, so a change
//! they missed (a claim or a lease recovery by another process) still reaches them within
//! a second. A wake only says "read again": a long-poll woken by a claim reads a running
//! job and goes back to waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::run;
use crate::clock::Clock;
use crate::config::{JobsConfig, StoreConfig};
use crate::routes::table::{Route, Shared};
use crate::store::claims::Outbox;
use crate::store::document::Links;
use crate::store::{Job, JobStore, Lookup, Recovery, StoreError};
use crate::upstream::client::HttpClient;

/// Store + dispatcher + waiters, shared by the submit path and the job API.
///
/// The delivery workers (callbacks, admission notices) are not part of it: they are
/// started beside it with the store and the [`Outbox`] it wakes.
pub struct Engine {
    /// The durable store.
    pub store: Arc<dyn JobStore>,
    /// `[jobs]`.
    pub cfg: Arc<JobsConfig>,
    /// The route table (the gateway's own; a reload swaps it).
    routes: Shared,
    client: HttpClient,
    /// How long a handed-off task operation is watched.
    pub(crate) watch_limit: Duration,
    /// Wakes the delivery workers when a job finishes or is redelivered.
    outbox: Outbox,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    /// Per-job state-change signals, held weakly: a job nobody waits on has none.
    changes: Mutex<HashMap<String, Weak<Notify>>>,
    cancels: Mutex<HashMap<String, Arc<Notify>>>,
    /// Queue deadlines of the jobs this process accepted (see `deadlines`).
    queue_timers: deadlines::QueueTimers,
    /// Run-time estimates per route, for `Retry-After` (see [`super::pace`]).
    pub(crate) pace: super::pace::Pace,
}

/// What the engine is made of.
pub struct Parts {
    /// The opened store.
    pub store: Arc<dyn JobStore>,
    /// `[jobs]`.
    pub cfg: Arc<JobsConfig>,
    /// The route table.
    pub routes: Shared,
    /// The upstream client jobs are run with.
    pub client: HttpClient,
    /// `[webhooks].watch_limit`.
    pub watch_limit: Duration,
    /// The delivery workers' wake signals.
    pub outbox: Outbox,
    /// Wall time.
    pub clock: Arc<dyn Clock>,
}

impl Engine {
    /// Recovers jobs a previous process left running, starts the dispatcher and the
    /// sweeper.
    pub async fn start(p: Parts) -> Result<Arc<Engine>, String> {
        // A single-process store (memory, SQLite): every job still marked running was
        // interrupted by the previous process, whatever its lease says. A shared store
        // (Redis) may hold jobs other live replicas are running: only expired leases count.
        let single_process = !matches!(p.cfg.store, StoreConfig::Redis(_));
        let engine = Arc::new(Engine {
            store: p.store,
            cfg: p.cfg,
            routes: p.routes,
            client: p.client,
            watch_limit: p.watch_limit,
            outbox: p.outbox,
            clock: p.clock,
            wake: Arc::new(Notify::new()),
            changes: Mutex::default(),
            cancels: Mutex::default(),
            queue_timers: deadlines::QueueTimers::default(),
            pace: super::pace::Pace::default(),
        });
        let n = engine
            .recover(single_process)
            .await
            .map_err(|e| e.to_string())?;
        if n > 0 {
            tracing::info!(jobs = n, "recovered jobs interrupted by the previous run");
        }
        tokio::spawn(dispatch(Arc::downgrade(&engine)));
        tokio::spawn(sweep(Arc::downgrade(&engine)));
        tokio::spawn(deadlines::expire_queued(Arc::downgrade(&engine)));
        if let Some(feed) = engine.store.finished_feed().await {
            tokio::spawn(relay_finished(Arc::downgrade(&engine), feed));
        }
        Ok(engine)
    }

    /// Now, in milliseconds since the epoch, from the engine's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The client jobs are run with.
    pub(crate) fn client(&self) -> &HttpClient {
        &self.client
    }

    /// The route called `name` in the current table.
    pub fn route(&self, name: &str) -> Option<Arc<Route>> {
        self.routes.load().get(name).cloned()
    }

    /// Wakes the dispatcher after a reload, so a route that came back or got more slots
    /// starts claiming at once. Jobs already running keep the route they were started
    /// with; queued jobs run with the new settings.
    pub fn routes_changed(&self) {
        self.wake();
    }

    /// Where `job`'s links point, under the public `base` (see
    /// [`crate::routes::table::Table::links`]).
    pub fn links(&self, job: &Job, base: &str) -> Links<'_> {
        self.routes.load().links(&self.cfg, job, base)
    }

    /// Retention in milliseconds.
    pub fn retention_ms(&self) -> i64 {
        i64::try_from(self.cfg.retention.as_millis()).unwrap_or(i64::MAX)
    }

    async fn recover(&self, ignore_leases: bool) -> Result<usize, StoreError> {
        let routes = self.routes.load();
        let decide = |route: &str| match routes.get(route) {
            Some(r) if r.cfg.retry_interrupted => Recovery::Retry,
            _ => Recovery::Fail,
        };
        self.store
            .recover(self.now(), ignore_leases, self.retention_ms(), &decide)
            .await
    }

    /// Wakes the delivery workers (a delivery became due).
    pub fn wake_deliveries(&self) {
        self.outbox.wake();
    }

    /// Wakes the dispatcher (a job was created).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The signal [`Engine::changed`] gives for job `id`; waiters hold it while they wait.
    pub(crate) fn change_signal(&self, id: &str) -> Arc<Notify> {
        let mut map = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get(id).and_then(Weak::upgrade) {
            return n;
        }
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let n = Arc::new(Notify::new());
        map.insert(id.to_owned(), Arc::downgrade(&n));
        n
    }

    /// Tells waiters of `id` that its state changed (they read it again).
    pub(crate) fn changed(&self, id: &str) {
        let n = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .and_then(Weak::upgrade);
        if let Some(n) = n {
            n.notify_waiters();
        }
    }

    /// Tells waiters of `id` that it reached a terminal state, and the delivery workers
    /// that its deliveries are due.
    pub(crate) fn finished(&self, id: &str) {
        self.changed(id);
        self.outbox.wake();
    }

    /// Registers a running job so a cancel can stop it; returns its stop signal.
    pub(crate) fn register_run(&self, id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), Arc::clone(&n));
        n
    }

    pub(crate) fn unregister_run(&self, id: &str) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Stops the local run of `id`, if this process runs it.
    pub fn abort_run(&self, id: &str) {
        if let Some(n) = self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            n.notify_one();
        }
    }

    /// Reads job `id` until it is terminal or `deadline` passes; the last read is returned.
    pub async fn wait_terminal(
        &self,
        tenant: &str,
        id: &str,
        deadline: Instant,
    ) -> Result<Lookup, StoreError> {
        let signal = self.change_signal(id);
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.store.get(tenant, id, self.now()).await?;
            let terminal = matches!(&found, Lookup::Found(j) if j.status.is_terminal());
            if terminal || !matches!(found, Lookup::Found(_)) || Instant::now() >= deadline {
                return Ok(found);
            }
            let tick = (Instant::now() + Duration::from_secs(1)).min(deadline);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(tick) => {}
            }
        }
    }
}

/// Claims and starts jobs while routes have free slots; every second, or when woken.
async fn dispatch(engine: Weak<Engine>) {
    let mut last_recovery = Instant::now();
    loop {
        let Some(e) = engine.upgrade() else { return };
        if last_recovery.elapsed() >= Duration::from_secs(1) {
            last_recovery = Instant::now();
            if let Err(err) = e.recover(false).await {
                crate::metrics::get().store_errors.inc();
                tracing::warn!(error = %err, "lease recovery failed");
            }
        }
        let routes = e.routes.load_full();
        for route in routes.job_routes() {
            let Some(slots) = &route.jobs else { continue };
            loop {
                let Ok(permit) = Arc::clone(&slots.semaphore).try_acquire_owned() else {
                    break;
                };
                let now = e.now();
                let lease = now + i64::try_from(e.cfg.lease.as_millis()).unwrap_or(i64::MAX);
                let claimed = e
                    .store
                    .claim(&route.cfg.name, slots.max_running, lease, now)
                    .await;
                match claimed {
                    Ok(Some(job)) => {
                        // Past its queue deadline: never sent (canceled, slot freed).
                        if e.claimed_too_late(&job).await {
                            continue;
                        }
                        // pending → running: a live status stream shows it at once.
                        e.changed(&job.id);
                        let e2 = Arc::clone(&e);
                        tokio::spawn(async move {
                            run::run(&e2, job).await;
                            drop(permit);
                            e2.wake();
                        });
                    }
                    Ok(None) => break,
                    Err(err) => {
                        crate::metrics::get().store_errors.inc();
                        tracing::warn!(error = %err, route = %route.cfg.name, "claim failed");
                        break;
                    }
                }
            }
        }
        // Hold only the wake signal while idle, so a dropped gateway ends this task.
        let wake = Arc::clone(&e.wake);
        drop(e);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Wakes local waiters for jobs other replicas finished, and the dispatcher: a job
/// finished elsewhere may have freed a slot under a route's shared limit that this
/// replica's claims were refused for (otherwise it would wait for its next tick).
async fn relay_finished(engine: Weak<Engine>, mut feed: tokio::sync::mpsc::Receiver<String>) {
    while let Some(id) = feed.recv().await {
        let Some(e) = engine.upgrade() else { return };
        // Finished elsewhere while this replica still runs it: a watch completed by its
        // task callback on another replica. Its run stops now, not at the next renewal
        // or fallback poll (a run that completed here unregistered itself first).
        e.abort_run(&id);
        e.finished(&id);
        e.wake();
    }
}

/// Deletes expired jobs in bounded batches, once a minute.
async fn sweep(engine: Weak<Engine>) {
    const BATCH: usize = 500;
    loop {
        let Some(e) = engine.upgrade() else { return };
        loop {
            match e.store.sweep(e.now(), e.retention_ms(), BATCH).await {
                Ok(n) if n == BATCH => tokio::task::yield_now().await,
                Ok(_) => break,
                Err(err) => {
                    crate::metrics::get().store_errors.inc();
                    tracing::warn!(error = %err, "sweep failed");
                    break;
                }
            }
        }
        drop(e);
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

mod deadlines;
#[cfg(test)]
mod tests;
