//! [`RedisStore`]: the shared [`JobStore`] — one Redis (or Valkey) database behind any
//! number of gateway replicas, so a job submitted on one is visible, claimable,
//! cancellable and deliverable on all of them.
//!
//! Decisions:
//! - **One Lua script per operation** (see `scripts`): every method the trait calls
//!   atomic is a single `EVALSHA`, so create-if-absent on the idempotency key with the
//!   tenant's queue check, claim with a lease, and cancel vs complete are decided inside
//!   Redis, never by two replicas reading then writing. `get` is a script too, so a job
//!   and its tombstone are read at one instant. `recover` is the one two-step operation,
//!   as in SQLite: `decide` is Rust, so a read-only script lists the routes of stale jobs,
//!   `decide` is asked per route, and a second script applies the decisions while
//!   re-checking that each job is still running with an expired lease.
//! - **Key layout** (`P` = `[jobs].key_prefix`, default `prefer:`):
//!
//!   | key | type | holds |
//!   |---|---|---|
//!   | `P job:{id}` | hash | the job and its delivery (fields in `codec`) |
//!   | `P idem:{len}:{tenant}:{len}:{route}:{key}` | string | job id of an idempotency key |
//!   | `P pending:{route}` | zset | pending job ids by `created_at` (ties by id) |
//!   | `P running` | zset | running job ids by `lease_until` |
//!   | `P running:{route}` | set | the route's running job ids (`claim`'s limit) |
//!   | `P expiry` | zset | finished job ids by `expires_at` |
//!   | `P tenant:{tenant}:open` | string | the tenant's unfinished jobs (deleted at 0) |
//!   | `P tenant:{tenant}:jobs` | zset | every job id of the tenant by `created_at` (listing) |
//!   | `P tomb:{id}` | string | a swept job's tenant, with a TTL |
//!   | `P tombs` | zset | tombstone ids by purge time |
//!   | `P due:first`, `P due:retry` | zset | pending callback deliveries by `next_attempt_at` |
//!   | `P due:admission:first`, `P due:admission:retry` | zset | pending admission releases, likewise |
//!   | `P finished` | channel | ids of jobs as they finish |
//!
//!   The two lengths in the idempotency key make it unambiguous whatever `:` the tenant or
//!   route contain. Keys are derived inside the scripts from the prefix (passed first in
//!   `ARGV`) rather than listed in `KEYS`: several depend on fields read in the script (a
//!   job's tenant and route), and the store targets a single Redis, not Redis Cluster.
//! - **Time is the caller's**: every time is an argument, never Redis `TIME`, so tests move
//!   the clock by passing values and replicas agree on the stored numbers. Retention
//!   therefore works like the other stores: `sweep` deletes expired jobs and leaves
//!   tombstones that `get` reads as `Expired` for the owner, `Missing` for anyone else; a
//!   tombstone also carries a Redis TTL for its remaining life so it goes even when no
//!   sweeper runs.
//! - **Binary-safe**: bodies are stored as raw bytes, header lists as the SQLite store's
//!   length-prefixed blobs; script arguments and replies are byte strings throughout.
//! - **Connection**: one [`ConnectionManager`] (a multiplexed connection shared by all
//!   callers, reconnecting by itself after a failure). Bounded connect and response
//!   timeouts and few reconnect retries turn an unreachable Redis into a [`StoreError`]
//!   (→ `503`) within a few seconds rather than a hang. `open` connects and pings, so a
//!   wrong URL fails at start.
//! - **Finished jobs are published** on `P finished` by the same scripts that finish them;
//!   [`JobStore::finished_feed`] relays that channel (see `feed`).
//! - **Deliveries** (see `deliveries`): a job's callback and admission release are fields
//!   of its hash (`cb_*`, `adm_*`), each kind with its own pair of due indexes, so claims
//!   of one kind never read the other's backlog. The scripts take the kind as an argument
//!   and look its fields and keys up in one table (`prelude.lua`) rather than existing
//!   once per kind.
//! - **Listing** (see `listing`): one script walks the tenant's `P tenant:{tenant}:jobs`
//!   from the cursor; `create`, `sweep` and `purge` keep that set in the same scripts that
//!   create and delete jobs, so a listing never `SCAN`s. A purge is one script too.
//! - **Queue position**: `ZRANK` on `P pending:{route}` (see `queue`).
//! - **Queue depths** for `/metrics`: `SCAN` finds the queues, one script counts (`depths`).
//! - **Durability** is the server's: run Redis with `appendonly yes` (and
//!   `appendfsync always` for "accepted means on disk"); a `202` means Redis has the job.

mod codec;
mod deliveries;
mod depths;
mod feed;
mod listing;
mod queue;
mod recovery;
mod scripts;

/// The job-hash codec, for the fuzz target `fuzz/fuzz_targets/record_decode.rs`. Not API.
#[doc(hidden)]
pub mod fuzzing;

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use self::codec::{arg, decode_job, flag, flatten, job_fields, num, outcome_fields, Args};
use self::scripts::{integer, tagged, unexpected, Scripts};
use super::model::{
    Attempt, Delivery, DeliveryKind, Job, JobError, Millis, NewJob, Outcome, RunNote,
};
use super::{
    Canceled, Created, JobStore, ListQuery, Lookup, Page, Purged, Recovery, Redeliver, RouteDepth,
    StoreError, TOMBSTONE_FACTOR,
};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its reply. Above the library's 500 ms default: a
/// `create` carries a body of up to `max_body` (10 MiB by default).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect attempts after a failed one before the pending commands fail.
const RECONNECT_RETRIES: usize = 2;
/// Longest Redis TTL given to a tombstone (ten years, in ms): keeps `PX` valid whatever
/// retention is configured; the `tombs` index purges on time anyway.
const TOMBSTONE_TTL_CAP: i64 = 10 * 365 * 24 * 3600 * 1000;

/// The shared job store on Redis. Cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct RedisStore {
    /// For the pub/sub connection of [`JobStore::finished_feed`].
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

// === impl RedisStore ===

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://HOST:PORT/DB`) and checks it answers;
    /// every key the store writes starts with `prefix`. Errors do not repeat the URL (it
    /// may hold a password): callers name the store they asked for.
    pub async fn open(url: &url::Url, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url.as_str())
            .map_err(|e| StoreError::new(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| StoreError::new(format!("cannot connect to Redis: {e}")))?;
        let store = RedisStore {
            client,
            conn,
            prefix: prefix.to_owned(),
            scripts: std::sync::Arc::new(Scripts::new()),
        };
        store.ping().await?;
        Ok(store)
    }

    /// Runs `script` with the key prefix and `args` as `ARGV`.
    async fn eval(&self, script: &Script, args: Args) -> Result<Value, StoreError> {
        let mut call = script.prepare_invoke();
        call.arg(self.prefix.as_bytes());
        for a in args {
            call.arg(a);
        }
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn)
            .await
            .map_err(|e| StoreError::new(format!("Redis: {e}")))
    }

    /// Runs a script answering `{tag, job fields...}`.
    async fn eval_tagged(
        &self,
        script: &Script,
        args: Args,
    ) -> Result<(String, Vec<Vec<u8>>), StoreError> {
        tagged(self.eval(script, args).await?)
    }
}

// === impl JobStore ===

#[async_trait]
impl JobStore for RedisStore {
    async fn create(
        &self,
        job: NewJob,
        max_queued: u64,
        now: Millis,
    ) -> Result<Created, StoreError> {
        let job = job.into_job(now);
        let key = job.idempotency_key.as_deref();
        let mut args = vec![
            arg(&job.id),
            arg(&job.tenant),
            arg(&job.route),
            flag(key.is_some()),
            arg(key.unwrap_or_default()),
            arg(&job.fingerprint),
            num(max_queued),
            num(now),
        ];
        args.extend(flatten(job_fields(&job)));
        let (tag, rest) = self.eval_tagged(&self.scripts.create, args).await?;
        match tag.as_str() {
            "new" => Ok(Created::New(job)),
            "existing" => Ok(Created::Existing(decode_job(rest)?)),
            "conflict" => Ok(Created::KeyConflict),
            "full" => Ok(Created::QueueFull),
            "duplicate" => Err(StoreError::new(format!("job {} already exists", job.id))),
            other => Err(unexpected("create", other)),
        }
    }

    async fn get(&self, tenant: &str, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let args = vec![arg(tenant), arg(id), num(now)];
        let (tag, rest) = self.eval_tagged(&self.scripts.get, args).await?;
        match tag.as_str() {
            "found" => Ok(Lookup::Found(decode_job(rest)?)),
            "expired" => Ok(Lookup::Expired),
            "missing" => Ok(Lookup::Missing),
            other => Err(unexpected("get", other)),
        }
    }

    async fn get_unscoped(&self, id: &str, now: Millis) -> Result<Lookup, StoreError> {
        let args = vec![arg(id), num(now)];
        let (tag, rest) = self.eval_tagged(&self.scripts.get_unscoped, args).await?;
        match tag.as_str() {
            "found" => Ok(Lookup::Found(decode_job(rest)?)),
            "expired" => Ok(Lookup::Expired),
            "missing" => Ok(Lookup::Missing),
            other => Err(unexpected("get_unscoped", other)),
        }
    }

    async fn claim(
        &self,
        route: &str,
        max_running: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Option<Job>, StoreError> {
        let args = vec![arg(route), num(max_running), num(lease_until), num(now)];
        let (tag, rest) = self.eval_tagged(&self.scripts.claim, args).await?;
        match tag.as_str() {
            "claimed" => Ok(Some(decode_job(rest)?)),
            "none" => Ok(None),
            other => Err(unexpected("claim", other)),
        }
    }

    async fn renew(&self, id: &str, lease_until: Millis, _now: Millis) -> Result<bool, StoreError> {
        let args = vec![arg(id), num(lease_until)];
        Ok(integer(self.eval(&self.scripts.renew, args).await?)? == 1)
    }

    async fn note_attempt(
        &self,
        id: &str,
        note: &RunNote,
        _now: Millis,
    ) -> Result<bool, StoreError> {
        let args = match note {
            RunNote::Failed(e) => vec![arg(id), arg("failed"), arg(&e.code), arg(&e.message)],
            RunNote::Next => vec![arg(id), arg("next")],
        };
        Ok(integer(self.eval(&self.scripts.note_attempt, args).await?)? == 1)
    }

    async fn complete(
        &self,
        id: &str,
        outcome: Outcome,
        retention_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let (status, response, error) = outcome.into_parts();
        let mut args = vec![
            arg(id),
            arg(status.as_str()),
            num(now),
            num(now.saturating_add(retention_ms)),
        ];
        args.extend(flatten(outcome_fields(response.as_ref(), error.as_ref())));
        Ok(integer(self.eval(&self.scripts.complete, args).await?)? == 1)
    }

    async fn cancel_with(
        &self,
        tenant: &str,
        id: &str,
        why: &JobError,
        retention_ms: i64,
        now: Millis,
    ) -> Result<Canceled, StoreError> {
        let expires_at = now.saturating_add(retention_ms);
        let args = vec![
            arg(tenant),
            arg(id),
            num(now),
            num(expires_at),
            arg(why.code.as_str()),
            arg(why.message.as_str()),
        ];
        let (tag, rest) = self.eval_tagged(&self.scripts.cancel, args).await?;
        match tag.as_str() {
            "done" => Ok(Canceled::Done(decode_job(rest)?)),
            "terminal" => Ok(Canceled::AlreadyTerminal(decode_job(rest)?)),
            "expired" => Ok(Canceled::Expired),
            "missing" => Ok(Canceled::Missing),
            other => Err(unexpected("cancel", other)),
        }
    }

    async fn recover(
        &self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> Result<usize, StoreError> {
        self.recover_stale(now, ignore_leases, retention_ms, decide)
            .await
    }

    async fn sweep(
        &self,
        now: Millis,
        retention_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let args = vec![
            num(now),
            num(TOMBSTONE_FACTOR.saturating_mul(retention_ms)),
            num(i64::try_from(batch).unwrap_or(i64::MAX)),
            num(TOMBSTONE_TTL_CAP),
        ];
        let deleted = integer(self.eval(&self.scripts.sweep, args).await?)?;
        Ok(usize::try_from(deleted).unwrap_or(0))
    }

    async fn finished_feed(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        let channel = feed::channel(&self.prefix);
        Some(feed::spawn(self.client.clone(), channel))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| StoreError::new(format!("Redis: {e}")))
    }

    async fn depths(&self) -> Result<Vec<RouteDepth>, StoreError> {
        depths::depths(self).await
    }

    async fn queue_position(&self, route: &str, id: &str) -> Result<Option<u64>, StoreError> {
        queue::position(self, route, id).await
    }

    async fn claim_delivery(
        &self,
        kind: DeliveryKind,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Result<Option<(Delivery, Job)>, StoreError> {
        deliveries::claim_delivery(self, kind, now, first_delay_ms, lease_until).await
    }

    async fn record_attempt(
        &self,
        job_id: &str,
        kind: DeliveryKind,
        attempt: Attempt,
        _now: Millis,
    ) -> Result<(), StoreError> {
        deliveries::record_attempt(self, job_id, kind, attempt).await
    }

    async fn redeliver(
        &self,
        tenant: &str,
        job_id: &str,
        now: Millis,
    ) -> Result<Redeliver, StoreError> {
        deliveries::redeliver(self, tenant, job_id, now).await
    }

    async fn list(&self, tenant: &str, query: &ListQuery, now: Millis) -> Result<Page, StoreError> {
        listing::list(self, tenant, query, now).await
    }

    async fn purge(&self, tenant: &str, id: &str, now: Millis) -> Result<Purged, StoreError> {
        listing::purge(self, tenant, id, now).await
    }
}
