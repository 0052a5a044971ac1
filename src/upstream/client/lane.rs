//! Pool lanes: which thread's idle connections a request takes from and gives back to.
//!
//! An upstream connection's hyper task runs on the runtime that opened it. When the
//! gateway serves client connections on per-core runtimes (`crate::server` does), a request
//! on core 1 that took a connection opened on core 2 would wake core 2's thread for every
//! read and write of the exchange — the cross-thread traffic the per-core design exists to
//! avoid. So each upstream pool keeps one idle stack per lane: a core thread is lane
//! `i + 1` and uses only its own, every other thread (the main runtime: the job engine,
//! polls started there, tests) lane 0. The open-connection cap stays per upstream, over all
//! lanes; a lane with nothing idle opens a connection rather than borrow another lane's.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread lane `lane` (a core thread, at its start).
pub fn enter(lane: usize) {
    LANE.with(|l| l.set(lane));
}

/// The calling thread's lane: 0 unless [`enter`] said otherwise.
pub fn current() -> usize {
    LANE.with(Cell::get)
}

/// The CPUs this process may use, read once: `available_parallelism` reads the cgroup
/// quota files on every call, and every new pool asks.
pub fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// How many lanes a pool keeps: one per CPU (the per-core runtimes' default count) plus
/// lane 0. More cores than that share lanes (`current() % lanes()`), which is still
/// correct, only less local.
pub fn lanes() -> usize {
    cpus() + 1
}
