//! The delivery operations of the [`RedisStore`](super::RedisStore) (callbacks and
//! admission releases): `claim_delivery`, `record_attempt`, `redeliver`, each one script.
//!
//! The kind travels to the scripts as its storage spelling ([`DeliveryKind::as_str`]);
//! `lua/prelude.lua` maps it to the kind's hash-field prefix and due indexes, and refuses
//! any other spelling. Making deliveries due when a job ends, and dropping them when it is
//! swept, happens inside the scripts that end or sweep jobs (`finish`, `sweep.lua`).

use super::codec::{arg, decode_job, flag, num};
use super::scripts::{integer, unexpected};
use super::RedisStore;
use crate::store::model::{Attempt, AttemptNext, Delivery, DeliveryKind, Job, Millis};
use crate::store::{Redeliver, StoreError};

/// See [`JobStore::claim_delivery`](crate::jobs::JobStore::claim_delivery).
pub(super) async fn claim_delivery(
    store: &RedisStore,
    kind: DeliveryKind,
    now: Millis,
    first_delay_ms: i64,
    lease_until: Millis,
) -> Result<Option<(Delivery, Job)>, StoreError> {
    let args = vec![
        arg(kind.as_str()),
        num(now),
        num(first_delay_ms),
        num(now.saturating_sub(first_delay_ms)),
        num(lease_until),
    ];
    let (tag, rest) = store
        .eval_tagged(&store.scripts.claim_delivery, args)
        .await?;
    match tag.as_str() {
        "claimed" => {
            let job = decode_job(rest)?;
            let delivery = job.delivery(kind).cloned().ok_or_else(|| {
                StoreError::new(format!(
                    "job {} lost its {} delivery",
                    job.id,
                    kind.as_str()
                ))
            })?;
            Ok(Some((delivery, job)))
        }
        "none" => Ok(None),
        other => Err(unexpected("claim_delivery", other)),
    }
}

/// See [`JobStore::record_attempt`](crate::jobs::JobStore::record_attempt).
pub(super) async fn record_attempt(
    store: &RedisStore,
    job_id: &str,
    kind: DeliveryKind,
    attempt: Attempt,
) -> Result<(), StoreError> {
    let (state, next_at) = match attempt.next {
        AttemptNext::Retry(at) => ("pending", num(at)),
        AttemptNext::Delivered => ("delivered", Vec::new()),
        AttemptNext::GiveUp => ("failed", Vec::new()),
        AttemptNext::Stop => ("stopped", Vec::new()),
    };
    let args = vec![
        arg(job_id),
        arg(kind.as_str()),
        arg(state),
        next_at,
        attempt.status.map(num).unwrap_or_default(),
        flag(attempt.error.is_some()),
        attempt.error.map(String::into_bytes).unwrap_or_default(),
    ];
    // 0 = no such job (swept meanwhile) or none of that kind: nothing to record.
    integer(store.eval(&store.scripts.record_attempt, args).await?)?;
    Ok(())
}

/// See [`JobStore::redeliver`](crate::jobs::JobStore::redeliver) (callbacks only).
pub(super) async fn redeliver(
    store: &RedisStore,
    tenant: &str,
    job_id: &str,
    now: Millis,
) -> Result<Redeliver, StoreError> {
    let args = vec![arg(tenant), arg(job_id), num(now)];
    let (tag, rest) = store.eval_tagged(&store.scripts.redeliver, args).await?;
    match tag.as_str() {
        "scheduled" => Ok(Redeliver::Scheduled(decode_job(rest)?)),
        "unfinished" => Ok(Redeliver::NotFinished(decode_job(rest)?)),
        "nocallback" => Ok(Redeliver::NoCallback(decode_job(rest)?)),
        "expired" => Ok(Redeliver::Expired),
        "missing" => Ok(Redeliver::Missing),
        other => Err(unexpected("redeliver", other)),
    }
}
