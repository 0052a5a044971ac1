//! Retention in the [`MemoryStore`](super::MemoryStore): sweeping expired jobs into
//! tombstones and purging old tombstones, on the locked [`State`]. (A client's purge of one
//! job, which leaves no tombstone, is in `listing`.)

use super::State;
use crate::store::model::{DeliveryKind, Millis};
use crate::store::TOMBSTONE_FACTOR;

impl State {
    /// See [`JobStore::sweep`](crate::jobs::JobStore::sweep): expired jobs leave in expiry
    /// order, taking their idempotency key and deliveries (both kinds) with them.
    pub(super) fn sweep(&mut self, now: Millis, retention_ms: i64, batch: usize) -> usize {
        let linger = TOMBSTONE_FACTOR.saturating_mul(retention_ms);
        let mut deleted = 0;
        while deleted < batch {
            let Some((expires_at, id)) = self.expiring.first().cloned() else {
                break;
            };
            if expires_at > now {
                break;
            }
            self.expiring.pop_first();
            let Some(job) = self.jobs.remove(&id) else {
                continue;
            };
            for kind in DeliveryKind::ALL {
                self.unindex_delivery(&id, kind, job.delivery(kind));
            }
            self.unlist(&job.tenant, job.created_at, &id);
            if let Some(key) = job.idempotency_key {
                self.idem.remove(&(job.tenant.clone(), job.route, key));
            }
            let purge_at = expires_at.saturating_add(linger);
            if let Some((_, old)) = self.tombstones.insert(id.clone(), (job.tenant, purge_at)) {
                self.purges.remove(&(old, id.clone()));
            }
            self.purges.insert((purge_at, id));
            deleted += 1;
        }
        for _ in 0..batch {
            let Some((purge_at, id)) = self.purges.first().cloned() else {
                break;
            };
            if purge_at > now {
                break;
            }
            self.purges.pop_first();
            self.tombstones.remove(&id);
        }
        deleted
    }
}
