//! Per-core connection runtimes: each accepted connection is served, for its whole life, by
//! one of N single-threaded tokio runtimes (N = the CPUs the process may use), each on its
//! own thread — a thread per core, as nginx's workers and HAProxy's threads are.
//!
//! Why not the one work-stealing runtime the gateway had: on the proxy path a request is
//! two tasks (the client connection's and the upstream connection's) exchanging wake-ups,
//! and with work stealing they ran on different workers much of the time — idle workers
//! searching, tasks moving, cache lines bouncing. Measured on the 2-core bench machine,
//! the same build and load (`wrk -c64`, 1 KiB through a `proxy` route): 15.2 µs user +
//! 23.0 µs system CPU per request on the 2-worker runtime, 11.7 + 19.2 with one worker —
//! which beat nginx (7.7 + 25.0). Here every connection's tasks, the upstream connections
//! it opens ([`crate::upstream::client::lane`] keeps a pool lane per core), its timers and
//! its I/O readiness stay on one thread, and the cores still share the load.
//!
//! How a connection gets here: the accept loop (on the main runtime) takes it, detaches
//! the socket from the main runtime's reactor (`into_std`) and hands it round-robin to the
//! next core, which registers it with its own reactor. That costs two `epoll_ctl`s and a
//! cross-thread wake per *connection*, not per request. The main runtime keeps everything
//! that is not a client connection: the job engine, deliveries, the admin listener.
//!
//! Ending: [`Cores`] stops its threads when dropped (after the server's drain): each
//! runtime is dropped on its own thread, which drops whatever it still runs — what a
//! process exit did before. Dropping does not wait for the threads.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A hook run by each core thread before it parks (the binary passes its allocator tidy;
/// see `src/main/tidy.rs`). Set once, before the first server starts.
static ON_PARK: OnceLock<fn()> = OnceLock::new();

/// Sets the hook every core runtime runs when its thread is about to park.
pub fn on_park(hook: fn()) {
    let _ = ON_PARK.set(hook);
}

/// N single-threaded runtimes, one per thread.
pub struct Cores {
    handles: Vec<Handle>,
    /// Dropped (so their receivers resolve) to end the threads.
    stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl Cores {
    /// Starts `n` (at least one) core threads, named `core-<i>`.
    pub fn start(n: usize) -> std::io::Result<Cores> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        let mut stops = Vec::with_capacity(n);
        for i in 0..n {
            let mut builder = tokio::runtime::Builder::new_current_thread();
            builder.enable_all();
            if let Some(hook) = ON_PARK.get().copied() {
                builder.on_thread_park(hook);
            }
            let rt = builder.build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(rt.handle().clone());
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("core-{i}"))
                .spawn(move || {
                    crate::upstream::client::lane::enter(i + 1);
                    // Runs the spawned connections until the stop; then the runtime is
                    // dropped here, off any other runtime, with what it still holds.
                    let _ = rt.block_on(stopped);
                })?;
        }
        Ok(Cores {
            handles,
            stops,
            next: AtomicUsize::new(0),
        })
    }

    /// As many cores as the process may use (tokio's own default for its workers), which
    /// is also how many core lanes the upstream pools keep.
    pub fn per_cpu() -> std::io::Result<Cores> {
        Cores::start(crate::upstream::client::lane::cpus())
    }

    /// Runs `fut` on the next core, round-robin.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        if let Some(h) = self.handles.get(i) {
            drop(h.spawn(fut));
        }
    }

    /// How many cores there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Never: [`Cores::start`] makes at least one.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl Drop for Cores {
    fn drop(&mut self) {
        // Dropping the senders resolves every `block_on`.
        self.stops.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn work_runs_on_every_core_thread_and_the_threads_end_with_the_cores() {
        let cores = Cores::start(2).unwrap();
        assert_eq!(cores.len(), 2);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            cores.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let lane = crate::upstream::client::lane::current();
                tx.send((name, lane)).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..4).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        let core = |i: usize| (Some(format!("core-{i}")), i + 1);
        assert_eq!(seen, [core(0), core(0), core(1), core(1)]);
        let (done, ended) = std::sync::mpsc::channel::<()>();
        cores.spawn(async move {
            // Held until the runtime drops this task: the send side closes then.
            let _done = done;
            std::future::pending::<()>().await;
        });
        drop(cores);
        let waited = ended.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(waited, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    }
}
