//! Shared `JobStore` cases — Listing a tenant's jobs: newest first (ties by id), only the
//! tenant's own, filtered by status and route, past-retention jobs left out, summaries
//! without bodies; pages follow the cursor with no duplicates or gaps while new jobs
//! arrive, also once the cursor's job is gone; the limit is clamped and a page looks at a
//! bounded number of jobs. Purging is in `purging.rs`.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::listing::{MAX_LIMIT, SCAN_LIMIT};
use prefer_gateway::store::{Cursor, Job, JobStatus, ListQuery, Outcome, Page, Purged};

use crate::{create, failure, found, new_job, run_to_success, Store, NO_LIMIT, RET, T0};

/// `tenant`'s page for `query` at `now`.
pub async fn list(store: &Store, tenant: &str, query: ListQuery, now: i64) -> Page {
    store.list(tenant, &query, now).await.unwrap()
}

/// The ids of a page, in order.
pub fn ids(page: &Page) -> Vec<String> {
    page.jobs.iter().map(|j| j.id.clone()).collect()
}

/// A query for at most `limit` jobs after `after`.
pub fn paged(limit: usize, after: Option<Cursor>) -> ListQuery {
    ListQuery {
        limit,
        after,
        ..ListQuery::default()
    }
}

/// `jobs` in list order: newest first, ties by id descending.
fn newest_first(mut jobs: Vec<Job>) -> Vec<String> {
    jobs.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    jobs.into_iter().map(|j| j.id).collect()
}

pub async fn lists_newest_first_only_the_tenants_own(store: Store) {
    assert_eq!(
        list(&store, "t", ListQuery::default(), T0).await,
        Page {
            jobs: Vec::new(),
            next: None
        },
        "an empty store"
    );
    // Created out of time order, two in the same millisecond (ordered by id), one with a
    // finished run: its stored response must not come back.
    let mut mine = Vec::new();
    for at in [T0 + 5, T0 + 1, T0 + 9, T0 + 5, T0 + 3] {
        mine.push(create(&store, new_job("t", "r", None, "fp"), at).await);
    }
    let done = run_to_success(&store, new_job("t", "s", None, "fp"), T0 + 7).await;
    mine.push(found(&store, "t", &done, T0 + 7).await);
    for at in [T0 + 2, T0 + 8] {
        create(&store, new_job("u", "r", None, "fp"), at).await;
    }
    let page = list(&store, "t", ListQuery::default(), T0 + 10).await;
    assert_eq!(ids(&page), newest_first(mine.clone()));
    assert_eq!(page.next, None);
    // Each one as `get` finds it, minus header lists and bodies.
    for job in &page.jobs {
        let full = found(&store, "t", &job.id, T0 + 10).await;
        assert_eq!(job, &full.summary(), "{}", job.id);
    }
    let finished = page.jobs.iter().find(|j| j.id == done).unwrap();
    let response = finished
        .response
        .as_ref()
        .expect("the response's status stays");
    assert_eq!((response.status, response.body.len()), (200, 0));
    assert!(finished.request.body.is_empty() && finished.request.headers.is_empty());

    let theirs = list(&store, "u", ListQuery::default(), T0 + 10).await;
    assert_eq!(theirs.jobs.len(), 2);
    assert!(theirs.jobs.iter().all(|j| j.tenant == "u"));
    let nobody = list(&store, "nobody", ListQuery::default(), T0 + 10).await;
    assert!(nobody.jobs.is_empty() && nobody.next.is_none());
}

/// One job per state on route `a` and a pending one on `b`, created at `T0 + 1..=6` as
/// `(status, route, id)` in creation order.
async fn every_state(store: &Store) -> Vec<(JobStatus, &'static str, String)> {
    let id = |job: Job| job.id;
    let running = id(create(store, new_job("t", "a", None, "fp"), T0 + 1).await);
    let succeeded = id(create(store, new_job("t", "a", None, "fp"), T0 + 2).await);
    let failed = id(create(store, new_job("t", "a", None, "fp"), T0 + 3).await);
    // Claims take the oldest first: these three, in order.
    for _ in 0..3 {
        store
            .claim("a", NO_LIMIT, T0 + 60_000, T0 + 4)
            .await
            .unwrap()
            .unwrap();
    }
    let ok = Outcome::Answered(crate::response(200));
    assert!(store.complete(&succeeded, ok, RET, T0 + 5).await.unwrap());
    let timeout = Outcome::Failed(failure("upstream_timeout"));
    assert!(store.complete(&failed, timeout, RET, T0 + 5).await.unwrap());
    let canceled = id(create(store, new_job("t", "a", None, "fp"), T0 + 4).await);
    store.cancel("t", &canceled, RET, T0 + 5).await.unwrap();
    let pending = id(create(store, new_job("t", "a", None, "fp"), T0 + 5).await);
    let on_b = id(create(store, new_job("t", "b", None, "fp"), T0 + 6).await);
    vec![
        (JobStatus::Running, "a", running),
        (JobStatus::Succeeded, "a", succeeded),
        (JobStatus::Failed, "a", failed),
        (JobStatus::Canceled, "a", canceled),
        (JobStatus::Pending, "a", pending),
        (JobStatus::Pending, "b", on_b),
    ]
}

pub async fn status_and_route_filters(store: Store) {
    let jobs = every_state(&store).await;
    let now = T0 + 10;
    for (status, _, id) in &jobs {
        assert_eq!(found(&store, "t", id, now).await.status, *status, "{id}");
    }
    let expect = |keep: &dyn Fn(JobStatus, &str) -> bool| -> Vec<String> {
        jobs.iter()
            .rev()
            .filter(|(s, r, _)| keep(*s, r))
            .map(|(_, _, id)| id.clone())
            .collect()
    };
    for status in [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Canceled,
    ] {
        let query = ListQuery {
            status: Some(status),
            ..ListQuery::default()
        };
        let page = list(&store, "t", query, now).await;
        assert_eq!(ids(&page), expect(&|s, _| s == status), "{status:?}");
        assert!(page.jobs.iter().all(|j| j.status == status));
    }
    let on_b = ListQuery {
        route: Some("b".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        ids(&list(&store, "t", on_b, now).await),
        expect(&|_, r| r == "b")
    );
    let both = ListQuery {
        status: Some(JobStatus::Pending),
        route: Some("a".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        ids(&list(&store, "t", both, now).await),
        expect(&|s, r| s == JobStatus::Pending && r == "a")
    );
    let nowhere = ListQuery {
        route: Some("c".into()),
        ..ListQuery::default()
    };
    let page = list(&store, "t", nowhere, now).await;
    assert!(page.jobs.is_empty() && page.next.is_none());
}

pub async fn pages_follow_the_cursor_while_jobs_arrive(store: Store) {
    let mut all = Vec::new();
    for i in 0..25 {
        // Pairs share a millisecond, so pages also split ties.
        all.push(create(&store, new_job("t", "r", None, "fp"), T0 + i / 2).await);
    }
    let order = newest_first(all);
    let first = list(&store, "t", paged(10, None), T0 + 100).await;
    assert_eq!(ids(&first), order[..10]);
    let cursor = first.next.clone().expect("more pages");
    assert_eq!(cursor, Cursor::of(first.jobs.last().unwrap()));

    // New jobs, newer than every listed one, one in the cursor's own millisecond with a
    // larger id than any: none of them shifts the pages that follow.
    for i in 0..4 {
        create(&store, new_job("t", "r", None, "fp"), T0 + 50 + i).await;
    }
    let tie = prefer_gateway::store::NewJob {
        id: "ffffffff-ffff-7fff-bfff-ffffffffffff".into(),
        ..new_job("t", "r", None, "fp")
    };
    create(&store, tie, cursor.created_at).await;
    let second = list(&store, "t", paged(10, Some(cursor)), T0 + 100).await;
    assert_eq!(ids(&second), order[10..20]);
    let third = list(&store, "t", paged(10, second.next.clone()), T0 + 100).await;
    assert_eq!(ids(&third), order[20..]);
    assert_eq!(third.next, None, "no empty page after the last");

    // Exactly one page's worth: no cursor to an empty page.
    let exact = list(&store, "t", paged(5, second.next), T0 + 100).await;
    assert_eq!((exact.jobs.len(), exact.next), (5, None));
    // The newcomers lead a fresh first page.
    let fresh = list(&store, "t", paged(10, None), T0 + 100).await;
    assert!(fresh.jobs[..4].iter().all(|j| j.created_at >= T0 + 50));
    assert_eq!(ids(&fresh)[4..], order[..6]);
}

pub async fn a_cursor_outlives_its_job(store: Store) {
    let mut all = Vec::new();
    for i in 0..6 {
        all.push(run_to_success(&store, new_job("t", "r", None, "fp"), T0 + i).await);
    }
    let first = list(&store, "t", paged(3, None), T0 + 10).await;
    let cursor = first.next.clone().unwrap();
    let expected = list(&store, "t", paged(3, Some(cursor.clone())), T0 + 10).await;
    assert_eq!(expected.jobs.len(), 3);
    // The job the cursor names is purged: the cursor still names its position.
    assert_eq!(
        store.purge("t", &cursor.id, T0 + 10).await.unwrap(),
        Purged::Done
    );
    let after = list(&store, "t", paged(3, Some(cursor.clone())), T0 + 10).await;
    assert_eq!(ids(&after), ids(&expected));
    // A position no job ever had, between two jobs, works the same.
    let between = Cursor {
        created_at: T0 + 3,
        id: String::new(),
    };
    let page = list(&store, "t", paged(10, Some(between)), T0 + 10).await;
    assert_eq!(page.jobs.len(), 3, "the three created before T0 + 3");
}

pub async fn limits_and_retention(store: Store) {
    for i in 0..(MAX_LIMIT as i64 + 5) {
        create(&store, new_job("t", "r", None, "fp"), T0 + i).await;
    }
    let most = list(&store, "t", paged(10_000, None), T0 + 1_000).await;
    assert_eq!(
        most.jobs.len(),
        MAX_LIMIT,
        "clamped to the most a page holds"
    );
    assert!(most.next.is_some());
    let least = list(&store, "t", paged(0, None), T0 + 1_000).await;
    assert_eq!(least.jobs.len(), 1, "clamped to one");

    // A finished job past retention is left out, before and after the sweeper took it.
    let old = run_to_success(&store, new_job("v", "s", None, "fp"), T0).await;
    let young = run_to_success(&store, new_job("v", "s", None, "fp"), T0 + 30_000).await;
    let page = list(&store, "v", ListQuery::default(), T0 + RET).await;
    assert_eq!(ids(&page), [young.as_str()]);
    store.sweep(T0 + RET, RET, 100).await.unwrap();
    let page = list(&store, "v", ListQuery::default(), T0 + RET).await;
    assert_eq!(ids(&page), [young]);
    assert!(!ids(&page).contains(&old));
}

pub async fn a_page_looks_at_a_bounded_number_of_jobs(store: Store) {
    // The one failed job is the oldest; more than a scan's worth of pending jobs follow.
    let oldest = create(&store, new_job("t", "r", None, "fp"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 60_000, T0)
        .await
        .unwrap()
        .unwrap();
    store
        .complete(&oldest.id, Outcome::Failed(failure("x")), RET, T0)
        .await
        .unwrap();
    for i in 0..SCAN_LIMIT as i64 {
        create(&store, new_job("t", "r", None, "fp"), T0 + 1 + i).await;
    }
    let failed = ListQuery {
        status: Some(JobStatus::Failed),
        ..ListQuery::default()
    };
    let short = list(&store, "t", failed.clone(), T0 + 5_000).await;
    assert!(short.jobs.is_empty(), "stopped before reaching it");
    let cursor = short.next.expect("and says where to go on");
    assert_eq!(cursor.created_at, T0 + 1, "the last one looked at");
    let rest = ListQuery {
        after: Some(cursor),
        ..failed
    };
    let page = list(&store, "t", rest, T0 + 5_000).await;
    assert_eq!(ids(&page), [oldest.id]);
    assert_eq!(page.next, None);
}
