//! Shared `JobStore` cases — the `started` event (`callback_events`): a delivery of its own
//! kind, created waiting with the job only when asked for, due when the job is claimed
//! (once, however often the job is claimed), never sent for a job that ends without
//! starting, and claimed and recorded apart from the terminal callback.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::model::{Attempt, AttemptNext, DeliveryKind, DeliveryState, NewJob};
use prefer_gateway::store::{JobStatus, Outcome, Recovery};

use crate::{create, found, hooked_job, response, Store, HOOK, NO_LIMIT, RET, T0};

fn asking(route: &str) -> NewJob {
    NewJob {
        notify_started: true,
        ..hooked_job("t", route)
    }
}

fn delivered() -> Attempt {
    Attempt {
        status: Some(204),
        error: None,
        next: AttemptNext::Delivered,
    }
}

async fn claim_started(store: &Store, now: i64) -> Option<String> {
    store
        .claim_delivery(DeliveryKind::Started, now, 0, now + 1_000)
        .await
        .unwrap()
        .map(|(delivery, job)| {
            assert_eq!(job.started.as_ref(), Some(&delivery));
            assert_eq!(delivery.url, HOOK);
            job.id
        })
}

pub async fn only_when_asked_and_due_at_the_claim(store: Store) {
    let plain = create(&store, hooked_job("t", "r"), T0).await;
    assert_eq!(plain.started, None);
    let job = create(&store, asking("r"), T0 + 1).await;
    let started = job.started.clone().unwrap();
    assert_eq!(started.state, DeliveryState::Waiting);
    assert_eq!(started.url, HOOK);
    assert_eq!(
        found(&store, "t", &job.id, T0 + 2).await.started,
        Some(started)
    );
    assert_eq!(claim_started(&store, T0 + 2).await, None, "waiting");
    // Claimed in order: the plain job first, then the one that asked.
    store
        .claim("r", NO_LIMIT, T0 + 9_000, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    let claimed = store
        .claim("r", NO_LIMIT, T0 + 9_000, T0 + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job.id);
    let due = claimed.started.unwrap();
    assert_eq!(
        (due.state, due.next_attempt_at),
        (DeliveryState::Pending, Some(T0 + 4))
    );
    assert_eq!(found(&store, "t", &plain.id, T0 + 5).await.started, None);
    // Its own kind: the terminal callback is still waiting, and not claimable.
    assert!(store
        .claim_delivery(DeliveryKind::Callback, T0 + 5, 0, T0 + 1_000)
        .await
        .unwrap()
        .is_none());
    assert_eq!(claim_started(&store, T0 + 5).await, Some(job.id.clone()));
    assert_eq!(claim_started(&store, T0 + 6).await, None, "leased");
    store
        .record_attempt(&job.id, DeliveryKind::Started, delivered(), T0 + 7)
        .await
        .unwrap();
    let seen = found(&store, "t", &job.id, T0 + 8).await;
    let started = seen.started.unwrap();
    assert_eq!(
        (started.state, started.attempts),
        (DeliveryState::Delivered, 1)
    );
    assert_eq!(seen.callback.unwrap().state, DeliveryState::Waiting);
    // The end makes the terminal callback due and leaves the started event alone.
    assert!(store
        .complete(&job.id, Outcome::Answered(response(200)), RET, T0 + 9)
        .await
        .unwrap());
    let done = found(&store, "t", &job.id, T0 + 10).await;
    assert_eq!(done.callback.unwrap().state, DeliveryState::Pending);
    assert_eq!(done.started.unwrap().state, DeliveryState::Delivered);
    assert_eq!(claim_started(&store, T0 + 11).await, None);
}

pub async fn never_sent_for_a_job_that_never_started(store: Store) {
    let job = create(&store, asking("r"), T0).await;
    store.cancel("t", &job.id, RET, T0 + 1).await.unwrap();
    let canceled = found(&store, "t", &job.id, T0 + 2).await;
    assert_eq!(canceled.status, JobStatus::Canceled);
    assert_eq!(canceled.callback.unwrap().state, DeliveryState::Pending);
    assert_eq!(canceled.started.unwrap().state, DeliveryState::Waiting);
    assert_eq!(claim_started(&store, T0 + 3).await, None);
}

pub async fn a_re_run_does_not_send_it_again(store: Store) {
    let job = create(&store, asking("r"), T0).await;
    store
        .claim("r", NO_LIMIT, T0 + 100, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim_started(&store, T0 + 1).await, Some(job.id.clone()));
    store
        .record_attempt(&job.id, DeliveryKind::Started, delivered(), T0 + 2)
        .await
        .unwrap();
    let n = store
        .recover(T0 + 500, false, RET, &|_| Recovery::Retry)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let again = store
        .claim("r", NO_LIMIT, T0 + 9_000, T0 + 600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.started.unwrap().state, DeliveryState::Delivered);
    assert_eq!(claim_started(&store, T0 + 601).await, None);
}
