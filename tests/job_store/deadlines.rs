//! Shared `JobStore` cases — Deadlines: a job's `Cancel-After` deadline is stored with it
//! and read back by every path that returns the job (get, claim, listing); a deadline
//! cancel (`cancel_with` and `deadline_exceeded`) is the same transition as a client's
//! cancel — pending or running, the slot and tenant count freed, the callback and the
//! admission release made due — and records its own reason.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::model::JobError;
use prefer_gateway::store::{Canceled, JobStatus, ListQuery, NewJob};

use crate::admission_deliveries::{both, due, ADMIT};
use crate::{create, found, new_job, Store, HOOK, NO_LIMIT, RET, T0};

fn exceeded() -> JobError {
    JobError {
        code: "deadline_exceeded".into(),
        message: "the job's deadline passed".into(),
    }
}

pub async fn deadline_round_trips(store: Store) {
    let with = NewJob {
        deadline: Some(T0 + 30_000),
        ..new_job("t", "r", None, "fp")
    };
    let with = create(&store, with, T0).await;
    let without = create(&store, new_job("t", "r", None, "fp"), T0 + 1).await;
    assert_eq!(with.deadline, Some(T0 + 30_000));
    assert_eq!(
        found(&store, "t", &with.id, T0 + 2).await.deadline,
        Some(T0 + 30_000)
    );
    assert_eq!(found(&store, "t", &without.id, T0 + 2).await.deadline, None);
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 1_000, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.deadline),
        (with.id.clone(), Some(T0 + 30_000))
    );
    let page = store
        .list("t", &ListQuery::default(), T0 + 4)
        .await
        .unwrap();
    let listed = page.jobs.iter().find(|j| j.id == with.id).unwrap();
    assert_eq!(listed.deadline, Some(T0 + 30_000));
}

pub async fn deadline_cancel_is_a_cancel_with_its_own_reason(store: Store) {
    let pending = create(&store, both("p"), T0).await;
    let running = create(&store, both("q"), T0).await;
    store
        .claim("q", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    for (job, at) in [(pending, T0 + 4), (running, T0 + 5)] {
        let done = store
            .cancel_with("t", &job.id, &exceeded(), RET, at)
            .await
            .unwrap();
        let Canceled::Done(done) = done else {
            panic!("not canceled: {done:?}")
        };
        assert_eq!(done.status, JobStatus::Canceled);
        assert_eq!(done.error, Some(exceeded()));
        assert_eq!(done.expires_at, Some(at + RET));
        assert_eq!(done.admission.map(|a| a.delivery), Some(due(ADMIT, at)));
        assert_eq!(
            done.callback.map(|c| (c.url, c.next_attempt_at)),
            Some((HOOK.into(), Some(at)))
        );
        let read = found(&store, "t", &job.id, at).await;
        assert_eq!(read.error.map(|e| e.code), Some("deadline_exceeded".into()));
        // Canceled once: a second deadline or a client's cancel finds it finished.
        let again = store.cancel("t", &job.id, RET, at + 1).await.unwrap();
        assert!(matches!(again, Canceled::AlreadyTerminal(_)), "{again:?}");
    }
    // The route's slot is free again: a new job of `q` is claimed under a limit of one.
    let next = create(&store, new_job("t", "q", None, "fp"), T0 + 6).await;
    let claimed = store
        .claim("q", 1, T0 + 100, T0 + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, next.id);
    // Another tenant cannot cancel it, whatever the reason.
    let foreign = store
        .cancel_with("other", &next.id, &exceeded(), RET, T0 + 8)
        .await
        .unwrap();
    assert!(matches!(foreign, Canceled::Missing), "{foreign:?}");
}

pub async fn client_cancel_keeps_its_reason(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    let Canceled::Done(done) = store.cancel("t", &job.id, RET, T0 + 1).await.unwrap() else {
        panic!("not canceled")
    };
    assert_eq!(done.error.map(|e| e.code), Some("canceled".into()));
}
