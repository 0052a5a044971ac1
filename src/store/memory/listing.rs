//! Listing and purge in the [`MemoryStore`](super::MemoryStore), on the locked [`State`].
//!
//! `by_tenant` holds every job of a tenant as `(created_at, id)`: ascending in the set, so
//! a page is a range below the cursor read backwards (see [`crate::store::listing`] for the
//! order and the page rules). It changes with the job map itself: `create` adds, `sweep`
//! and `purge` remove ([`State::unlist`]).

use std::collections::BTreeSet;
use std::ops::Bound;

use super::State;
use crate::store::listing::{self, Candidate, Cursor, ListQuery, Page, Purged};
use crate::store::model::{DeliveryKind, Job, Millis};

impl State {
    /// Takes job `id` of `tenant` out of the tenant's list.
    pub(super) fn unlist(&mut self, tenant: &str, created_at: Millis, id: &str) {
        if let Some(jobs) = self.by_tenant.get_mut(tenant) {
            jobs.remove(&(created_at, id.to_owned()));
            if jobs.is_empty() {
                self.by_tenant.remove(tenant);
            }
        }
    }

    /// See [`JobStore::list`](crate::store::JobStore::list).
    pub(super) fn list(&self, tenant: &str, query: &ListQuery, now: Millis) -> Page {
        let Some(jobs) = self.by_tenant.get(tenant) else {
            return Page {
                jobs: Vec::new(),
                next: None,
            };
        };
        let (chosen, next) = listing::walk(query, now, self.after(jobs, query.after.as_ref()));
        let jobs = chosen
            .iter()
            .filter_map(|at| self.jobs.get(&at.id))
            .map(Job::summary)
            .collect();
        Page { jobs, next }
    }

    /// The tenant's jobs after `cursor` in list order (newest first).
    fn after<'a>(
        &'a self,
        jobs: &'a BTreeSet<(Millis, String)>,
        cursor: Option<&Cursor>,
    ) -> impl Iterator<Item = Candidate> + 'a {
        let upper = match cursor {
            Some(c) => Bound::Excluded((c.created_at, c.id.clone())),
            None => Bound::Unbounded,
        };
        jobs.range((Bound::Unbounded, upper))
            .rev()
            .filter_map(|(_, id)| self.jobs.get(id))
            .map(|job| Candidate {
                at: Cursor::of(job),
                status: job.status,
                route: job.route.clone(),
                expires_at: job.expires_at,
            })
    }

    /// See [`JobStore::purge`](crate::store::JobStore::purge): the job leaves every index
    /// it is in (a terminal job is only in the expiry, tenant and delivery indexes, and the
    /// key index when keyed), and no tombstone is left.
    pub(super) fn purge(&mut self, tenant: &str, id: &str, now: Millis) -> Purged {
        match self.jobs.get(id) {
            Some(job) if job.tenant != tenant => return Purged::Missing,
            Some(job) if job.expires_at.is_some_and(|at| at <= now) => return Purged::Expired,
            Some(job) => {
                if let Err(refused) = listing::purgeable(job) {
                    return refused;
                }
            }
            None if self.tombstoned(tenant, id) => return Purged::Expired,
            None => return Purged::Missing,
        }
        let Some(job) = self.jobs.remove(id) else {
            return Purged::Missing;
        };
        for kind in DeliveryKind::ALL {
            self.unindex_delivery(id, kind, job.delivery(kind));
        }
        if let Some(at) = job.expires_at {
            self.expiring.remove(&(at, id.to_owned()));
        }
        self.unlist(&job.tenant, job.created_at, id);
        if let Some(key) = job.idempotency_key {
            self.idem.remove(&(job.tenant, job.route, key));
        }
        Purged::Done
    }
}
