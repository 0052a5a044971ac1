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
//!
//! Waiters (`wait=N` on a submit, `Prefer: wait` on `GET {jobs}/{id}`) are woken by
//! completion through a per-job `Notify`, and re-read the store once a second as a
//! fallback, so a completion they missed (or one made by another process) still reaches
//! them within a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::document::Links;
use super::model::{now_millis, Job};
use super::store::{JobStore, Lookup, Recovery, StoreError};
use super::{memory::MemoryStore, run, sqlite::SqliteStore};
use crate::client::HttpClient;
use crate::config::{Config, JobsConfig, StoreConfig};
use crate::webhook::deliver::Deliverer;

mod routes;
pub use routes::{job_routes, JobRoute, JobRoutes};

/// Store + runners + waiters, shared by the submit path and the job API.
pub struct Engine {
    /// The durable store.
    pub store: Arc<dyn JobStore>,
    /// `[jobs]`.
    pub cfg: JobsConfig,
    /// The routes that run jobs, swapped whole on a config reload (see [`Engine::set_routes`]).
    routes: ArcSwap<JobRoutes>,
    pub(crate) client: HttpClient,
    /// Callback delivery (present when `[webhooks].signing_secret` is set).
    pub deliverer: Option<Deliverer>,
    deliveries: Arc<Notify>,
    /// Wakes the admission notice worker.
    notices: Arc<Notify>,
    /// Client for admission endpoints (reserve, settle, release).
    pub admission: reqwest::Client,
    /// Retry schedule of settle/release notices (`[webhooks].retry_schedule`).
    pub(crate) notice_schedule: Vec<std::time::Duration>,
    /// How long a handed-off task operation is watched.
    pub(crate) watch_limit: Duration,
    wake: Arc<Notify>,
    done: Mutex<HashMap<String, Weak<Notify>>>,
    cancels: Mutex<HashMap<String, Arc<Notify>>>,
}

/// Opens the configured store (`[jobs].store`; a Redis store uses `[jobs].key_prefix`).
pub async fn open_store(cfg: &JobsConfig) -> Result<Arc<dyn JobStore>, String> {
    match &cfg.store {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Sqlite(path) => SqliteStore::open(path)
            .await
            .map(|s| Arc::new(s) as Arc<dyn JobStore>)
            .map_err(|e| format!("cannot open {}: {e}", path.display())),
        StoreConfig::Redis(url) => super::redis::RedisStore::open(url, &cfg.key_prefix)
            .await
            .map(|s| Arc::new(s) as Arc<dyn JobStore>)
            .map_err(|e| {
                // Host and port only: the URL may carry a password.
                let host = url.host_str().unwrap_or_default();
                let port = url.port().unwrap_or(6379);
                format!("cannot open the Redis store at {host}:{port}: {e}")
            }),
    }
}

impl Engine {
    /// Opens the store, recovers jobs a previous process left running, starts the
    /// dispatcher and the sweeper. `None` when the config has no `sync` route.
    pub async fn start(cfg: &Config, client: HttpClient) -> Result<Option<Arc<Engine>>, String> {
        let routes = job_routes(cfg, None)?;
        if routes.is_empty() {
            return Ok(None);
        }
        let store = open_store(&cfg.jobs).await?;
        let engine = Arc::new(Engine {
            store,
            cfg: cfg.jobs.clone(),
            routes: ArcSwap::from_pointee(routes),
            client,
            deliverer: Deliverer::new(&cfg.webhooks)?,
            deliveries: Arc::new(Notify::new()),
            notices: Arc::new(Notify::new()),
            admission: crate::admission::client()?,
            notice_schedule: cfg.webhooks.retry_schedule.clone(),
            watch_limit: cfg.webhooks.watch_limit,
            wake: Arc::new(Notify::new()),
            done: Mutex::default(),
            cancels: Mutex::default(),
        });
        // A single-process store (memory, SQLite): every job still marked running was
        // interrupted by the previous process, whatever its lease says. A shared store
        // (Redis) may hold jobs other live replicas are running: only expired leases count.
        let single_process = !matches!(cfg.jobs.store, StoreConfig::Redis(_));
        let n = engine
            .recover(single_process)
            .await
            .map_err(|e| e.to_string())?;
        if n > 0 {
            tracing::info!(jobs = n, "recovered jobs interrupted by the previous run");
        }
        tokio::spawn(dispatch(Arc::downgrade(&engine)));
        tokio::spawn(sweep(Arc::downgrade(&engine)));
        if let Some(feed) = engine.store.finished_feed().await {
            tokio::spawn(relay_finished(Arc::downgrade(&engine), feed));
        }
        // Always: a reload may add an admission endpoint, and notices of jobs a removed
        // endpoint admitted must still go out.
        tokio::spawn(crate::admission::worker::worker(
            Arc::downgrade(&engine),
            Arc::clone(&engine.notices),
        ));
        if engine.deliverer.is_some() {
            let wake = Arc::clone(&engine.deliveries);
            tokio::spawn(crate::webhook::deliver::worker(
                Arc::downgrade(&engine),
                wake,
            ));
        }
        Ok(Some(engine))
    }

    /// The routes that run jobs now.
    pub fn routes(&self) -> Arc<JobRoutes> {
        self.routes.load_full()
    }

    /// Replaces the job routes (a config reload) and wakes the dispatcher, so a route that
    /// came back or got more slots starts claiming at once. Jobs already running keep the
    /// route they were started with; queued jobs run with the new settings.
    pub fn set_routes(&self, routes: JobRoutes) {
        self.routes.store(Arc::new(routes));
        self.wake();
    }

    /// Where `job`'s links point. Its `download_url` is signed only when the key was
    /// configured at start and the job's route, as configured *now*, has `signed_results`
    /// (the record keeps the route's name, not its settings).
    pub fn links(&self, job: &Job) -> Links<'_> {
        let signed = self
            .routes
            .load()
            .get(&job.route)
            .is_some_and(|r| r.cfg.signed_results);
        Links {
            prefix: &self.cfg.path,
            signer: self.cfg.signing_key.as_ref().filter(|_| signed),
        }
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
            .recover(now_millis(), ignore_leases, self.retention_ms(), &decide)
            .await
    }

    /// Wakes the delivery worker (a delivery became due).
    pub fn wake_deliveries(&self) {
        self.deliveries.notify_one();
        self.notices.notify_one();
    }

    /// Wakes the dispatcher (a job was created).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn done_signal(&self, id: &str) -> Arc<Notify> {
        let mut map = self.done.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Tells waiters of `id` that it reached a terminal state.
    pub(crate) fn finished(&self, id: &str) {
        let n = self
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .and_then(Weak::upgrade);
        if let Some(n) = n {
            n.notify_waiters();
        }
        self.deliveries.notify_one();
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
        let signal = self.done_signal(id);
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found = self.store.get(tenant, id, now_millis()).await?;
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
        for route in routes.values() {
            loop {
                let Ok(permit) = Arc::clone(&route.slots).try_acquire_owned() else {
                    break;
                };
                let lease =
                    now_millis() + i64::try_from(e.cfg.lease.as_millis()).unwrap_or(i64::MAX);
                let claimed = e
                    .store
                    .claim(&route.cfg.name, route.max_running, lease, now_millis())
                    .await;
                match claimed {
                    Ok(Some(job)) => {
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
            match e.store.sweep(now_millis(), e.retention_ms(), BATCH).await {
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

/// The job's route, if still configured.
pub(crate) fn route_of(engine: &Engine, job: &Job) -> Option<Arc<JobRoute>> {
    engine.routes.load().get(&job.route).cloned()
}
