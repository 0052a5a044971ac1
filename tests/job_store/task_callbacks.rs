//! Callback-driven task watches (`task.callback`): the store keeps the one-time token's
//! hash in the watch's `fingerprint` (no idempotency key, so it never deduplicates), any
//! process finds it by id alone, and the completion a callback makes lands once — not
//! before the watch is claimed, not twice.

use prefer_gateway::store::model::JobKind;
use prefer_gateway::store::{JobStatus, Lookup, Outcome};

use crate::{create, new_job, response, Store, NO_LIMIT, RET, T0};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn watch(tenant: &str) -> prefer_gateway::store::NewJob {
    let mut job = new_job(tenant, "edit", None, HASH);
    job.kind = JobKind::Watch;
    job.request.method = "GET".into();
    job.request.target = "http://up.example/v1/tasks/t-1".into();
    job.request.body = bytes::Bytes::new();
    job
}

pub async fn a_callback_watch_keeps_its_token_hash_and_completes_once(store: Store) {
    let a = create(&store, watch("acme"), T0).await;
    // Same hash, no key: a second watch is its own job (fingerprints only matter with keys).
    let b = create(&store, watch("acme"), T0).await;
    assert_ne!(a.id, b.id);
    let Lookup::Found(seen) = store.get_unscoped(&a.id, T0 + 1).await.unwrap() else {
        panic!("the watch must be found by id alone");
    };
    assert_eq!(seen.fingerprint, HASH);
    assert_eq!(seen.kind, JobKind::Watch);
    assert_eq!(seen.tenant, "acme");
    // A callback before the claim cannot complete it (the receiver waits for the claim).
    let done = Outcome::Answered(response(200));
    assert!(!store
        .complete(&a.id, done.clone(), RET, T0 + 2)
        .await
        .unwrap());
    let mut claimed = Vec::new();
    while let Some(job) = store
        .claim("edit", NO_LIMIT, T0 + 60_000, T0 + 3)
        .await
        .unwrap()
    {
        claimed.push(job.id);
    }
    assert!(claimed.contains(&a.id));
    assert!(store
        .complete(&a.id, done.clone(), RET, T0 + 4)
        .await
        .unwrap());
    // The repeat (or the fallback poll racing it) changes nothing.
    assert!(!store.complete(&a.id, done, RET, T0 + 5).await.unwrap());
    let Lookup::Found(after) = store.get_unscoped(&a.id, T0 + 6).await.unwrap() else {
        panic!("finished watch must be found");
    };
    assert_eq!(after.status, JobStatus::Succeeded);
    assert_eq!(after.fingerprint, HASH);
    assert_eq!(after.response.unwrap().body, response(200).body);
}
