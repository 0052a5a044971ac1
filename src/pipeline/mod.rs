//! The gateway as a value: the route table, the upstream client, the job engine and its
//! workers, and the one path every request takes ([`Gateway::handle`], in `request.rs`).
//!
//! Start-up order: the route table is built (each upstream URL parsed once) and its hosts
//! resolved; when a route runs jobs, the store is opened, the engine started on it and the
//! two delivery workers (callbacks, admission notices) started *beside* it — they share the
//! store, the route table and the engine's wake signals, never the engine itself.

pub mod access_log;
mod public;
mod request;
mod respond;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::header::HeaderName;

use crate::config::Config;
use crate::jobs::engine::{self, Engine};
use crate::limits::RateLimiter;
use crate::metrics;
use crate::request_id::RequestIds;
use crate::routes::table::{self, Builtins, Shared, Table};
use crate::store::claims::Outbox;

use crate::upstream::client::{self, HttpClient, StaticResolver};
use crate::upstream::poller::Registry;
use crate::webhook::deliver::Deliverer;

/// The running gateway's shared state.
pub struct Gateway {
    /// Routes and defaults; replaced whole by [`Gateway::reload`].
    table: Shared,
    /// The TLS server config, when the listener speaks TLS; replaced on reload.
    tls: arc_swap::ArcSwapOption<rustls::ServerConfig>,
    /// One reload at a time (a second SIGHUP waits for the first to finish).
    reloading: tokio::sync::Mutex<()>,
    client: HttpClient,
    polls: Registry,
    jobs: Option<Arc<Engine>>,
    /// Callback delivery (its guard checks callback URLs; `/webhook-secret`).
    deliverer: Option<Arc<Deliverer>>,
    /// The admission endpoints' client.
    admission: reqwest::Client,
    draining: AtomicBool,
    unready: AtomicBool,
    /// Flips to `true` when the listener closes: waiting requests answer with their 202.
    drain: tokio::sync::watch::Sender<bool>,
    ids: RequestIds,
    tenant_header: Option<HeaderName>,
    body_idle: std::time::Duration,
    rate: Option<RateLimiter>,
    /// `[server]` (the public base of handed-out URLs is read from it).
    server: crate::config::ServerConfig,
}

impl Gateway {
    /// Builds routes and the client; resolves every upstream host once; opens the job
    /// store and starts the engine and its workers when a route runs jobs.
    pub async fn new(cfg: &Config) -> Result<Arc<Gateway>, String> {
        let runs_jobs = table::runs_jobs(cfg);
        let deliverer = match runs_jobs {
            true => Deliverer::new(&cfg.webhooks)?.map(Arc::new),
            false => None,
        };
        let table = Table::build(cfg, None, builtins(cfg, runs_jobs, deliverer.is_some()))?;
        let resolver = StaticResolver::resolve_all(&table.hosts()).await?;
        let client = client::build(resolver);
        let table: Shared = Arc::new(ArcSwap::from_pointee(table));
        let admission = crate::admission::client()?;
        let jobs = match runs_jobs {
            true => Some(start_jobs(cfg, &table, &client, &admission, deliverer.as_ref()).await?),
            false => None,
        };
        let tls = cfg
            .server
            .tls
            .as_ref()
            .map(crate::config::tls::load)
            .transpose()?;
        Ok(Arc::new(Gateway {
            table,
            tls: arc_swap::ArcSwapOption::new(tls),
            reloading: tokio::sync::Mutex::new(()),
            client,
            polls: Registry::default(),
            jobs,
            deliverer,
            admission,
            draining: AtomicBool::new(false),
            unready: AtomicBool::new(false),
            drain: crate::drain::channel(),
            ids: RequestIds::new(),
            tenant_header: cfg.jobs.tenant_header.clone(),
            body_idle: cfg.server.body_idle_timeout,
            rate: cfg.server.tenant_rate.map(RateLimiter::new),
            server: cfg.server.clone(),
        }))
    }

    /// Replaces the routes (and `[defaults]`) with `cfg`'s, all at once, or changes nothing
    /// and says why. Every new upstream host must resolve, as at start. A config whose
    /// routes run jobs when the gateway started without a job engine is refused: the store
    /// is opened at start (restart to add the first `sync` route).
    pub async fn reload(&self, cfg: &Config) -> Result<(), String> {
        let _one_at_a_time = self.reloading.lock().await;
        match &self.jobs {
            Some(engine) => {
                // The key is bound at start with the rest of [jobs]: a route cannot start
                // handing out links the running gateway could not verify.
                let signed = cfg.routes.iter().find(|r| r.signed_results);
                if let (None, Some(r)) = (&engine.cfg.signing_key, signed) {
                    return Err(format!(
                        "route {:?} has signed_results, but the gateway started without \
                         [jobs].signing_secret: restart to add it",
                        r.name
                    ));
                }
            }
            None => {
                if let Some(r) = cfg.routes.iter().find(|r| r.runs_jobs()) {
                    return Err(format!(
                        "route {:?} runs jobs, but the gateway started without any such \
                         route, so it has no job store open: restart to add it",
                        r.name
                    ));
                }
            }
        }
        let builtins = builtins(cfg, self.jobs.is_some(), self.deliverer.is_some());
        let table = Table::build(cfg, Some(&self.table.load()), builtins)?;
        let resolver = StaticResolver::resolve_all(&table.hosts()).await?;
        // TLS stays on or off as started (the listener decides that); its files are re-read.
        let tls = match (&cfg.server.tls, self.tls.load().is_some()) {
            (Some(files), true) => Some(crate::config::tls::load(files)?),
            _ => None,
        };
        if let Some(tls) = tls {
            self.tls.store(Some(tls));
        }
        // Installed last with the table: the hosts the new routes name are in it.
        self.client.set_resolver(resolver);
        self.table.store(Arc::new(table));
        if let Some(engine) = &self.jobs {
            engine.routes_changed();
        }
        Ok(())
    }

    /// The TLS config new connections use, when the listener speaks TLS.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.load_full()
    }

    /// Whether the gateway takes new work: not draining, and the job store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        if self.unready.load(Ordering::Relaxed) || self.draining.load(Ordering::Relaxed) {
            return Err("draining".into());
        }
        if let Some(engine) = &self.jobs {
            match tokio::time::timeout(std::time::Duration::from_secs(1), engine.store.ping()).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("job store: no answer within 1s".into()),
            }
        }
        Ok(())
    }

    /// Reads the job store's queue depths into the metrics (a no-op without a store; a
    /// failure or a store slower than a second leaves the last reading and counts an error).
    pub async fn refresh_store_gauges(&self) {
        let Some(engine) = &self.jobs else {
            return;
        };
        let read = tokio::time::timeout(std::time::Duration::from_secs(1), engine.store.depths());
        match read.await {
            Ok(Ok(depths)) => metrics::get()
                .set_depths(depths.into_iter().map(|d| (d.route, d.pending, d.running))),
            Ok(Err(e)) => {
                metrics::get().store_errors.inc();
                tracing::warn!(error = %e, "reading queue depths failed");
            }
            Err(_) => {
                metrics::get().store_errors.inc();
                tracing::warn!("reading queue depths: no answer within 1s");
            }
        }
    }

    /// Shutdown, step 1: `/readyz` answers `503` while requests are still served.
    pub fn set_unready(&self) {
        self.unready.store(true, Ordering::Relaxed);
    }

    /// Shutdown, step 2 (the listener is closing): new requests get `503`, and requests
    /// waiting on a task or job answer now with their `202` handle instead of being cut
    /// when the drain times out.
    pub fn start_draining(&self) {
        self.unready.store(true, Ordering::Relaxed);
        self.draining.store(true, Ordering::Relaxed);
        self.drain.send_replace(true);
    }
}

/// The built-in endpoints a gateway with (or without) jobs and callbacks serves.
fn builtins(cfg: &Config, runs_jobs: bool, callbacks: bool) -> Builtins<'_> {
    Builtins {
        jobs: runs_jobs.then_some(cfg.jobs.path.as_str()),
        webhook_secret: runs_jobs && callbacks,
    }
}

/// Opens the store, starts the engine, and beside it the two delivery workers.
async fn start_jobs(
    cfg: &Config,
    table: &Shared,
    client: &HttpClient,
    admission: &reqwest::Client,
    deliverer: Option<&Arc<Deliverer>>,
) -> Result<Arc<Engine>, String> {
    let store = crate::store::open_store(&cfg.jobs).await?;
    let outbox = Outbox::default();
    let jobs_cfg = Arc::new(cfg.jobs.clone());
    let engine = Engine::start(engine::Parts {
        store: Arc::clone(&store),
        cfg: Arc::clone(&jobs_cfg),
        routes: Arc::clone(table),
        client: client.clone(),
        watch_limit: cfg.webhooks.watch_limit,
        outbox: outbox.clone(),
        clock: crate::clock::system(),
    })
    .await?;
    // Always: a reload may add an admission endpoint, and notices of jobs a removed
    // endpoint admitted must still go out.
    let notices = crate::admission::worker::Worker {
        client: admission.clone(),
        schedule: Arc::new(cfg.webhooks.retry_schedule.clone()),
        routes: Arc::clone(table),
    };
    let weak = Arc::downgrade(&store);
    tokio::spawn(crate::admission::worker::worker(
        weak.clone(),
        Arc::clone(&outbox.notices),
        notices,
    ));
    if let Some(deliverer) = deliverer {
        let callbacks = crate::webhook::deliver::Worker {
            deliverer: Arc::clone(deliverer),
            routes: Arc::clone(table),
            jobs: jobs_cfg,
            base: public::for_callbacks(&cfg.server),
        };
        tokio::spawn(crate::webhook::deliver::worker(
            weak,
            Arc::clone(&outbox.callbacks),
            callbacks,
        ));
    }
    Ok(engine)
}
