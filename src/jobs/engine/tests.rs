//! Lifecycle logic driven by a [`ManualClock`] and tokio's paused clock: nothing sleeps.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;

use super::*;
use crate::clock::ManualClock;
use crate::routes::table::{Builtins, Table};
use crate::store::memory::MemoryStore;
use crate::store::{JobKind, JobStatus, NewJob, StoredRequest};
use crate::upstream::client::{self, StaticResolver};

const T0: i64 = 1_800_000_000_000;

const CFG: &str = r#"
[server]
listen = "127.0.0.1:0"

[jobs]
store = "memory"
lease = "30s"

[[routes]]
name = "s"
kind = "sync"
path = "/s"
methods = ["GET", "POST"]
upstream = "http://127.0.0.1:9"
max_in_flight = 4
"#;

async fn engine(clock: Arc<ManualClock>) -> (Arc<Engine>, Arc<dyn JobStore>) {
    let cfg = crate::config::load_str(CFG, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    let table = Table::build(&cfg, None, Builtins::default()).unwrap_or_else(|e| panic!("{e}"));
    let resolver = StaticResolver::resolve_all(&[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn JobStore> = Arc::new(MemoryStore::new());
    let engine = Engine::start(Parts {
        store: Arc::clone(&store),
        cfg: Arc::new(cfg.jobs.clone()),
        routes: Arc::new(ArcSwap::from_pointee(table)),
        client: client::build(resolver),
        watch_limit: cfg.webhooks.watch_limit,
        outbox: Outbox::default(),
        clock,
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (engine, store)
}

fn job(id: &str) -> NewJob {
    NewJob {
        id: id.into(),
        tenant: String::new(),
        route: "s".into(),
        idempotency_key: None,
        fingerprint: String::new(),
        request: StoredRequest {
            method: "POST".into(),
            target: "/s".into(),
            headers: Vec::new(),
            body: Bytes::new(),
        },
        kind: JobKind::Call,
        callback: None,
        notify_started: false,
        admission: None,
        deadline: None,
    }
}

/// A job another process claimed and then abandoned is failed as `interrupted` once its
/// lease has run out by the engine's clock — tested in no time at all.
#[tokio::test(start_paused = true)]
async fn an_abandoned_lease_is_recovered_when_the_clock_passes_it() {
    let clock = ManualClock::at(T0);
    let (engine, store) = engine(Arc::clone(&clock)).await;
    store
        .create(job("j1"), 10, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // "Another replica" claims it with a 30 s lease, then dies.
    let claimed = store.claim("s", 1, T0 + 30_000, T0).await;
    assert!(matches!(claimed, Ok(Some(_))));

    // The dispatcher looks every second; before the lease ends nothing changes.
    clock.advance(29_000);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let read = engine.store.get("", "j1", engine.now()).await;
    assert!(matches!(read, Ok(Lookup::Found(j)) if j.status == JobStatus::Running));

    clock.advance(2_000);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let Ok(Lookup::Found(j)) = engine.store.get("", "j1", engine.now()).await else {
        panic!("job gone")
    };
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.error.map(|e| e.code).as_deref(), Some("interrupted"));
}

/// Retention is counted on the engine's clock too: a finished job answers until then,
/// `Expired` after.
#[tokio::test(start_paused = true)]
async fn a_finished_job_expires_by_the_engine_clock() {
    let clock = ManualClock::at(T0);
    let (engine, store) = engine(Arc::clone(&clock)).await;
    store
        .create(job("j2"), 10, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let canceled = store
        .cancel("", "j2", engine.retention_ms(), engine.now())
        .await;
    assert!(canceled.is_ok());
    clock.advance(engine.retention_ms() - 1);
    assert!(matches!(
        engine.store.get("", "j2", engine.now()).await,
        Ok(Lookup::Found(_))
    ));
    clock.advance(2);
    assert!(matches!(
        engine.store.get("", "j2", engine.now()).await,
        Ok(Lookup::Expired)
    ));
}
