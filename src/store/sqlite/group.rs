//! Group commit for `create`: the jobs submitted while one transaction is being written
//! go into the next one, so N concurrent submits cost one `fsync`, not N — and every
//! `202` is still sent only after its own job's commit is on disk.
//!
//! The shape is the classic leader/follower queue (PostgreSQL's and InnoDB's group commit,
//! SQLite's own advice for throughput: "batch inserts in one transaction"):
//! - `submit` puts the request on a queue and waits on a oneshot for its answer. If no
//!   drainer is running, it starts one on the blocking pool.
//! - The drainer takes *everything* queued (up to [`MAX_BATCH`]), opens one `IMMEDIATE`
//!   transaction, runs each create in its own `SAVEPOINT` — so a create that fails (a
//!   corrupt row met in the key lookup, say) rolls back alone and answers its own error,
//!   while queue-limit and idempotency checks see the creates before it in the batch, as
//!   if they had committed one by one — commits once, and only then answers each. While it
//!   writes, new submits pile up for the next round; it stops when the queue is empty.
//! - A failed commit answers every create of the batch with the error (none was stored).
//! - One create alone costs what it did before (one transaction, one commit): the batch
//!   is whatever arrived during the previous commit, nothing waits on a timer.
//! - If the drainer panics, its guard marks the queue idle and drops what is queued, so
//!   those submits get a [`StoreError`] (a `503`) rather than waiting forever; the next
//!   submit starts a new drainer.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::ops::insert_job;
use super::tx;
use crate::store::model::{Millis, NewJob};
use crate::store::{Created, StoreError};

/// Most creates in one transaction: bounds the latency of the last one in a batch (each
/// create is a few row writes, ~10–20 µs, so 512 is a few milliseconds at worst).
const MAX_BATCH: usize = 512;

/// One submitted create and where its answer goes.
struct Request {
    job: NewJob,
    max_queued: u64,
    now: Millis,
    reply: oneshot::Sender<Result<Created, StoreError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Request>,
    /// A drainer is running (it will take what is in `waiting`).
    draining: bool,
}

/// The create queue of one store (shared by its clones).
#[derive(Default)]
pub(super) struct Creates {
    queue: Mutex<Queue>,
}

impl Creates {
    /// Creates `job`; answered once the transaction holding it has committed.
    pub(super) async fn submit(
        self: &Arc<Self>,
        conn: &Arc<Mutex<Connection>>,
        job: NewJob,
        max_queued: u64,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push(Request {
                job,
                max_queued,
                now,
                reply,
            });
            !std::mem::replace(&mut q.draining, true)
        };
        if start {
            let (creates, conn) = (Arc::clone(self), Arc::clone(conn));
            tokio::task::spawn_blocking(move || creates.drain(&conn));
        }
        answer
            .await
            .map_err(|_| StoreError::new("the job store's writer stopped before answering"))?
    }

    /// Writes batches until the queue is empty.
    fn drain(&self, conn: &Mutex<Connection>) {
        let _idle_on_exit = Idle(self);
        loop {
            let batch = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if q.waiting.is_empty() {
                    q.draining = false;
                    return;
                }
                let take = q.waiting.len().min(MAX_BATCH);
                let rest = q.waiting.split_off(take);
                std::mem::replace(&mut q.waiting, rest)
            };
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            write_batch(&mut conn, batch);
        }
    }
}

/// On the drainer's exit — normal or by panic — the queue is idle again; after a panic
/// the creates still queued are dropped, so their submitters get an error at once.
struct Idle<'a>(&'a Creates);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.clear();
            q.draining = false;
        }
    }
}

/// One transaction, one savepoint per create, one commit; then every answer.
fn write_batch(conn: &mut Connection, batch: Vec<Request>) {
    let mut answers = Vec::with_capacity(batch.len());
    let mut requests = batch.into_iter();
    let committed = (|| {
        let tx = tx::write(conn)?;
        for req in requests.by_ref() {
            let sp = tx.savepoint()?;
            let created = insert_job(&sp, req.job, req.max_queued, req.now);
            if created.is_ok() {
                sp.commit()?;
            } // else: dropping the savepoint rolls this create back, alone
            answers.push((req.reply, created));
        }
        tx.commit()?;
        Ok::<(), StoreError>(())
    })();
    // Left only when an error stopped the loop: they share the batch's error below.
    answers.extend(requests.map(|req| (req.reply, Err(StoreError::new("not reached")))));
    for (reply, created) in answers {
        let answer = match &committed {
            Ok(()) => created,
            Err(e) => Err(StoreError::new(format!("job not stored: {e}"))),
        };
        let _ = reply.send(answer); // the submitter may have gone (client disconnect)
    }
}
