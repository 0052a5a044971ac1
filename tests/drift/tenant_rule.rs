//! One tenant rule: the `[jobs].tenant_header` value with surrounding whitespace (SP, HTAB)
//! removed; empty after that is *no tenant*; two different header values are never one
//! tenant. Jobs trim (`jobs/submit.rs`), the rate limiter and the access log read the raw
//! bytes (`gateway.rs`, `access_log.rs`), so today they disagree. HTTP/1 parsers strip the
//! whitespace around a field value, HTTP/2 does not: the whitespace cases go over h2c.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::any_upstream;
use super::support::process::GatewayProcess;
use super::support::wire::{exchange, RawResponse};
use super::support::{self, client, reply, Gateway, Seen, Upstream};

// === helpers ===

/// A cleartext HTTP/2 client (prior knowledge): unlike HTTP/1, HTTP/2 carries a field
/// value's surrounding whitespace to the gateway unchanged.
fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// How the access log names a tenant: `sha256:` + the first 12 hex digits.
fn tenant_tag(tenant: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(tenant.as_bytes()))[..12]
    )
}

/// Sends `send(i)` for `i = 0, 1, …` until the first `429`; returns how many were let
/// through before it. Panics when no `429` comes within `max` requests.
async fn allowed_before_429<F, Fut>(max: usize, send: F) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for i in 0..max {
        let resp = send(i).await.unwrap();
        match resp.status().as_u16() {
            429 => return i,
            200 => {}
            other => panic!("request {i}: unexpected {other}"),
        }
    }
    panic!("no 429 within {max} requests")
}

/// Config for the rate-limit tests: a burst of `burst`, one token a second, a proxy route.
fn rate_config(burst: u64) -> String {
    format!(
        r#"
[server]
tenant_rate = 1
tenant_burst = {burst}

[jobs]
store = "memory"
tenant_header = "X-Api-Key"

[[routes]]
name = "files"
kind = "proxy"
methods = ["GET"]
path = "/files/{{*rest}}"
upstream = "{{up}}"
"#
    )
}

/// An admission endpoint that admits everything and records each call's JSON body.
async fn recording_admission() -> (Upstream, Arc<Mutex<Vec<Value>>>) {
    let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = Arc::clone(&calls);
    let up = Upstream::start(move |s: Seen| {
        let doc: Value = serde_json::from_slice(&s.body).unwrap_or_default();
        log.lock().unwrap().push(doc);
        async { reply(200, r#"{"reservation":"r-1"}"#, &[]) }
    })
    .await;
    (up, calls)
}

/// The JSON access line of the request with `X-Request-Id: id` (waits up to 5 s).
async fn access_line(gw: &GatewayProcess, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = gw
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|d| d["target"] == "prefer_gateway::access" && d["fields"]["request_id"] == id);
        if let Some(doc) = found {
            return doc["fields"].clone();
        }
        assert!(Instant::now() < deadline, "no access line for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// === tests ===

/// `X-Api-Key: acme`, `: acme ` and `:\tacme` are one tenant for jobs (trimmed), so they
/// must be one rate-limit bucket too — not three, each with its own burst.
#[tokio::test]
async fn whitespace_around_the_tenant_is_one_rate_limit_bucket() {
    let up = any_upstream().await;
    let burst = 5;
    let gw = Gateway::start(&rate_config(burst), &up.url()).await;
    let c = h2c();
    let variants = ["acme", " acme ", "\tacme"];
    let allowed = allowed_before_429(20, |i| {
        c.get(gw.url("/files/a"))
            .header("x-api-key", variants[i % variants.len()])
            .send()
    })
    .await;
    // One shared bucket: `burst` requests (a few more only if the loop took seconds and
    // tokens refilled meanwhile); three buckets let 3 × `burst` through.
    assert!(
        allowed <= burst as usize + 3,
        "{allowed} requests passed before the first 429 with a burst of {burst}: the \
         spellings {variants:?} of one tenant got separate rate-limit buckets"
    );
    gw.shutdown().await;
}

/// An empty (or whitespace-only) tenant header is *no* tenant — jobs answer it `401
/// tenant-required` — so the rate limiter must count it as it counts a request without the
/// header (by client address), not in a bucket of its own shared by every such client.
#[tokio::test]
async fn an_empty_tenant_header_is_no_tenant_for_the_rate_limit() {
    let up = any_upstream().await;
    let burst = 5;
    let gw = Gateway::start(&rate_config(burst), &up.url()).await;
    let (h1, h2) = (client(), h2c());
    let allowed = allowed_before_429(20, |i| match i % 3 {
        0 => h1.get(gw.url("/files/a")).send(),
        1 => h1.get(gw.url("/files/a")).header("x-api-key", "").send(),
        _ => h2.get(gw.url("/files/a")).header("x-api-key", "  ").send(),
    })
    .await;
    assert!(
        allowed <= burst as usize + 3,
        "{allowed} requests passed before the first 429 with a burst of {burst}: no header, \
         an empty one and a whitespace-only one were counted as different tenants"
    );
    gw.shutdown().await;
}

/// A tenant sent with surrounding whitespace is the same tenant for jobs (the job is
/// readable with the plain key), for the admission endpoint (on a job and on a DEFAULT
/// request streamed through) and in the access log (the same `sha256:` tag as the plain
/// key); an empty header is logged as no tenant.
#[tokio::test]
async fn jobs_admission_and_the_access_log_see_the_normalised_tenant() {
    let up = any_upstream().await;
    let (adm, reserves) = recording_admission().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let cfg = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[defaults]
poll_interval = "50ms"

[jobs]
store = "memory"
tenant_header = "X-Api-Key"

[webhooks]
retry_schedule = ["0s", "100ms"]

[[routes]]
name = "drift-render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{up}"
admission = {{ url = "{adm}/admission", timeout = "2s" }}

[[routes]]
name = "drift-files"
kind = "proxy"
methods = ["GET"]
path = "/files/{{*rest}}"
upstream = "{up}"
"#,
        up = up.url(),
        adm = adm.url()
    );
    std::fs::write(&path, cfg).unwrap();
    let gw = GatewayProcess::start_with(&path, &["--log-format", "json"]);
    let (h1, h2) = (client(), h2c());

    let job = h2
        .post(gw.url("/v1/render"))
        .header("x-api-key", " acme ")
        .header("prefer", "respond-async")
        .header("x-request-id", "drift-tenant-job")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(job.status(), 202);
    let id = job.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = h1
        .get(gw.url(&format!("/jobs/{id}")))
        .header("x-api-key", "acme")
        .header("x-request-id", "drift-tenant-plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.status(),
        200,
        "jobs: \" acme \" and \"acme\" are one tenant"
    );
    let default = h2
        .post(gw.url("/v1/render"))
        .header("x-api-key", "\tacme ")
        .header("x-request-id", "drift-tenant-default")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(default.status(), 200, "DEFAULT streams through");
    let empty = h1
        .get(gw.url("/files/a"))
        .header("x-api-key", "")
        .header("x-request-id", "drift-tenant-empty")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);

    let asked: Vec<Value> = reserves
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "reserve")
        .map(|d| d["tenant"].clone())
        .collect();
    assert_eq!(
        asked,
        ["acme", "acme"],
        "admission: the job's and the DEFAULT request's reserve name the trimmed tenant"
    );

    let want = tenant_tag("acme");
    let plain = access_line(&gw, "drift-tenant-plain").await;
    assert_eq!(
        plain["tenant"],
        want.as_str(),
        "the plain key's tag: {plain}"
    );
    for rid in ["drift-tenant-job", "drift-tenant-default"] {
        let line = access_line(&gw, rid).await;
        assert_eq!(
            line["tenant"],
            want.as_str(),
            "access log of {rid}: the tenant sent with surrounding whitespace must be \
             logged as the tenant it is ({want} = \"acme\"), not as another one: {line}"
        );
    }
    let line = access_line(&gw, "drift-tenant-empty").await;
    assert!(
        line["tenant"].is_null(),
        "an empty tenant header is no tenant, not a tenant \"\": {line}"
    );
}

/// Header bytes that are not UTF-8 (obs-text, legal in HTTP/1.1) must not turn two
/// different keys into one tenant: `k\xff` and `k\xfe` are distinct rate-limit keys, so
/// one may not read the other's job. The gateway may refuse such a key outright (`400`
/// or `401`), or keep the two apart (`404` for the other key) — but never answer `200`.
#[tokio::test]
async fn undecodable_tenant_bytes_never_make_two_keys_one_tenant() {
    let up = any_upstream().await;
    let cfg = support::sync_config("memory", "tenant_header = \"X-Api-Key\"", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let submit = b"POST /v1/render HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\xff\r\n\
                   Prefer: respond-async\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let raw = exchange(gw.addr, submit).await;
    let resp = RawResponse::parse(&raw).expect("an answer to the submit");
    if resp.status != 202 {
        assert!(
            matches!(resp.status, 400 | 401),
            "a key that is not text may be refused as a client error, got {resp:?}"
        );
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
        return;
    }
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    let id = doc["job_id"].as_str().unwrap();
    let read = |key: &[u8]| {
        let mut req = format!("GET /jobs/{id} HTTP/1.1\r\nHost: x\r\nX-Api-Key: ").into_bytes();
        req.extend_from_slice(key);
        req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        req
    };
    let owner = RawResponse::parse(&exchange(gw.addr, &read(b"k\xff")).await).unwrap();
    assert_eq!(
        owner.status, 200,
        "the submitter reads its own job: {owner:?}"
    );
    let other = RawResponse::parse(&exchange(gw.addr, &read(b"k\xfe")).await).unwrap();
    assert_eq!(
        other.status,
        404,
        "the job of X-Api-Key k\\xff was answered to X-Api-Key k\\xfe: two keys the rate \
         limiter tells apart are one tenant for jobs: {}",
        String::from_utf8_lossy(&other.body)
    );
    gw.shutdown().await;
}
