//! Deliveries of the [`MemoryStore`](super::MemoryStore) (callbacks and admission
//! releases): the due-time indexes and the three delivery operations, on the locked
//! [`State`].
//!
//! Each [`DeliveryKind`] has its own [`DueIndex`], so a claim for one kind never looks at
//! the other's backlog. Within an index a pending delivery sits in one of two ordered sets
//! keyed by `(next_attempt_at, id)`: `first` while it has never been attempted, `retry`
//! afterwards. Two sets because a first attempt is due `first_delay_ms` after
//! `next_attempt_at` and a retry exactly at it, and `first_delay_ms` is only known at
//! claim time: each set is then ordered by due time on its own, so a claim looks at the
//! front of both and takes the earlier. Leased deliveries stay in their set (they are
//! still pending) and are skipped; only the few in flight can be, so a claim never walks
//! the backlog.

use std::collections::BTreeSet;

use super::State;
use crate::store::model::{Attempt, Delivery, DeliveryKind, DeliveryState, Job, Millis};
use crate::store::Redeliver;

/// The pending deliveries of one kind by due time.
#[derive(Debug, Default)]
pub(super) struct DueIndex {
    /// `(next_attempt_at, id)` of deliveries not attempted yet (due a first delay later).
    first: BTreeSet<(Millis, String)>,
    /// `(next_attempt_at, id)` of deliveries being retried (due at that time).
    retry: BTreeSet<(Millis, String)>,
}

impl DueIndex {
    fn set(&mut self, first: bool) -> &mut BTreeSet<(Millis, String)> {
        if first {
            &mut self.first
        } else {
            &mut self.retry
        }
    }
}

/// Where a delivery belongs in its due index: `(first attempt?, next_attempt_at)`, or
/// `None` when it is not pending (waiting, or settled).
fn due_key(delivery: &Delivery) -> Option<(bool, Millis)> {
    match (delivery.state, delivery.next_attempt_at) {
        (DeliveryState::Pending, Some(at)) => Some((delivery.attempts == 0, at)),
        _ => None,
    }
}

impl State {
    fn due_index(&mut self, kind: DeliveryKind) -> &mut DueIndex {
        match kind {
            DeliveryKind::Callback => &mut self.callbacks_due,
            DeliveryKind::Admission => &mut self.admissions_due,
            DeliveryKind::Started => &mut self.started_due,
        }
    }

    /// Removes job `id`'s delivery of `kind` from its due index (the job is going away).
    pub(super) fn unindex_delivery(
        &mut self,
        id: &str,
        kind: DeliveryKind,
        delivery: Option<&Delivery>,
    ) {
        if let Some((first, at)) = delivery.and_then(due_key) {
            self.due_index(kind).set(first).remove(&(at, id.to_owned()));
        }
    }

    /// Applies `change` to job `id`'s delivery of `kind` and moves it in the due index to
    /// match. `None` when the job is unknown or has no such delivery. The only way
    /// deliveries are changed once stored, so the indexes cannot drift from the jobs.
    fn change_delivery(
        &mut self,
        id: &str,
        kind: DeliveryKind,
        change: impl FnOnce(&mut Delivery),
    ) -> Option<()> {
        let delivery = self.jobs.get_mut(id)?.delivery_mut(kind)?;
        let before = due_key(delivery);
        change(delivery);
        let after = due_key(delivery);
        if before != after {
            let index = self.due_index(kind);
            if let Some((first, at)) = before {
                index.set(first).remove(&(at, id.to_owned()));
            }
            if let Some((first, at)) = after {
                index.set(first).insert((at, id.to_owned()));
            }
        }
        Some(())
    }

    /// Job `id` was claimed: a waiting `started` event becomes due now (only the first
    /// claim finds it waiting, so a re-run never sends it twice).
    pub(super) fn schedule_started(&mut self, id: &str, now: Millis) {
        self.change_delivery(id, DeliveryKind::Started, |d| {
            if d.state == DeliveryState::Waiting {
                d.state = DeliveryState::Pending;
                d.next_attempt_at = Some(now);
            }
        });
    }

    /// The job just finished: its waiting deliveries become due now — every kind but the
    /// `started` event, which a job that never ran leaves unsent.
    pub(super) fn schedule_deliveries(&mut self, id: &str, now: Millis) {
        for kind in [DeliveryKind::Callback, DeliveryKind::Admission] {
            self.change_delivery(id, kind, |d| {
                if d.state == DeliveryState::Waiting {
                    d.state = DeliveryState::Pending;
                    d.next_attempt_at = Some(now);
                }
            });
        }
    }

    /// Whether job `id`'s delivery of `kind` is free to claim (no lease, or it ended).
    fn unleased(&self, id: &str, kind: DeliveryKind, now: Millis) -> bool {
        self.jobs
            .get(id)
            .and_then(|job| job.delivery(kind))
            .is_some_and(|d| d.lease_until.is_none_or(|lease| lease < now))
    }

    /// The earliest unleased entry of `set` with `next_attempt_at <= cutoff`.
    fn earliest<'a>(
        &'a self,
        set: &'a BTreeSet<(Millis, String)>,
        kind: DeliveryKind,
        cutoff: Millis,
        now: Millis,
    ) -> Option<(Millis, &'a str)> {
        set.iter()
            .take_while(|(at, _)| *at <= cutoff)
            .find(|(_, id)| self.unleased(id, kind, now))
            .map(|(at, id)| (*at, id.as_str()))
    }

    /// See [`JobStore::claim_delivery`](crate::jobs::JobStore::claim_delivery).
    pub(super) fn claim_delivery(
        &mut self,
        kind: DeliveryKind,
        now: Millis,
        first_delay_ms: i64,
        lease_until: Millis,
    ) -> Option<(Delivery, Job)> {
        let index = match kind {
            DeliveryKind::Callback => &self.callbacks_due,
            DeliveryKind::Admission => &self.admissions_due,
            DeliveryKind::Started => &self.started_due,
        };
        // `next + delay <= now` as a bound on `next`, so the set can be read in order.
        let first = self
            .earliest(&index.first, kind, now.saturating_sub(first_delay_ms), now)
            .map(|(at, id)| (at.saturating_add(first_delay_ms), id));
        let retry = self.earliest(&index.retry, kind, now, now);
        let (_, id) = match (first, retry) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let id = id.to_owned();
        let job = self.jobs.get_mut(&id)?;
        let delivery = job.delivery_mut(kind)?;
        delivery.lease_until = Some(lease_until);
        let delivery = delivery.clone();
        Some((delivery, job.clone()))
    }

    /// See [`JobStore::record_attempt`](crate::jobs::JobStore::record_attempt); an unknown
    /// job (swept meanwhile) or one without a delivery of `kind` is left alone.
    pub(super) fn record_attempt(&mut self, id: &str, kind: DeliveryKind, attempt: Attempt) {
        self.change_delivery(id, kind, |d| {
            d.attempts = d.attempts.saturating_add(1);
            d.last_status = attempt.status;
            d.last_error = attempt.error;
            d.lease_until = None;
            (d.state, d.next_attempt_at) = attempt.next.state();
        });
    }

    /// See [`JobStore::redeliver`](crate::jobs::JobStore::redeliver) (callbacks only).
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
        self.change_delivery(id, DeliveryKind::Callback, |d| {
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
