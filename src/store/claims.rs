//! The claim loop both durable deliveries share — callbacks ([`crate::webhook::deliver`])
//! and admission notices ([`crate::admission::worker`]): claim the most overdue delivery
//! of one kind with a lease, attempt it in its own task (at most [`CONCURRENCY`] at once
//! per kind and process), repeat until nothing is due, then sleep until woken or the next
//! tick. A claim that fails counts a store error and waits for the next round; the lease
//! makes an attempt whose outcome was never recorded happen again (at-least-once).
//!
//! The loop knows only the store and its wake signal ([`Outbox`]): it holds the store
//! weakly between rounds, so dropping the gateway (the store's owner) ends it.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::model::{now_millis, Delivery, DeliveryKind, Job};
use super::JobStore;

/// The wake signals of the two delivery workers: whoever makes a delivery due (a job
/// that finished, a redelivery) wakes them instead of waiting for their next tick.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    /// Wakes the callback worker.
    pub callbacks: Arc<Notify>,
    /// Wakes the admission notice worker.
    pub notices: Arc<Notify>,
}

impl Outbox {
    /// Wakes both workers.
    pub fn wake(&self) {
        self.callbacks.notify_one();
        self.notices.notify_one();
    }
}

/// Attempts in flight at once per process and kind.
pub const CONCURRENCY: usize = 64;

/// What one round of claims uses, read afresh each round (a reload may change it).
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// A first attempt is due this long after the delivery became pending.
    pub first_delay_ms: i64,
    /// How long a claim holds the delivery (longer than an attempt can take).
    pub lease_ms: i64,
    /// How long to sleep when nothing is due and nobody wakes the loop.
    pub tick: Duration,
}

/// Runs until the store is dropped, or `round` answers `None` (the kind is switched off).
pub async fn claim_loop<R, A, Fut>(
    store: Weak<dyn JobStore>,
    wake: Arc<Notify>,
    kind: DeliveryKind,
    round: R,
    attempt: A,
) where
    R: Fn() -> Option<Round>,
    A: Fn(Arc<dyn JobStore>, Delivery, Job) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let Some(e) = store.upgrade() else { return };
        let Some(r) = round() else { return };
        loop {
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                break;
            };
            let now = now_millis();
            let lease = now.saturating_add(r.lease_ms);
            match e.claim_delivery(kind, now, r.first_delay_ms, lease).await {
                Ok(Some((delivery, job))) => {
                    let run = attempt(Arc::clone(&e), delivery, job);
                    tokio::spawn(async move {
                        run.await;
                        drop(permit);
                    });
                }
                Ok(None) => break,
                Err(err) => {
                    crate::metrics::get().store_errors.inc();
                    tracing::warn!(error = %err, kind = kind.as_str(), "claiming a delivery failed");
                    break;
                }
            }
        }
        // Hold only the wake signal while idle, so a dropped store ends this task.
        drop(e);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(r.tick) => {}
        }
    }
}

/// A duration in milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
