//! Shared `JobStore` cases — Visibility and retention: tenants, expiry, sweeping in batches, tombstones, freed keys.
//! `tests/job_store.rs` runs each against every store.

use prefer_gateway::store::TOMBSTONE_FACTOR;
use prefer_gateway::store::{Canceled, Created, Lookup};

use crate::{create, finished, found, new_job, Store, RET, T0};

pub async fn other_tenant_sees_missing(store: Store) {
    let job = create(&store, new_job("t", "r", None, "fp"), T0).await;
    assert!(matches!(
        store.get("u", &job.id, T0).await.unwrap(),
        Lookup::Missing
    ));
    assert!(matches!(
        store.get("t", "unknown", T0).await.unwrap(),
        Lookup::Missing
    ));
    // Also once expired and swept: another tenant never learns the id existed.
    let id = finished(&store, "t", "r2", T0).await;
    assert!(matches!(
        store.get("u", &id, T0 + RET).await.unwrap(),
        Lookup::Missing
    ));
    assert_eq!(store.sweep(T0 + RET, RET, 100).await.unwrap(), 1);
    assert!(matches!(
        store.get("u", &id, T0 + RET).await.unwrap(),
        Lookup::Missing
    ));
}

pub async fn expired_before_and_after_sweep(store: Store) {
    let id = finished(&store, "t", "r", T0).await;
    found(&store, "t", &id, T0 + RET - 1).await;
    assert!(matches!(
        store.get("t", &id, T0 + RET).await.unwrap(),
        Lookup::Expired
    ));
    assert!(matches!(
        store.cancel("t", &id, RET, T0 + RET).await.unwrap(),
        Canceled::Expired
    ));
    assert_eq!(
        store.sweep(T0 + RET - 1, RET, 100).await.unwrap(),
        0,
        "not yet due"
    );
    assert_eq!(store.sweep(T0 + RET, RET, 100).await.unwrap(), 1);
    assert!(matches!(
        store.get("t", &id, T0 + RET + 1).await.unwrap(),
        Lookup::Expired
    ));
    assert!(matches!(
        store.cancel("t", &id, RET, T0 + RET + 1).await.unwrap(),
        Canceled::Expired
    ));
}

pub async fn sweep_works_in_batches_oldest_first(store: Store) {
    let mut ids = Vec::new();
    for i in 0..25 {
        // Finished in reverse order, so expiry order differs from creation order.
        ids.push((T0 + 100 - i, finished(&store, "t", "r", T0 + 100 - i).await));
    }
    let unfinished = create(&store, new_job("t", "r", None, "fp"), T0).await;
    ids.sort();
    let now = T0 + 200 + RET;
    for (want, swept) in [(10, 10), (10, 20), (5, 25), (0, 25)] {
        assert_eq!(store.sweep(now, RET, 10).await.unwrap(), want);
        for (i, (_, id)) in ids.iter().enumerate() {
            let gone = matches!(store.get("t", id, now).await.unwrap(), Lookup::Expired);
            assert!(gone, "all are past retention");
            let row = store.get("t", id, T0).await.unwrap();
            assert_eq!(
                matches!(row, Lookup::Found(_)),
                i >= swept,
                "job {i} after {swept} swept"
            );
        }
    }
    found(&store, "t", &unfinished.id, now).await;
}

pub async fn tombstones_are_purged_then_missing(store: Store) {
    let id = finished(&store, "t", "r", T0).await;
    let expired = T0 + RET;
    assert_eq!(store.sweep(expired, RET, 10).await.unwrap(), 1);
    let purge = expired + TOMBSTONE_FACTOR * RET;
    store.sweep(purge - 1, RET, 10).await.unwrap();
    assert!(matches!(
        store.get("t", &id, purge - 1).await.unwrap(),
        Lookup::Expired
    ));
    store.sweep(purge, RET, 10).await.unwrap();
    assert!(matches!(
        store.get("t", &id, purge).await.unwrap(),
        Lookup::Missing
    ));
}

pub async fn swept_keys_are_free_again(store: Store) {
    let job = create(&store, new_job("t", "r", Some("k"), "fp"), T0).await;
    store.cancel("t", &job.id, RET, T0).await.unwrap();
    assert!(
        matches!(
            store
                .create(new_job("t", "r", Some("k"), "other"), 10, T0 + RET)
                .await
                .unwrap(),
            Created::KeyConflict
        ),
        "expired but not swept: still taken"
    );
    store.sweep(T0 + RET, RET, 10).await.unwrap();
    let again = store
        .create(new_job("t", "r", Some("k"), "other"), 10, T0 + RET)
        .await
        .unwrap();
    assert!(
        matches!(again, Created::New(ref j) if j.id != job.id),
        "{again:?}"
    );
}

/// `get_unscoped` (signed result URLs): any tenant's job, unfinished or finished; past
/// retention `Expired` before and after the sweep (whoever's tombstone); `Missing` for
/// unknown ids and once the tombstone is purged.
pub async fn unscoped_get_ignores_the_tenant_but_not_retention(store: Store) {
    let id = finished(&store, "t", "r", T0).await;
    match store.get_unscoped(&id, T0 + RET - 1).await.unwrap() {
        Lookup::Found(job) => assert_eq!((job.id.as_str(), job.tenant.as_str()), (&*id, "t")),
        other => panic!("expected Found, got {other:?}"),
    }
    let pending = create(&store, new_job("u", "r", None, "fp"), T0).await;
    assert!(matches!(
        store.get_unscoped(&pending.id, T0).await.unwrap(),
        Lookup::Found(job) if job.tenant == "u"
    ));
    assert!(matches!(
        store.get_unscoped("unknown", T0).await.unwrap(),
        Lookup::Missing
    ));
    let expired = T0 + RET;
    assert!(matches!(
        store.get_unscoped(&id, expired).await.unwrap(),
        Lookup::Expired
    ));
    assert_eq!(store.sweep(expired, RET, 10).await.unwrap(), 1);
    assert!(matches!(
        store.get_unscoped(&id, expired + 1).await.unwrap(),
        Lookup::Expired
    ));
    let purge = expired + TOMBSTONE_FACTOR * RET;
    store.sweep(purge, RET, 10).await.unwrap();
    assert!(matches!(
        store.get_unscoped(&id, purge).await.unwrap(),
        Lookup::Missing
    ));
}
