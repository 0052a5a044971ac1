//! Listing and purging jobs (issue 17, bullet 5), black-box over real sockets: `GET /jobs`
//! pages through the caller's jobs with `next_cursor` and `Link: rel="next"`, filters by
//! status and route, refuses malformed queries with `400 invalid-query` and callers
//! without the tenant header with `401`; `DELETE /jobs/{id}?purge=true` removes a
//! finished job (`204`, then `404`, not listed), refuses an unfinished one and one whose
//! admission notice is still owed (`409`). Each case runs on the memory store, a real
//! SQLite file and a real `redis-server`; the purge cases are in `listing/purging.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "listing/purging.rs"]
mod purging;

use purging::{purge_removes_a_finished_job_for_good, purge_waits_for_the_admission_notice};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::store::{store, Store};
use support::{client, reply, Gateway, Seen, Upstream};

pub(crate) const TENANT: &str = "acme";

/// An upstream: a body with `"hang"` never gets an answer, one with `"fail"` gets a `500`,
/// anything else `200`.
pub(crate) async fn upstream() -> Upstream {
    Upstream::start(|s: Seen| async move {
        let body = String::from_utf8_lossy(&s.body).into_owned();
        if body.contains("\"hang\"") {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        if body.contains("\"fail\"") {
            return reply(500, r#"{"error":"failed"}"#, &[]);
        }
        reply(200, r#"{"ok":true}"#, &[])
    })
    .await
}

/// Two sync routes, `render` (`/v1/render`, with signed result URLs) and `other`
/// (`/v1/other`), tenants by `X-Api-Key`; `admission` (a URL) gives `render` an admission
/// endpoint.
pub(crate) fn config(store: &str, admission: Option<&str>) -> String {
    let admission = admission
        .map(|url| format!("admission = {{ url = \"{url}/admission\", timeout = \"500ms\" }}"))
        .unwrap_or_default();
    // Admission notices retried every 100 ms for 6 s: quick once the endpoint takes them,
    // and still owed for long enough that a purge right after the job sees them owed.
    let schedule = ["\"0s\""; 1]
        .into_iter()
        .chain(std::iter::repeat_n("\"100ms\"", 60))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"
tenant_header = "X-Api-Key"
signing_secret = "whsec_bGlzdGluZy1hbmQtcHVyZ2luZy10ZXN0cw=="

[webhooks]
retry_schedule = [{schedule}]

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
signed_results = true
{admission}

[[routes]]
name = "other"
kind = "sync"
methods = ["POST"]
path = "/v1/other"
upstream = "{{up}}"
"#
    )
}

pub(crate) async fn start(kind: &str) -> (Gateway, Upstream, Store) {
    let st = store(kind);
    let up = upstream().await;
    let gw = Gateway::start(&config(&st.spec, None), &up.url()).await;
    (gw, up, st)
}

/// Submits `body` to `path` as `tenant` with `Prefer: respond-async`; the job id.
pub(crate) async fn submit(gw: &Gateway, tenant: &str, path: &str, body: &str) -> String {
    let resp = client()
        .post(gw.url(path))
        .header("x-api-key", tenant)
        .header("prefer", "respond-async")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    doc["job_id"].as_str().unwrap().to_owned()
}

pub(crate) async fn get(gw: &Gateway, url: &str, tenant: Option<&str>) -> reqwest::Response {
    let mut req = client().get(gw.url(url));
    if let Some(t) = tenant {
        req = req.header("x-api-key", t);
    }
    req.send().await.unwrap()
}

pub(crate) async fn delete(gw: &Gateway, path: &str, tenant: &str) -> reqwest::Response {
    let req = client().delete(gw.url(path)).header("x-api-key", tenant);
    req.send().await.unwrap()
}

/// Long-polls job `id` until its status is `want`; the status document.
pub(crate) async fn until(gw: &Gateway, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = client()
            .get(gw.url(&format!("/jobs/{id}")))
            .header("x-api-key", TENANT)
            .header("prefer", "wait=1")
            .send()
            .await
            .unwrap();
        let doc: Value = resp.json().await.unwrap();
        if doc["status"] == want {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never became {want}: {doc}"
        );
    }
}

/// A `200` listing's body and its `Link` header, if any.
pub(crate) async fn page(gw: &Gateway, url: &str) -> (Value, Option<String>) {
    let resp = get(gw, url, Some(TENANT)).await;
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let link = resp
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.json().await.unwrap(), link)
}

pub(crate) fn listed_ids(doc: &Value) -> Vec<String> {
    let jobs = doc["jobs"].as_array().unwrap();
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts `resp` is a problem of `status` with type slug `slug`; its body.
pub(crate) async fn problem(resp: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let doc: Value = resp.json().await.unwrap();
    let want = format!("https://prefer-gateway.dev/problems/{slug}");
    assert_eq!(doc["type"], want.as_str(), "{doc}");
    doc
}

pub(crate) async fn lists_the_callers_jobs_as_status_documents(kind: &str) {
    let (gw, _up, _st) = start(kind).await;
    let mut mine = Vec::new();
    for body in [r#"{"n":1}"#, r#"{"fail":"fail"}"#, r#"{"n":3}"#] {
        mine.push(submit(&gw, TENANT, "/v1/render", body).await);
    }
    let theirs = submit(&gw, "other-tenant", "/v1/render", r#"{"n":4}"#).await;
    for (id, want) in mine.iter().zip(["succeeded", "failed", "succeeded"]) {
        until(&gw, id, want).await;
    }
    let (doc, link) = page(&gw, "/jobs").await;
    assert_eq!(doc["next_cursor"], Value::Null);
    assert_eq!(link, None, "no next page, no Link");
    let jobs = doc["jobs"].as_array().unwrap();
    // Newest first: created_at (RFC 3339 to the millisecond, so it sorts as text), then id.
    let mut expected: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            (
                j["created_at"].as_str().unwrap().into(),
                j["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let order: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(listed_ids(&doc), order);
    assert_eq!(
        listed_ids(&doc).into_iter().collect::<HashSet<_>>(),
        mine.iter().cloned().collect::<HashSet<_>>(),
        "the caller's own jobs, not {theirs}"
    );
    // Each item is the document GET /jobs/{id} answers, byte for byte as JSON.
    for item in jobs {
        let url = item["status_url"].as_str().unwrap();
        let single: Value = get(&gw, url, Some(TENANT)).await.json().await.unwrap();
        assert_eq!(item, &single);
    }
}

pub(crate) async fn pages_follow_next_cursor_and_link(kind: &str) {
    let (gw, _up, _st) = start(kind).await;
    let mut all = HashSet::new();
    for n in 0..5 {
        all.insert(submit(&gw, TENANT, "/v1/render", &format!(r#"{{"n":{n}}}"#)).await);
    }
    let (first, link) = page(&gw, "/jobs?limit=2").await;
    assert_eq!(listed_ids(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let next = gw.url(&format!("/jobs?limit=2&cursor={cursor}"));
    assert_eq!(link, Some(format!("<{next}>; rel=\"next\"")));
    // A job submitted now is newer than every listed one: it does not shift the pages.
    let newcomer = submit(&gw, TENANT, "/v1/render", r#"{"n":"late"}"#).await;
    // Following the Link header, as a pagination client does.
    let (second, link) = page(&gw, &next).await;
    let link = link.expect("a third page");
    let third_url = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap()
        .to_owned();
    assert_eq!(
        second["next_cursor"].as_str(),
        third_url.split("cursor=").nth(1)
    );
    let (third, link) = page(&gw, &third_url).await;
    assert_eq!((third["next_cursor"].clone(), link), (Value::Null, None));
    let seen: Vec<String> = [first, second, third].iter().flat_map(listed_ids).collect();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(
        seen.into_iter().collect::<HashSet<_>>(),
        all,
        "no duplicates, no gaps"
    );
    let (fresh, _) = page(&gw, "/jobs?limit=1").await;
    assert_eq!(listed_ids(&fresh), [newcomer]);
}

pub(crate) async fn filters_by_status_and_route(kind: &str) {
    let (gw, _up, _st) = start(kind).await;
    let ok = submit(&gw, TENANT, "/v1/render", r#"{"n":1}"#).await;
    let failed = submit(&gw, TENANT, "/v1/render", r#"{"fail":"fail"}"#).await;
    let other = submit(&gw, TENANT, "/v1/other", r#"{"n":2}"#).await;
    until(&gw, &ok, "succeeded").await;
    until(&gw, &failed, "failed").await;
    until(&gw, &other, "succeeded").await;
    let (doc, _) = page(&gw, "/jobs?status=failed").await;
    assert_eq!(listed_ids(&doc), [failed.as_str()]);
    let (doc, _) = page(&gw, "/jobs?route=other").await;
    assert_eq!(listed_ids(&doc), [other.as_str()]);
    let (doc, _) = page(&gw, "/jobs?route=render&status=succeeded").await;
    assert_eq!(listed_ids(&doc), [ok]);
    let (doc, _) = page(&gw, "/jobs?status=running").await;
    assert_eq!(listed_ids(&doc), Vec::<String>::new());
    // The filters travel in the Link to the next page.
    submit(&gw, TENANT, "/v1/other", r#"{"n":3}"#).await;
    let (_, link) = page(&gw, "/jobs?route=other&limit=1").await;
    let link = link.expect("a second page");
    assert!(link.contains("?route=other&limit=1&cursor="), "{link}");
}

pub(crate) async fn malformed_queries_and_missing_tenants_are_refused(kind: &str) {
    let (gw, _up, _st) = start(kind).await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "status=done",
        "status=",
        "cursor=not-a-cursor",
        "limit=2&limit=3",
    ] {
        let resp = get(&gw, &format!("/jobs?{query}"), Some(TENANT)).await;
        let doc = problem(resp, 400, "invalid-query").await;
        assert!(doc["detail"].is_string(), "{query}: {doc}");
    }
    let doc = problem(get(&gw, "/jobs", None).await, 401, "tenant-required").await;
    assert_eq!(doc["detail"], "send the x-api-key header");
    // Tenant first, as on every job endpoint.
    problem(
        get(&gw, "/jobs?limit=0", None).await,
        401,
        "tenant-required",
    )
    .await;
    let post = client().post(gw.url("/jobs")).header("x-api-key", TENANT);
    let resp = post.send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    problem(resp, 405, "method-not-allowed").await;
}

macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $case() { crate::$case("memory").await } )*
        }
        mod sqlite {
            $( #[tokio::test] async fn $case() { crate::$case("sqlite").await } )*
        }
        mod redis {
            $( #[tokio::test] async fn $case() { crate::$case("redis").await } )*
        }
    };
}

on_every_store!(
    lists_the_callers_jobs_as_status_documents,
    pages_follow_next_cursor_and_link,
    filters_by_status_and_route,
    malformed_queries_and_missing_tenants_are_refused,
    purge_removes_a_finished_job_for_good,
    purge_waits_for_the_admission_notice,
);
