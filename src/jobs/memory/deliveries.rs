//! Callback deliveries of the [`MemoryStore`](super::MemoryStore): the due-time index and
//! the three delivery operations, on the locked [`State`].
//!
//! A pending delivery sits in one of two ordered sets keyed by `(next_attempt_at, id)`:
//! `first_due` while it has never been attempted, `retry_due` afterwards. Two sets because
//! a first attempt is due `first_delay_ms` after `next_attempt_at` and a retry exactly at
//! it, and `first_delay_ms` is only known at claim time: each set is then ordered by due
//! time on its own, so a claim looks at the front of both and takes the earlier. Leased
//! deliveries stay in their set (they are still pending) and are skipped; only the few
//! in flight can be, so a claim never walks the backlog.

use std::collections::BTreeSet;

use super::State;
use crate::jobs::model::{Attempt, AttemptNext, Delivery, DeliveryState, Job, Millis};
use crate::jobs::store::Redeliver;

/// Where a delivery belongs in the due index: `(first attempt?, next_attempt_at)`, or
/// `None` when it is not pending (waiting, or settled).
fn due_key(delivery: &Delivery) -> Option<(bool, Millis)> {
    match (delivery.state, delivery.next_attempt_at) {
        (DeliveryState::Pending, Some(at)) => Some((delivery.attempts == 0, at)),
        _ => None,
    }
}

impl State {
    fn due_set(&mut self, first: bool) -> &mut BTreeSet<(Millis, String)> {
        if first {
            &mut self.first_due
        } else {
            &mut self.retry_due
        }
    }

    /// Removes job `id`'s delivery from the due index (the job is going away).
    pub(super) fn unindex_delivery(&mut self, id: &str, delivery: Option<&Delivery>) {
        if let Some((first, at)) = delivery.and_then(due_key) {
            self.due_set(first).remove(&(at, id.to_owned()));
        }
    }

    /// Applies `change` to job `id`'s delivery and moves it in the due index to match.
    /// `None` when the job is unknown or has no callback. The only way deliveries are
    /// changed once stored, so the index cannot drift from the jobs.
    fn change_delivery(&mut self, id: &str, change: impl FnOnce(&mut Delivery)) -> Option<()> {
        let delivery = self.jobs.get_mut(id)?.callback.as_mut()?;
        let before = due_key(delivery);
        change(delivery);
        let after = due_key(delivery);
        if before != after {
            if let Some((first, at)) = before {
                self.due_set(first).remove(&(at, id.to_owned()));
            }
            if let Some((first, at)) = after {
                self.due_set(first).insert((at, id.to_owned()));
            }
        }
        Some(())
    }

    /// The job just finished: a waiting delivery becomes due now.
    pub(super) fn schedule_delivery(&mut self, id: &str, now: Millis) {
        self.change_delivery(id, |d| {
            if d.state == DeliveryState::Waiting {
                d.state = DeliveryState::Pending;
                d.next_attempt_at = Some(now);
            }
        });
    }

    /// Whether job `id`'s delivery is free to claim (no lease, or the lease ended).
    fn unleased(&self, id: &str, now: Millis) -> bool {
        self.jobs
            .get(id)
            .and_then(|job| job.callback.as_ref())
            .is_some_and(|d| d.lease_until.is_none_or(|lease| lease < now))
    }

    /// The earliest unleased entry of `set` with `next_attempt_at <= cutoff`.
    fn earliest<'a>(
        &'a self,
        set: &'a BTreeSet<(Millis, String)>,
        cutoff: Millis,
        now: Millis,
    ) -> Option<(Millis, &'a str)> {
        set.iter()
            .take_while(|(at, _)| *at <= cutoff)
            .find(|(_, id)| self.unleased(id, now))
            .map(|(at, id)| (*at, id.as_str()))
    }

    /// See [`JobStore::claim_delivery`](crate::jobs::JobStore::claim_delivery).
    pub(super) fn claim_delivery(
        &mut self,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Option<(Delivery, Job)> {
        // `next + delay <= now` as a bound on `next`, so the set can be read in order.
        let first = self
            .earliest(&self.first_due, now.saturating_sub(first_delay_ms), now)
            .map(|(at, id)| (at.saturating_add(first_delay_ms), id));
        let retry = self.earliest(&self.retry_due, now, now);
        let (_, id) = match (first, retry) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let id = id.to_owned();
        let job = self.jobs.get_mut(&id)?;
        let delivery = job.callback.as_mut()?;
        delivery.lease_until = Some(lease_until);
        let delivery = delivery.clone();
        Some((delivery, job.clone()))
    }

    /// See [`JobStore::record_attempt`](crate::jobs::JobStore::record_attempt); an unknown
    /// job (swept meanwhile) or one without a callback is left alone.
    pub(super) fn record_attempt(&mut self, id: &str, attempt: Attempt) {
        self.change_delivery(id, |d| {
            d.attempts = d.attempts.saturating_add(1);
            d.last_status = attempt.status;
            d.last_error = attempt.error;
            d.lease_until = None;
            (d.state, d.next_attempt_at) = match attempt.next {
                AttemptNext::Retry(at) => (DeliveryState::Pending, Some(at)),
                AttemptNext::Delivered => (DeliveryState::Delivered, None),
                AttemptNext::GiveUp => (DeliveryState::Failed, None),
                AttemptNext::Stop => (DeliveryState::Stopped, None),
            };
        });
    }

    /// See [`JobStore::redeliver`](crate::jobs::JobStore::redeliver).
    pub(super) fn redeliver(&mut self, tenant: &str, id: &str, now: Millis) -> Redeliver {
        match self.jobs.get(id) {
            Some(job) if job.tenant != tenant => return Redeliver::Missing,
            Some(job) if job.expires_at.is_some_and(|at| at <= now) => return Redeliver::Expired,
            Some(job) if !job.status.is_terminal() => return Redeliver::NotFinished(job.clone()),
            Some(job) if job.callback.is_none() => return Redeliver::NoCallback(job.clone()),
            Some(_) => {}
            None if self.tombstoned(tenant, id) => return Redeliver::Expired,
            None => return Redeliver::Missing,
        }
        self.change_delivery(id, |d| {
            d.state = DeliveryState::Pending;
            d.attempts = 0;
            d.next_attempt_at = Some(now);
            d.lease_until = None;
            d.last_status = None;
            d.last_error = None;
        });
        match self.jobs.get(id) {
            Some(job) => Redeliver::Scheduled(job.clone()),
            None => Redeliver::Missing,
        }
    }
}
