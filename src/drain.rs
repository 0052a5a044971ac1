//! The drain signal: flips once, when the listener closes for shutdown.
//!
//! A request that waits (a `wait=N` submit, a task poll, a long-poll on the job API)
//! selects on [`drained`] so that, when the gateway shuts down, it answers at once with its
//! `202` handle instead of being cut when the drain timeout ends. The sender lives in the
//! pipeline; everything below only ever holds a receiver.

use tokio::sync::watch;

/// The receiving side handlers hold (`true` once the gateway drains).
pub type Drain = watch::Receiver<bool>;

/// A fresh signal, not draining.
pub fn channel() -> watch::Sender<bool> {
    watch::Sender::new(false)
}

/// Resolves when the gateway starts draining (never, if the gateway is gone first).
pub async fn drained(mut drain: Drain) {
    let draining = drain.wait_for(|d| *d).await.is_ok();
    if !draining {
        std::future::pending::<()>().await;
    }
}
