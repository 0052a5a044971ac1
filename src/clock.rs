//! The one clock the job lifecycle reads wall time through.
//!
//! Stores take the time as milliseconds since the Unix epoch (so their contract suite never
//! sleeps); the engine, which decides leases, retention and recovery, reads it from a
//! [`Clock`] it is given, so its logic can be driven by a [`ManualClock`] in a unit test.
//! Durations that only pace work (poll intervals, ticks) use tokio's clock, which tests
//! pause and advance with `tokio::time::pause`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_millis(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The clock a running gateway uses.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starting at `millis`.
    pub fn at(millis: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(millis)))
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}
