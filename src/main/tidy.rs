//! Handing memory back to the OS after a burst, when the gateway goes quiet.
//!
//! Why: mimalloc frees pages lazily. A block freed by another thread (common under tokio's
//! work stealing: a connection accepted on one worker, finished on the other) waits in its
//! page's cross-thread list until the owning thread next collects, and an empty page is
//! decommitted only when some thread later notices its purge delay (1 s) has passed. Both
//! happen inside allocation calls, so a worker that parks after a burst, and stays parked,
//! keeps the burst's pages: 10,000 `wait=N` waiters left the process at +930 % of its
//! baseline RSS ten seconds after they drained (bench/waiters.sh), and it stayed there.
//!
//! Two cheap hooks, measured with bench/waiters.sh (3,000 waiters: 96 MB after the drain
//! before, 19–20 MB after, against a 16.5 MB baseline; the rest is the upstream pool's idle
//! connections, which `upstream::client` purges by half every 5 s):
//! - [`on_park`], tokio's `on_thread_park` hook: a worker about to sleep collects its own
//!   heap — cross-thread frees taken in, empty pages handed to the arena — at most every
//!   [`PARK_EVERY`], so a busy worker that parks between requests pays it 100 times a
//!   second at most (a few µs each), not per request;
//! - [`start_janitor`]: a thread that, once a second, lets mimalloc run the arena purges
//!   whose delay has passed (`mi_collect(false)` on a thread of its own: the purge is
//!   process-wide), which nobody else would do while the workers sleep.
//!
//! Calling mimalloc directly is the one `unsafe` in the project (`mi_collect` is a C
//! function; it takes no pointers and has no precondition), allowed in [`collect`] only.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Least time between two collects by one worker.
pub const PARK_EVERY: Duration = Duration::from_millis(10);

/// How often the janitor runs due purges.
pub const JANITOR_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// tokio's `on_thread_park` hook: collect this worker's heap unless it did within
/// [`PARK_EVERY`].
pub fn on_park() {
    let now = Instant::now();
    LAST.with(|last| {
        if last
            .get()
            .is_none_or(|t| now.duration_since(t) >= PARK_EVERY)
        {
            last.set(Some(now));
            collect();
        }
    });
}

/// Starts the purge thread (see the module doc); an error only means it could not start.
pub fn start_janitor() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mem-tidy".into())
        .spawn(|| {
            // mimalloc sets a thread's heap up at its first allocation; a thread without
            // one would collect nothing.
            let first = std::hint::black_box(Box::new(0u64));
            drop(first);
            loop {
                std::thread::sleep(JANITOR_EVERY);
                collect();
            }
        })
        .map(drop)
}

/// `mi_collect(false)`: this thread's pages, then the arena purges that are due.
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: `mi_collect` takes no pointers, needs no lock held and may be called from any
    // thread at any time; it walks the calling thread's own heap and the shared arenas
    // under mimalloc's own synchronisation.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
