//! Delivering callbacks: one signed `POST` per attempt, and the worker that makes them.
//!
//! The payload is the job's status document (what `GET {jobs}/{id}` shows, without its
//! `callback` section); for a watched `task` operation it is the upstream's final status
//! body. Each attempt re-checks the URL against the guard and connects only to addresses
//! the guarded resolver returned; redirects are never followed. 2xx = delivered; `410` =
//! stop; anything else (3xx, 429, 5xx, other 4xx, timeout, refused address) = retry on the
//! schedule. At most 64 KiB of the receiver's answer is read.
//!
//! `webhook-id` is the job id, so it is stable across attempts, restarts and
//! re-deliveries; `webhook-timestamp` is the time of each attempt.
//!
//! A client that asked for it (`callback_events`, see [`super::events`]) also gets a
//! `started` event when the job is claimed: its own delivery (kind `started`, durable and
//! retried on the same schedule), `webhook-id` `{job id}.started`, and the status document
//! with `"event": "job.started"`; its terminal payload then carries
//! `"event": "job.completed"` (a client that did not ask sees no change). Order: the
//! terminal event is held back while the `started` one is still due, so it never arrives
//! first; a `started` event that fails for good (or gets `410`) no longer holds it. A job
//! that ends without ever starting (canceled while pending) sends no `started` event. For
//! a watched task operation `started` means the gateway began watching it.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::guard::{self, GuardPolicy};
use super::schedule;
use crate::config::{JobsConfig, WebhooksConfig};
use crate::routes::table::Shared;
use crate::sign::{self, Secret};
use crate::store::claims::{self, claim_loop, Round};
use crate::store::document::{self, Links};
use crate::store::model::{
    now_millis, Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, Job, JobKind,
};
use crate::store::JobStore;

/// Most of a receiver's answer the gateway reads.
pub const MAX_ANSWER: usize = 64 * 1024;

/// Everything an attempt needs: client, guard, secret, schedule.
pub struct Deliverer {
    client: reqwest::Client,
    policy: Arc<GuardPolicy>,
    master: Secret,
    schedule: Vec<Duration>,
    timeout: Duration,
}

impl Deliverer {
    /// `None` when no signing secret is configured (config refuses callbacks then).
    pub fn new(cfg: &WebhooksConfig) -> Result<Option<Deliverer>, String> {
        let Some(raw) = &cfg.signing_secret else {
            return Ok(None);
        };
        let master = Secret::parse(raw).map_err(|e| format!("[webhooks].signing_secret: {e}"))?;
        let policy = Arc::new(GuardPolicy::from_config(cfg));
        let client = super::resolve::client(Arc::clone(&policy), cfg.timeout)?;
        Ok(Some(Deliverer {
            client,
            policy,
            master,
            schedule: cfg.retry_schedule.clone(),
            timeout: cfg.timeout,
        }))
    }

    /// The guard policy (submit-time checks use the same one).
    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// The secret a tenant verifies its callbacks with.
    pub fn tenant_secret(&self, tenant: &str) -> Secret {
        sign::tenant_secret(&self.master, tenant)
    }

    /// The first entry of the schedule, in milliseconds (delay from the job's end).
    pub fn first_delay_ms(&self) -> i64 {
        self.schedule
            .first()
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Makes one attempt and says what follows.
    pub async fn attempt(
        &self,
        delivery: &Delivery,
        payload: Bytes,
        msg_id: &str,
        tenant: &str,
    ) -> Attempt {
        let (status, error, retry_after) = self.send(delivery, payload, msg_id, tenant).await;
        let next = match status {
            Some(s) if (200..300).contains(&s) => AttemptNext::Delivered,
            Some(410) => AttemptNext::Stop,
            _ => {
                let done = delivery.attempts + 1;
                match schedule::next_delay(
                    &self.schedule,
                    done,
                    retry_after,
                    schedule::jitter_unit(),
                ) {
                    // Saturating: `d` can be a receiver's huge `Retry-After`.
                    Some(d) => AttemptNext::Retry(schedule::retry_at(now_millis(), d)),
                    None => AttemptNext::GiveUp,
                }
            }
        };
        let error = match (status, error) {
            (_, Some(e)) => Some(e),
            (Some(s), None) if !(200..300).contains(&s) => {
                Some(format!("the receiver answered {s}"))
            }
            _ => None,
        };
        Attempt {
            status,
            error,
            next,
        }
    }

    async fn send(
        &self,
        delivery: &Delivery,
        payload: Bytes,
        msg_id: &str,
        tenant: &str,
    ) -> (Option<u16>, Option<String>, Option<Duration>) {
        let url = match guard::check_url(&delivery.url, &self.policy) {
            Ok(u) => u,
            Err(refusal) => return (None, Some(refusal.to_string()), None),
        };
        let ts = now_millis() / 1000;
        let secret = self.tenant_secret(tenant);
        let mut req = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header("content-type", "application/json");
        for (name, value) in sign::headers(&secret, msg_id, ts, &payload) {
            req = req.header(name, value);
        }
        let mut resp = match req.body(payload).send().await {
            Ok(r) => r,
            Err(e) => return (None, Some(crate::error::describe(&e)), None),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| schedule::parse_retry_after(v, SystemTime::now()));
        // Read (and discard) at most MAX_ANSWER bytes so the connection can be reused,
        // without letting a receiver make the gateway read an endless body.
        let mut read = 0usize;
        while read < MAX_ANSWER {
            match tokio::time::timeout(self.timeout, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => read += chunk.len(),
                _ => break,
            }
        }
        (Some(status), None, retry_after)
    }
}

/// The callback body for a finished job (see the module doc).
pub fn payload(links: &Links<'_>, job: &Job) -> Bytes {
    if job.kind == JobKind::Watch {
        if let Some(resp) = &job.response {
            return resp.body.clone();
        }
    }
    // Only a client that asked for events gets the field: unchanged on the wire otherwise.
    let event = job.started.as_ref().map(|_| COMPLETED_EVENT);
    event_payload(links, job, event)
}

/// The `started` event's body: the status document as it is at the attempt (a late
/// attempt may already show the job finished), with `"event": "job.started"`.
pub fn started_payload(links: &Links<'_>, job: &Job) -> Bytes {
    event_payload(links, job, Some(STARTED_EVENT))
}

fn event_payload(links: &Links<'_>, job: &Job, event: Option<&str>) -> Bytes {
    let mut doc = document::status_doc(links, job);
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("callback");
        if let Some(event) = event {
            obj.insert("event".into(), event.into());
        }
    }
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

/// The `event` of a `started` payload.
pub const STARTED_EVENT: &str = "job.started";
/// The `event` of a terminal payload, when the client asked for events.
pub const COMPLETED_EVENT: &str = "job.completed";

/// What the callback worker reads besides the store: the deliverer, the route table (a
/// route's `signed_results` decides its links) and `[jobs]` (the links' prefix and key).
#[derive(Clone)]
pub struct Worker {
    /// Signs and sends.
    pub deliverer: Arc<Deliverer>,
    /// The route table, as reloads swap it.
    pub routes: Shared,
    /// `[jobs]`.
    pub jobs: Arc<JobsConfig>,
    /// The public base of the URLs in payloads (see `pipeline::public::for_callbacks`).
    pub base: String,
}

/// Claims due callback deliveries — terminal events and `started` events, each kind with
/// its own claim loop — and attempts them, until the store is dropped.
pub async fn worker(store: Weak<dyn JobStore>, wake: Arc<tokio::sync::Notify>, w: Worker) {
    tokio::join!(
        kind_worker(
            store.clone(),
            Arc::clone(&wake),
            w.clone(),
            DeliveryKind::Callback
        ),
        // Started events are made due by a claim, which wakes nobody: the loop's tick
        // (200 ms) finds them.
        kind_worker(store, wake, w, DeliveryKind::Started),
    );
}

async fn kind_worker(
    store: Weak<dyn JobStore>,
    wake: Arc<tokio::sync::Notify>,
    w: Worker,
    kind: DeliveryKind,
) {
    let d = Arc::clone(&w.deliverer);
    let round = move || {
        Some(Round {
            first_delay_ms: d.first_delay_ms(),
            lease_ms: claims::millis(d.timeout * 2),
            tick: Duration::from_millis(200),
        })
    };
    let attempt = move |store: Arc<dyn JobStore>, delivery: Delivery, job: Job| {
        let w = w.clone();
        async move { attempt_one(&*store, &w, kind, delivery, job).await }
    };
    claim_loop(store, wake, kind, round, attempt).await;
}

/// Whether the terminal event must wait: the client asked for `started`, which is due and
/// not settled yet (delivered, given up or stopped). The claim's lease then holds the
/// terminal delivery back for `2 × timeout` before it is claimed again — so the terminal
/// event never overtakes the `started` one.
fn held_back(kind: DeliveryKind, job: &Job) -> bool {
    kind == DeliveryKind::Callback
        && job
            .started
            .as_ref()
            .is_some_and(|s| s.state == DeliveryState::Pending)
}

async fn attempt_one(
    store: &dyn JobStore,
    w: &Worker,
    kind: DeliveryKind,
    delivery: Delivery,
    job: Job,
) {
    if held_back(kind, &job) {
        tracing::debug!(job = %job.id, "terminal callback waits for the started event");
        return;
    }
    let links = w.routes.load().links(&w.jobs, &job, &w.base);
    let (body, msg_id) = match kind {
        DeliveryKind::Started => (started_payload(&links, &job), format!("{}.started", job.id)),
        _ => (payload(&links, &job), job.id.clone()),
    };
    let attempt = w
        .deliverer
        .attempt(&delivery, body, &msg_id, &job.tenant)
        .await;
    crate::metrics::get().webhook_attempt(match attempt.next {
        AttemptNext::Delivered => "delivered",
        AttemptNext::Retry(_) => "retry",
        AttemptNext::Stop => "gone",
        AttemptNext::GiveUp => "failed",
    });
    tracing::info!(
        job = %job.id,
        event = kind.as_str(),
        attempt = delivery.attempts + 1,
        status = attempt.status,
        error = attempt.error.as_deref().unwrap_or(""),
        next = ?attempt.next,
        "callback attempt"
    );
    if let Err(err) = store
        .record_attempt(&job.id, kind, attempt, now_millis())
        .await
    {
        // The lease runs out and another attempt is made: at-least-once, never lost.
        crate::metrics::get().store_errors.inc();
        tracing::warn!(job = %job.id, error = %err, "cannot record a callback attempt");
    }
}
