//! One upstream's idle keep-alive connections: a stack, most recently used on top, and the
//! purge that closes the ones a burst left behind.
//!
//! Why a purge and not only the 60 s idle timeout: after a burst (thousands of waiters'
//! polls lining up) the pool holds as many idle connections as the burst needed at once,
//! each with its hyper task and buffers (~60 KiB of RSS apiece, measured with
//! bench/waiters.sh), and an expired one was only dropped when the next request looked.
//! A quiet gateway kept them all. HAProxy's answer is the bar (`pool-purge-delay`, default
//! 5 s: each interval, half of the idle connections are closed); this does the same, but
//! only to connections that sat unused for the whole interval, so a steady load keeps the
//! connections it uses and a burst's surplus halves every [`PURGE_EVERY`]. Expired and
//! closed ones go at the same time.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::client::conn::http1::SendRequest;
use tokio::time::Instant;

use crate::body::Body;

/// How often idle connections are purged (HAProxy's `pool-purge-delay` default).
pub const PURGE_EVERY: Duration = Duration::from_secs(5);

/// A connection waiting for its next request.
struct Idle {
    tx: SendRequest<Body>,
    since: Instant,
}

/// Idle connections, oldest at the front, most recently used at the back.
#[derive(Default)]
pub(super) struct IdleStack {
    stack: Mutex<VecDeque<Idle>>,
}

impl IdleStack {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        self.stack.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `tx` for reuse unless it closed or `max` are kept already; whether it was kept.
    pub(super) fn put(&self, tx: SendRequest<Body>, timeout: Duration, max: usize) -> bool {
        if tx.is_closed() {
            return false;
        }
        let now = Instant::now();
        let mut idle = self.lock();
        while idle
            .front()
            .is_some_and(|i| now.duration_since(i.since) > timeout || i.tx.is_closed())
        {
            idle.pop_front();
        }
        if idle.len() >= max {
            return false;
        }
        idle.push_back(Idle { tx, since: now });
        true
    }

    /// The most recently used connection that is still open and younger than `timeout`.
    pub(super) fn take(&self, timeout: Duration) -> Option<SendRequest<Body>> {
        let mut idle = self.lock();
        while let Some(i) = idle.pop_back() {
            if i.tx.is_closed() {
                continue;
            }
            if i.since.elapsed() > timeout {
                // Everything older is expired too.
                idle.clear();
                return None;
            }
            return Some(i.tx);
        }
        None
    }

    /// Closes the expired and closed connections and half (rounded up) of those unused for
    /// a whole [`PURGE_EVERY`], oldest first.
    pub(super) fn purge(&self, now: Instant, timeout: Duration) {
        let mut idle = self.lock();
        idle.retain(|i| now.duration_since(i.since) <= timeout && !i.tx.is_closed());
        let unused = idle
            .iter()
            .take_while(|i| now.duration_since(i.since) >= PURGE_EVERY)
            .count();
        // Dropping the sender ends the connection's task, which closes the socket.
        idle.drain(..unused.div_ceil(2));
    }

    /// Whether no connection is kept.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
