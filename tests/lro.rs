//! Issue 14, bullets 1–2, black-box: every URL the gateway hands out is absolute — from
//! `server.public_url`, else the request's host and scheme, forwarded headers believed only
//! from `server.trusted_proxies` — and jobs carry the Microsoft REST API long-running-
//! operation shape (`Operation-Location`, `id`, `resourceLocation`, `Retry-After`, a
//! `202` + `Location` result monitor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{client, sync_config, sync_upstream, Gateway};

async fn submit(gw: &Gateway, headers: &[(&str, &str)]) -> (reqwest::header::HeaderMap, Value) {
    let mut req = client()
        .post(gw.url("/v1/render"))
        .header("prefer", "respond-async")
        .body("{}");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let h = resp.headers().clone();
    (h, resp.json().await.unwrap())
}

#[tokio::test]
async fn public_url_is_the_base_of_every_url_and_headers_cannot_change_it() {
    let up = sync_upstream(Duration::ZERO).await;
    let cfg = sync_config("memory", "", "").replace(
        "[jobs]",
        "[server]\npublic_url = \"https://api.example.com/gw/\"\n\n[jobs]",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let (h, doc) = submit(
        &gw,
        &[("host", "evil.example"), ("x-forwarded-host", "evil2")],
    )
    .await;
    let id = doc["id"].as_str().unwrap();
    let status = format!("https://api.example.com/gw/jobs/{id}");
    assert_eq!(doc["status_url"], status.as_str());
    assert_eq!(h["location"], status.as_str());
    assert_eq!(h["operation-location"], status.as_str());
    assert_eq!(h["retry-after"], "1");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let up = sync_upstream(Duration::ZERO).await;
    let forged = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "host=evil.example;proto=https"),
    ];
    // Untrusted (no trusted_proxies): the request's own Host and the connection's scheme.
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let (h, doc) = submit(&gw, &forged).await;
    let own = gw.url(&format!("/jobs/{}", doc["id"].as_str().unwrap()));
    assert_eq!(doc["status_url"], own.as_str());
    assert_eq!(h["operation-location"], own.as_str());
    // Trusted (loopback is the test's proxy): the first Forwarded element decides.
    let cfg = sync_config("memory", "", "").replace(
        "[jobs]",
        "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n\n[jobs]",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let (h, doc) = submit(&gw, &forged).await;
    let via = format!("https://evil.example/jobs/{}", doc["id"].as_str().unwrap());
    assert_eq!(doc["status_url"], via.as_str());
    assert_eq!(h["location"], via.as_str());
}

#[tokio::test]
async fn the_result_url_is_a_location_monitor_and_the_status_document_has_the_lro_shape() {
    let up = sync_upstream(Duration::from_millis(1500)).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    let (_, doc) = submit(&gw, &[]).await;
    let id = doc["id"].as_str().unwrap().to_owned();
    let result = gw.url(&format!("/jobs/{id}/result"));
    // Running: 202, Location = the result URL itself, Retry-After.
    let early = client().get(&result).send().await.unwrap();
    assert_eq!(early.status(), 202);
    assert_eq!(early.headers()["location"], result.as_str());
    assert_eq!(early.headers()["retry-after"], "1");
    let running: Value = early.json().await.unwrap();
    assert!(running.get("resourceLocation").is_none(), "{running}");
    // Finished: the upstream's answer, and resourceLocation in the status document.
    let t = std::time::Instant::now();
    let done: Value = loop {
        let doc: Value = client()
            .get(gw.url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if doc["status"] == "succeeded" {
            break doc;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["resourceLocation"], result.as_str());
    // A `Prefer: wait` answered in time is final: it names its job without a monitor that
    // a standard LRO client would go on polling.
    let waited = client()
        .post(gw.url("/v1/render"))
        .header("prefer", "wait=5")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(waited.status(), 200);
    let job = waited.headers()["x-job-id"].to_str().unwrap().to_owned();
    let content = gw.url(&format!("/jobs/{job}/result"));
    assert_eq!(waited.headers()["content-location"], content.as_str());
    assert!(waited.headers().get("operation-location").is_none());
    let final_answer = client().get(&result).send().await.unwrap();
    assert_eq!(final_answer.status(), 200);
    assert_eq!(final_answer.text().await.unwrap(), r#"{"rendered":{}}"#);
}
