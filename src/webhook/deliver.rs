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
use crate::store::model::{now_millis, Attempt, AttemptNext, Delivery, DeliveryKind, Job, JobKind};
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
    let mut doc = document::status_doc(links, job);
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("callback");
    }
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

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

/// Claims due callback deliveries and attempts them, until the store is dropped.
pub async fn worker(store: Weak<dyn JobStore>, wake: Arc<tokio::sync::Notify>, w: Worker) {
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
        async move { attempt_one(&*store, &w, delivery, job).await }
    };
    claim_loop(store, wake, DeliveryKind::Callback, round, attempt).await;
}

async fn attempt_one(store: &dyn JobStore, w: &Worker, delivery: Delivery, job: Job) {
    let body = payload(&w.routes.load().links(&w.jobs, &job, &w.base), &job);
    let attempt = w
        .deliverer
        .attempt(&delivery, body, &job.id, &job.tenant)
        .await;
    crate::metrics::get().webhook_attempt(match attempt.next {
        AttemptNext::Delivered => "delivered",
        AttemptNext::Retry(_) => "retry",
        AttemptNext::Stop => "gone",
        AttemptNext::GiveUp => "failed",
    });
    tracing::info!(
        job = %job.id,
        attempt = delivery.attempts + 1,
        status = attempt.status,
        error = attempt.error.as_deref().unwrap_or(""),
        next = ?attempt.next,
        "callback attempt"
    );
    if let Err(err) = store
        .record_attempt(&job.id, DeliveryKind::Callback, attempt, now_millis())
        .await
    {
        // The lease runs out and another attempt is made: at-least-once, never lost.
        crate::metrics::get().store_errors.inc();
        tracing::warn!(job = %job.id, error = %err, "cannot record a callback attempt");
    }
}
