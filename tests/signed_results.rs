//! Signed result URLs (issue 8), black-box over real sockets: a finished job's status
//! document carries a `download_url` that replays the result without the tenant header;
//! altered links are `403 signature-invalid`, expired ones `403 signature-expired`, links to
//! jobs past retention `410`; routes without `signed_results`, unfinished, canceled and
//! answer-less jobs get no link; the callback payload carries it; replicas sharing Redis
//! honour each other's links; the config refuses the setting without a secret.
//!
//! Signatures are recomputed here with `hmac` directly from the documented scheme (the URL
//! key is `HMAC-SHA256(secret, "prefer-gateway/result-urls/v1")`, the signature
//! base64url-no-pad of `HMAC-SHA256(key, "{id}.{expires}")`), so the tests pin the scheme
//! and can make validly signed links the gateway never handed out (an expired one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "signed_results/config.rs"]
mod config;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::{client, header_map, reply, sync_upstream, Gateway, Seen, Upstream};

const SECRET: &str = "signed-results-test-secret";
const TENANT: (&str, &str) = ("x-api-key", "alice");
const PROBLEMS: &str = "https://prefer-gateway.dev/problems/";

/// `[jobs]` with a tenant header and the secret, then three sync routes: `render`
/// (signed), `plain` (not signed) and `dead` (signed, upstream refuses connections).
fn config(store: &str, jobs_extra: &str, extra: &str) -> String {
    format!(
        r#"
[jobs]
store = "{store}"
tenant_header = "X-Api-Key"
signing_secret = "{SECRET}"
{jobs_extra}

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"
signed_results = true
{extra}

[[routes]]
name = "plain"
kind = "sync"
methods = ["POST"]
path = "/v1/plain"
upstream = "{{up}}"

[[routes]]
name = "dead"
kind = "sync"
methods = ["POST"]
path = "/v1/dead"
upstream = "http://127.0.0.1:1"
signed_results = true
"#
    )
}

/// The signature of `{id}.{expires}`, computed independently of the gateway.
fn sign(id: &str, expires: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"prefer-gateway/result-urls/v1");
    let key = mac.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{expires}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn link(id: &str, expires: u64, sig: &str) -> String {
    format!("/jobs/{id}/result?expires={expires}&sig={sig}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `respond-async` on `path` as `tenant`; the job id.
async fn submit(gw: &Gateway, path: &str, body: &str, tenant: &str) -> String {
    let resp = client()
        .post(gw.url(path))
        .header("prefer", "respond-async")
        .header("x-api-key", tenant)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    doc["job_id"].as_str().unwrap().to_owned()
}

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn status(gw: &Gateway, id: &str, tenant: &str) -> Value {
    let resp = get(gw, &format!("/jobs/{id}"), &[("x-api-key", tenant)]).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Polls the status document until the job is terminal.
async fn finished(gw: &Gateway, id: &str, tenant: &str) -> Value {
    let t = Instant::now();
    loop {
        let doc = status(gw, id, tenant).await;
        if ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap()) {
            return doc;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never finished: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `download_url` of a status document, checked against the documented form: the
/// job's own id, `expires` = `expires_at` rounded up to seconds, the independent signature.
fn download_url(doc: &Value) -> String {
    let url = doc["download_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no download_url in {doc}"));
    let id = doc["job_id"].as_str().unwrap();
    let at = humantime::parse_rfc3339(doc["expires_at"].as_str().unwrap()).unwrap();
    let expires = at
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .div_ceil(1000) as u64;
    // Absolute (issue 14); the path and query are the documented form. The path is
    // returned, so a link can be tried on another replica as well.
    assert!(url.starts_with("http://"), "{url}");
    let path = &url[url.find("/jobs/").unwrap_or(0)..];
    assert_eq!(path, link(id, expires, &sign(id, expires)));
    path.to_owned()
}

/// Status, body, and every header except the two that differ per answer.
async fn answer(resp: reqwest::Response) -> (u16, HashMap<String, String>, bytes::Bytes) {
    let status = resp.status().as_u16();
    let mut headers = header_map(resp.headers());
    headers.remove("date");
    headers.remove("x-request-id");
    (status, headers, resp.bytes().await.unwrap())
}

/// A `403`/`410` problem document with this type slug.
async fn problem(resp: reqwest::Response, status: u16, slug: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["type"], format!("{PROBLEMS}{slug}"), "{doc}");
}

async fn the_download_url_replays_the_result_without_the_tenant_header(store: &str) {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config(store, "", ""), &up.url()).await;
    for body in [r#"{"n":1}"#, r#"{"n":"fail"}"#] {
        let id = submit(&gw, "/v1/render", body, "alice").await;
        let doc = finished(&gw, &id, "alice").await;
        let url = download_url(&doc);
        // Without the header the ordinary endpoints are closed to this client...
        let result = format!("/jobs/{id}/result");
        assert_eq!(get(&gw, &result, &[]).await.status(), 401);
        // ...and the link opens the same answer the tenant gets.
        let signed = answer(get(&gw, &url, &[]).await).await;
        let tenant = answer(get(&gw, &result, &[TENANT]).await).await;
        assert_eq!(signed, tenant);
        assert_eq!(signed.1["x-upstream"], "yes");
        let expect = if body.contains("fail") { 500 } else { 200 };
        assert_eq!(signed.0, expect, "failed jobs replay their answer too");
        assert_eq!(
            doc["status"],
            if expect == 200 { "succeeded" } else { "failed" }
        );
    }
}

#[tokio::test]
async fn the_download_url_replays_the_result_without_the_tenant_header_memory() {
    the_download_url_replays_the_result_without_the_tenant_header("memory").await;
}

#[tokio::test]
async fn the_download_url_replays_the_result_without_the_tenant_header_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("jobs.db").display());
    the_download_url_replays_the_result_without_the_tenant_header(&store).await;
}

#[tokio::test]
async fn altered_links_are_403_signature_invalid() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config("memory", "", ""), &up.url()).await;
    let mine = submit(&gw, "/v1/render", "{}", "alice").await;
    let theirs = submit(&gw, "/v1/render", r#"{"secret":1}"#, "bob").await;
    let url = download_url(&finished(&gw, &mine, "alice").await);
    finished(&gw, &theirs, "bob").await;
    let (_, query) = url.split_once('?').unwrap();
    let expires: u64 = query
        .strip_prefix("expires=")
        .and_then(|q| q.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    let sig = query.split("sig=").nth(1).unwrap();
    let mut flipped: Vec<char> = sig.chars().collect();
    flipped[5] = if flipped[5] == 'x' { 'y' } else { 'x' };
    let flipped: String = flipped.into_iter().collect();
    let altered = [
        link(&mine, expires, &flipped),
        link(&mine, expires + 3600, sig),
        link(&mine, expires - 1, sig),
        // Bob's job with Alice's signature: never Bob's result.
        link(&theirs, expires, sig),
        format!("/jobs/{mine}/result?sig={sig}"),
        format!("/jobs/{mine}/result?expires={expires}&sig="),
        format!("/jobs/{mine}/result?expires={expires}&sig={sig}&sig={sig}"),
    ];
    for bad in &altered {
        problem(get(&gw, bad, &[]).await, 403, "signature-invalid").await;
        // A request with `sig` is never authenticated by the tenant header instead.
        let owner = if bad.contains(&theirs) {
            "bob"
        } else {
            "alice"
        };
        let with_tenant = get(&gw, bad, &[("x-api-key", owner)]).await;
        problem(with_tenant, 403, "signature-invalid").await;
    }
    assert_eq!(
        get(&gw, &url, &[]).await.status(),
        200,
        "the original still works"
    );
}

#[tokio::test]
async fn an_expired_link_is_403_signature_expired() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config("memory", "", ""), &up.url()).await;
    let id = submit(&gw, "/v1/render", "{}", "alice").await;
    download_url(&finished(&gw, &id, "alice").await);
    // Validly signed, but for an expiry already past (the job itself lives 24 h).
    let past = now_secs() - 60;
    let expired = get(&gw, &link(&id, past, &sign(&id, past)), &[]).await;
    problem(expired, 403, "signature-expired").await;
    // The same construction with an expiry ahead is honoured: it is the time that failed.
    let ahead = now_secs() + 600;
    let fine = get(&gw, &link(&id, ahead, &sign(&id, ahead)), &[]).await;
    assert_eq!(fine.status(), 200);
}

#[tokio::test]
async fn after_retention_a_genuine_link_is_410() {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&config("memory", "retention = \"1s\"", ""), &up.url()).await;
    let id = submit(&gw, "/v1/render", "{}", "alice").await;
    let url = download_url(&finished(&gw, &id, "alice").await);
    assert_eq!(get(&gw, &url, &[]).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    problem(get(&gw, &url, &[]).await, 410, "job-expired").await;
    // The same problem as the tenant gets.
    let tenant = get(&gw, &format!("/jobs/{id}/result"), &[TENANT]).await;
    problem(tenant, 410, "job-expired").await;
    // Retention is checked before the link's own expiry, the signature before both.
    let past = now_secs() - 60;
    problem(
        get(&gw, &link(&id, past, &sign(&id, past)), &[]).await,
        410,
        "job-expired",
    )
    .await;
    let forged = link(&id, past, &sign("another-id", past));
    problem(get(&gw, &forged, &[]).await, 403, "signature-invalid").await;
}

#[tokio::test]
async fn only_finished_jobs_of_signed_routes_with_an_answer_get_a_link() {
    // `slow` bodies take long enough to be seen unfinished, and to be canceled.
    let up = Upstream::start(|s: Seen| async move {
        if s.body.windows(4).any(|w| w == b"slow") {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        reply(200, "{}", &[])
    })
    .await;
    let gw = Gateway::start(&config("memory", "", ""), &up.url()).await;
    // A route without signed_results: a result_url, no download_url, and a link to it
    // signed with the right key is still refused.
    let plain = submit(&gw, "/v1/plain", "{}", "alice").await;
    let doc = finished(&gw, &plain, "alice").await;
    assert_eq!(doc["status"], "succeeded");
    assert!(doc["result_url"].is_string());
    assert!(doc.get("download_url").is_none(), "{doc}");
    let far = now_secs() + 600;
    let crafted = get(&gw, &link(&plain, far, &sign(&plain, far)), &[]).await;
    problem(crafted, 403, "signature-invalid").await;
    // Unfinished, then canceled: never a link.
    let slow = submit(&gw, "/v1/render", r#"{"slow":1}"#, "alice").await;
    let doc = status(&gw, &slow, "alice").await;
    assert!(["pending", "running"].contains(&doc["status"].as_str().unwrap()));
    assert!(doc.get("download_url").is_none(), "{doc}");
    let canceled = client()
        .delete(gw.url(&format!("/jobs/{slow}")))
        .header(TENANT.0, TENANT.1)
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);
    let doc: Value = canceled.json().await.unwrap();
    assert_eq!(doc["status"], "canceled");
    assert!(doc.get("download_url").is_none(), "{doc}");
    assert!(status(&gw, &slow, "alice")
        .await
        .get("download_url")
        .is_none());
    // Failed without an upstream answer: nothing to download.
    let dead = submit(&gw, "/v1/dead", "{}", "alice").await;
    let doc = finished(&gw, &dead, "alice").await;
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["error"]["code"], "upstream_unreachable");
    assert!(doc.get("download_url").is_none(), "{doc}");
    // And the signed route's finished job does get one (the contrast).
    let done = submit(&gw, "/v1/render", "{}", "alice").await;
    download_url(&finished(&gw, &done, "alice").await);
}

#[tokio::test]
async fn the_callback_payload_carries_the_download_url() {
    let up = sync_upstream(Duration::ZERO).await;
    let hook = Upstream::start(|_s: Seen| async { reply(204, "", &[]) }).await;
    let webhooks = r#"
[webhooks]
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
retry_schedule = ["0s"]
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]
"#;
    // The [webhooks] table goes after [jobs]' keys, before the routes.
    let cfg = config(
        "memory",
        webhooks,
        "callback = { json = \"/callback_url\" }",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let body = serde_json::json!({"callback_url": format!("{}/h", hook.url())}).to_string();
    let id = submit(&gw, "/v1/render", &body, "alice").await;
    let doc = finished(&gw, &id, "alice").await;
    let url = download_url(&doc);
    let t = Instant::now();
    while hook.seen().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(10), "no callback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payload: Value = serde_json::from_slice(&hook.seen()[0].body).unwrap();
    // The payload's link is absolute too, on the gateway's own listener.
    assert_eq!(payload["download_url"], gw.url(&url).as_str());
    assert_eq!(get(&gw, &url, &[]).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_from_one_replica_work_on_another_sharing_redis() {
    let redis = support::redis::RedisServer::start();
    let up = sync_upstream(Duration::ZERO).await;
    let cfg = config(redis.url().as_str(), "", "");
    let a = Gateway::start(&cfg, &up.url()).await;
    let b = Gateway::start(&cfg, &up.url()).await;
    let id = submit(&a, "/v1/render", r#"{"on":"a"}"#, "alice").await;
    let url = download_url(&finished(&a, &id, "alice").await);
    let on_b = answer(get(&b, &url, &[]).await).await;
    let on_a = answer(get(&a, &format!("/jobs/{id}/result"), &[TENANT]).await).await;
    assert_eq!(on_b.0, 200);
    assert_eq!(on_b, on_a);
    let far = now_secs() - 5;
    problem(
        get(&b, &link(&id, far, &sign(&id, far)), &[]).await,
        403,
        "signature-expired",
    )
    .await;
}
