//! Purging jobs over HTTP: `DELETE /jobs/{id}?purge=true` removes a finished job for
//! good (`204`, then `404` — no `410` tombstone — and no longer listed), leaves another
//! tenant's alone, refuses an unfinished job (`409 job-not-finished`) and one whose
//! admission notice is still owed (`409 admission-notice-pending` with `Retry-After`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{client, reply, Gateway, Seen, Upstream};
use crate::{
    config, delete, get, listed_ids, page, problem, start, store, submit, until, upstream, TENANT,
};

pub(crate) async fn purge_removes_a_finished_job_for_good(kind: &str) {
    let (gw, _up, _st) = start(kind).await;
    let done = submit(&gw, TENANT, "/v1/render", r#"{"n":1}"#).await;
    let kept = submit(&gw, TENANT, "/v1/render", r#"{"n":2}"#).await;
    let running = submit(&gw, TENANT, "/v1/render", r#"{"hang":"hang"}"#).await;
    let download = until(&gw, &done, "succeeded").await["download_url"]
        .as_str()
        .expect("a signed result URL")
        .to_owned();
    until(&gw, &kept, "succeeded").await;
    until(&gw, &running, "running").await;
    let path = format!("/jobs/{done}");

    // Another tenant's purge looks like an unknown id's, and changes nothing.
    let foreign = delete(&gw, &format!("{path}?purge=true"), "other-tenant").await;
    problem(foreign, 404, "job-not-found").await;
    problem(
        delete(&gw, &format!("{path}?purge=maybe"), TENANT).await,
        400,
        "invalid-query",
    )
    .await;
    // The tenant is checked first, as on every job endpoint.
    let anonymous = client().delete(gw.url(&format!("{path}?purge=maybe")));
    let resp = anonymous.send().await.unwrap();
    problem(resp, 401, "tenant-required").await;
    // Plain DELETE keeps its meaning: a finished job cannot be canceled.
    problem(delete(&gw, &path, TENANT).await, 409, "job-finished").await;

    let resp = delete(&gw, &format!("{path}?purge=true"), TENANT).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    problem(get(&gw, &path, Some(TENANT)).await, 404, "job-not-found").await;
    let result = get(&gw, &format!("{path}/result"), Some(TENANT)).await;
    problem(result, 404, "job-not-found").await;
    let again = delete(&gw, &format!("{path}?purge=true"), TENANT).await;
    problem(again, 404, "job-not-found").await;
    // Its signed result URL proves the job existed: the result is gone, not unknown.
    problem(get(&gw, &download, None).await, 410, "job-expired").await;
    let (doc, _) = page(&gw, "/jobs").await;
    assert!(!listed_ids(&doc).contains(&done));
    assert!(listed_ids(&doc).contains(&kept));

    // A running job is never purged: cancel it first.
    let running_path = format!("/jobs/{running}");
    let resp = delete(&gw, &format!("{running_path}?purge=true"), TENANT).await;
    let doc = problem(resp, 409, "job-not-finished").await;
    assert!(doc["detail"].as_str().unwrap().contains("running"), "{doc}");
    assert_eq!(delete(&gw, &running_path, TENANT).await.status(), 200);
    let resp = delete(&gw, &format!("{running_path}?purge=true"), TENANT).await;
    assert_eq!(resp.status(), 204);
}

/// A purge waits for the admission notice: `409` with `Retry-After` while the endpoint has
/// not taken it, `204` once it has.
pub(crate) async fn purge_waits_for_the_admission_notice(kind: &str) {
    let st = store(kind);
    let up = upstream().await;
    let take_notices = Arc::new(AtomicBool::new(false));
    let taking = Arc::clone(&take_notices);
    let endpoint = Upstream::start(move |s: Seen| {
        let reserve = String::from_utf8_lossy(&s.body).contains("\"reserve\"");
        let ok = reserve || taking.load(Ordering::SeqCst);
        async move { reply(if ok { 200 } else { 503 }, "{}", &[]) }
    })
    .await;
    let cfg = config(&st.spec, Some(&endpoint.url()));
    let gw = Gateway::start(&cfg, &up.url()).await;
    let id = submit(&gw, TENANT, "/v1/render", r#"{"n":1}"#).await;
    until(&gw, &id, "succeeded").await;
    let purge = format!("/jobs/{id}?purge=true");
    let resp = delete(&gw, &purge, TENANT).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    problem(resp, 409, "admission-notice-pending").await;

    take_notices.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = delete(&gw, &purge, TENANT).await;
        if resp.status() == 204 {
            break;
        }
        assert_eq!(resp.status(), 409);
        assert!(Instant::now() < deadline, "the notice never went through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    problem(
        get(&gw, &format!("/jobs/{id}"), Some(TENANT)).await,
        404,
        "job-not-found",
    )
    .await;
}
