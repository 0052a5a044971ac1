//! Listing a tenant's jobs and purging one: what [`JobStore::list`] and
//! [`JobStore::purge`] take and answer, and the walk every store makes for a page.
//!
//! Decisions:
//! - **Order**: newest first — `created_at` descending, ties by id descending (byte order
//!   of the id text). That is the order of the per-tenant index each store keeps (memory:
//!   a set per tenant; SQLite: the `jobs_tenant` index of schema v5; Redis: the sorted set
//!   `P tenant:{t}:jobs`, whose equal scores are ordered by member bytes), so a page is
//!   one ordered read of that index, never a scan of every job.
//! - **Keyset paging**: a page continues strictly after its [`Cursor`], the position
//!   `(created_at, id)` of the last job the previous page covered. Jobs created meanwhile
//!   are newer, so they sort before the cursor and never shift later pages: no duplicates
//!   and no gaps while jobs arrive (an offset would shift by one per new job). A cursor
//!   whose job has since been swept or purged still names a position, so it stays valid.
//! - **Bounded work**: a page looks at no more than [`SCAN_LIMIT`] jobs of the index.
//!   Skipped jobs (past retention, or not matching the `status` / `route` filter) count
//!   too, so a filter that matches little cannot turn one request into a walk over a
//!   tenant's whole history while the store is held (SQLite's one connection, a Redis
//!   script). A page that stops there has fewer than `limit` jobs (maybe none) and a
//!   `next` cursor at the last job looked at: the end of the list is `next == None`, not
//!   a short page.
//! - **Summaries**: listed jobs come without their request's and stored response's
//!   headers and bodies ([`Job::summary`]) — everything the status document shows, but a
//!   page of 100 jobs never loads 100 results into memory.
//! - **Purge** deletes a terminal job at once with everything of it — its deliveries and
//!   their due entries, its idempotency key, its index entries — and leaves no tombstone:
//!   the id then answers `404`, as if it never existed, which is what a deletion request
//!   asks for. A callback not yet delivered is dropped with it (it would carry the very
//!   data the client asked to delete); one already being attempted (leased) may still
//!   arrive once, and recording that attempt then finds no job, which is not an error.
//!   An admission notice (settle / release) not yet delivered refuses the purge
//!   ([`Purged::NoticePending`]): it is the operator's billing record of the work, and a
//!   purge right after the result would otherwise skip it.

use super::model::{DeliveryState, Job, JobStatus, Millis};

#[cfg(doc)]
use super::JobStore;

/// Most jobs one page may hold.
pub const MAX_LIMIT: usize = 100;

/// Jobs per page when the client names no limit.
pub const DEFAULT_LIMIT: usize = 20;

/// Most index entries one page looks at (see the module notes).
pub const SCAN_LIMIT: usize = 1000;

/// A position in a tenant's list: the list continues with the jobs after it (older, or
/// as old with a smaller id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The job's `created_at`.
    pub created_at: Millis,
    /// The job's id.
    pub id: String,
}

impl Cursor {
    /// The position of `job`.
    pub fn of(job: &Job) -> Cursor {
        Cursor {
            created_at: job.created_at,
            id: job.id.clone(),
        }
    }
}

/// Which jobs, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this route.
    pub route: Option<String>,
    /// Most jobs on the page (1 to [`MAX_LIMIT`]; stores clamp it into that range).
    pub limit: usize,
    /// Continue after this position; `None` starts with the newest job.
    pub after: Option<Cursor>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: None,
            route: None,
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl ListQuery {
    /// The page size actually used.
    pub fn limit(&self) -> usize {
        self.limit.clamp(1, MAX_LIMIT)
    }

    /// Whether a job with these fields belongs on the page at `now`: within retention
    /// (what `get` would find) and matching both filters.
    pub fn admits(
        &self,
        status: JobStatus,
        route: &str,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> bool {
        expires_at.is_none_or(|at| at > now)
            && self.status.is_none_or(|s| s == status)
            && self.route.as_deref().is_none_or(|r| r == route)
    }
}

/// One page of a tenant's jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The jobs, newest first, as summaries ([`Job::summary`]).
    pub jobs: Vec<Job>,
    /// Where the next page starts; `None` when the list ends here.
    pub next: Option<Cursor>,
}

/// What one index entry tells a store before it loads the job.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its position.
    pub at: Cursor,
    /// Its status.
    pub status: JobStatus,
    /// Its route.
    pub route: String,
    /// Its expiry, if finished.
    pub expires_at: Option<Millis>,
}

/// Which positions a page holds and where the next one starts, from the entries of the
/// tenant's index after the query's cursor, in list order. Reads at most [`SCAN_LIMIT`]
/// + 1 entries (the one more says whether the list goes on).
pub fn walk(
    query: &ListQuery,
    now: Millis,
    candidates: impl IntoIterator<Item = Candidate>,
) -> (Vec<Cursor>, Option<Cursor>) {
    let limit = query.limit();
    let mut chosen: Vec<Cursor> = Vec::with_capacity(limit);
    let mut last: Option<Cursor> = None;
    for (seen, c) in candidates.into_iter().enumerate() {
        if seen == SCAN_LIMIT {
            // Looked at enough, and there is more: continue after the last one seen.
            return (chosen, last);
        }
        if query.admits(c.status, &c.route, c.expires_at, now) {
            if chosen.len() == limit {
                // A job for the next page exists: this page ends at its own last job.
                let next = chosen.last().cloned();
                return (chosen, next);
            }
            chosen.push(c.at.clone());
        }
        last = Some(c.at);
    }
    (chosen, None)
}

/// What [`JobStore::purge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purged {
    /// Deleted, leaving no tombstone.
    Done,
    /// The job is pending or running (→ `409`: cancel it first).
    Unfinished(JobStatus),
    /// Its admission notice is not delivered yet (→ `409`); the next attempt is due then.
    NoticePending(Option<Millis>),
    /// See [`Lookup::Expired`](super::Lookup::Expired).
    Expired,
    /// See [`Lookup::Missing`](super::Lookup::Missing).
    Missing,
}

/// Whether a found job of the caller may be purged: terminal, and its admission notice (if
/// any) settled one way or the other.
pub fn purgeable(job: &Job) -> Result<(), Purged> {
    if !job.status.is_terminal() {
        return Err(Purged::Unfinished(job.status));
    }
    match &job.admission {
        Some(a)
            if matches!(
                a.delivery.state,
                DeliveryState::Waiting | DeliveryState::Pending
            ) =>
        {
            Err(Purged::NoticePending(a.delivery.next_attempt_at))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created_at: Millis, id: &str, status: JobStatus, route: &str) -> Candidate {
        Candidate {
            at: Cursor {
                created_at,
                id: id.into(),
            },
            status,
            route: route.into(),
            expires_at: None,
        }
    }

    fn ids(positions: &[Cursor]) -> Vec<&str> {
        positions.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn a_full_page_ends_at_its_last_job_only_when_more_match() {
        let all: Vec<Candidate> = (0..5)
            .rev()
            .map(|i| entry(i, &format!("j{i}"), JobStatus::Pending, "r"))
            .collect();
        let query = ListQuery {
            limit: 2,
            ..ListQuery::default()
        };
        let (page, next) = walk(&query, 0, all.clone());
        assert_eq!(ids(&page), ["j4", "j3"]);
        assert_eq!(next.map(|c| c.id), Some("j3".to_owned()));
        let query = ListQuery {
            limit: 5,
            ..ListQuery::default()
        };
        let (page, next) = walk(&query, 0, all);
        assert_eq!(page.len(), 5);
        assert_eq!(next, None, "exactly the rest: no empty page after it");
    }

    #[test]
    fn filters_expiry_and_the_scan_limit() {
        let mut all: Vec<Candidate> = (0..SCAN_LIMIT + 10)
            .map(|i| entry(-(i as i64), &format!("j{i}"), JobStatus::Failed, "r"))
            .collect();
        all[0].status = JobStatus::Succeeded;
        all[1].status = JobStatus::Succeeded;
        all[1].expires_at = Some(5);
        let query = ListQuery {
            status: Some(JobStatus::Succeeded),
            ..ListQuery::default()
        };
        let (page, next) = walk(&query, 5, all.clone());
        assert_eq!(ids(&page), ["j0"], "the expired one is left out");
        let last_seen = format!("j{}", SCAN_LIMIT - 1);
        assert_eq!(next.map(|c| c.id), Some(last_seen), "stopped at the limit");
        let (page, next) = walk(&query, 5, all.into_iter().take(SCAN_LIMIT));
        assert_eq!((ids(&page), next), (vec!["j0"], None), "nothing beyond");
        let routed = ListQuery {
            route: Some("other".into()),
            ..ListQuery::default()
        };
        assert!(!routed.admits(JobStatus::Failed, "r", None, 0));
        assert!(routed.admits(JobStatus::Failed, "other", None, 0));
    }

    #[test]
    fn limits_are_clamped() {
        for (asked, used) in [(0, 1), (1, 1), (100, 100), (101, 100)] {
            let q = ListQuery {
                limit: asked,
                ..ListQuery::default()
            };
            assert_eq!(q.limit(), used);
        }
    }
}
