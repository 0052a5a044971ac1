//! Boolean opt-in fields and async rules (issue 8), black-box over real sockets: the seed's
//! `"async": true` (`mode = { json = "/async", kind = "bool" }`, and `kind = "bool"` in
//! the query) on `sync` and `task` routes, and `async_requires` — "async with
//! `response_mode: "bytes"` → 422" — checked before any job or upstream call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{
    client, header_map, sync_config, sync_upstream, task_config, task_upstream, Gateway, Upstream,
};

const FLAG: &str =
    r#"mode = { json = "/async", kind = "bool", deprecation = "2026-06-01T00:00:00Z" }"#;
const RULE: &str = r#"async_requires = { "/response_mode" = "urls" }"#;

/// A `sync` route `/v1/render` on the memory store with `route_extra`.
async fn sync_route(route_extra: &str) -> (Gateway, Upstream) {
    let up = sync_upstream(Duration::ZERO).await;
    let gw = Gateway::start(&sync_config("memory", "", route_extra), &up.url()).await;
    (gw, up)
}

/// POSTs a JSON `body` to `path` with optional `Prefer` and extra headers.
async fn post(
    gw: &Gateway,
    path: &str,
    prefer: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Asserts a problem document with `status` and type slug `slug`; returns it.
async fn problem(resp: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(
        doc["type"],
        format!("https://prefer-gateway.dev/problems/{slug}")
    );
    doc
}

/// Polls a job's status URL until it is terminal.
async fn until_terminal(gw: &Gateway, status_url: &str) -> Value {
    let t = Instant::now();
    loop {
        let doc: Value = client()
            .get(gw.url(status_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ["succeeded", "failed", "canceled"].contains(&doc["status"].as_str().unwrap_or("")) {
            return doc;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "never finished: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// === the boolean field ===

#[tokio::test]
async fn true_on_a_sync_route_answers_a_job_handle_and_strips_the_field() {
    let (gw, up) = sync_route(FLAG).await;
    let body = r#"{"prompt":"cat","async":true,"opts":{"async":"keep"},"n":2}"#;
    let resp = post(&gw, "/v1/render", None, body, &[]).await;
    assert_eq!(resp.status(), 202);
    let h = header_map(resp.headers());
    assert!(!h.contains_key("preference-applied"), "no Prefer was sent");
    assert_eq!(h["deprecation"], "@1780272000");
    assert_eq!(h["vary"], "Prefer");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["status"], "pending");
    let done = until_terminal(&gw, doc["status_url"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    // Only the flag itself is gone; other fields (a nested `async` too) keep their order.
    assert_eq!(
        seen[0].body,
        r#"{"prompt":"cat","opts":{"async":"keep"},"n":2}"#
    );
}

#[tokio::test]
async fn false_and_absent_are_synchronous_answers() {
    let (gw, up) = sync_route(FLAG).await;
    let resp = post(&gw, "/v1/render", None, r#"{"async":false,"n":1}"#, &[]).await;
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    assert_eq!(h["x-upstream"], "yes", "the upstream's own answer");
    assert_eq!(h["deprecation"], "@1780272000", "the field was used");
    assert!(!h.contains_key("preference-applied") && !h.contains_key("location"));
    assert_eq!(resp.text().await.unwrap(), r#"{"rendered":{"n":1}}"#);

    let resp = post(&gw, "/v1/render", None, r#"{"n":2}"#, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("deprecation").is_none(), "not used");
    let bodies: Vec<_> = up.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, [r#"{"n":1}"#, r#"{"n":2}"#]);
}

#[tokio::test]
async fn on_a_task_route_true_passes_the_202_through_and_false_waits() {
    let up = task_upstream(Duration::from_secs(1)).await;
    let gw = Gateway::start(&task_config("sync_wait = \"10s\"", FLAG), &up.url()).await;

    let t = Instant::now();
    let resp = post(&gw, "/v1/edit", None, r#"{"async":true,"x":1}"#, &[]).await;
    assert!(t.elapsed() < Duration::from_millis(800), "answered at once");
    assert_eq!(resp.status(), 202);
    let h = header_map(resp.headers());
    assert!(!h.contains_key("preference-applied"));
    assert_eq!(h["deprecation"], "@1780272000");
    assert_eq!(h["location"], "/v1/tasks/t-1");
    let want = r#"{"taskId":"t-1","status":"pending"}"#;
    assert_eq!(
        resp.text().await.unwrap(),
        want,
        "the upstream's 202, unchanged"
    );

    let resp = post(&gw, "/v1/edit", None, r#"{"async":false,"x":2}"#, &[]).await;
    assert_eq!(resp.status(), 200, "DEFAULT waits for the final result");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["status"], "succeeded");

    let submits: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(submits[0].body, r#"{"x":1}"#);
    assert_eq!(submits[1].body, r#"{"x":2}"#);
}

#[tokio::test]
async fn prefer_wins_over_the_field() {
    let (gw, up) = sync_route(FLAG).await;
    let resp = post(&gw, "/v1/render", Some("wait=5"), r#"{"async":false}"#, &[]).await;
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    assert_eq!(
        h["preference-applied"], "respond-async, wait=5",
        "a WAIT, not DEFAULT"
    );
    assert_eq!(h["deprecation"], "@1780272000");

    let resp = post(
        &gw,
        "/v1/render",
        Some("respond-async"),
        r#"{"async":false}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["preference-applied"], "respond-async");
    let doc: Value = resp.json().await.unwrap();
    until_terminal(&gw, doc["status_url"].as_str().unwrap()).await;

    // Prefer decides, so a value the flag could not mean is not interpreted (as `mode`).
    let resp = post(
        &gw,
        "/v1/render",
        Some("respond-async"),
        r#"{"async":"yes"}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    until_terminal(&gw, doc["status_url"].as_str().unwrap()).await;
    assert!(
        up.seen().iter().all(|s| s.body == "{}"),
        "stripped every time"
    );
}

#[tokio::test]
async fn a_non_boolean_value_is_a_400_problem() {
    let (gw, up) = sync_route(FLAG).await;
    for (value, shown) in [
        (r#""yes""#, r#""yes""#),
        ("1", "1"),
        ("null", "null"),
        (r#""true""#, r#""true""#),
    ] {
        let body = format!(r#"{{"async":{value},"n":1}}"#);
        let resp = post(&gw, "/v1/render", None, &body, &[]).await;
        assert_eq!(resp.headers()["deprecation"], "@1780272000");
        assert_eq!(resp.headers()["vary"], "Prefer");
        let doc = problem(resp, 400, "invalid-mode").await;
        let detail = doc["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!(
                "field \"/async\" must be a boolean (true or false), got {shown}"
            )),
            "{detail}"
        );
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn a_query_parameter_of_kind_bool() {
    let (gw, up) = sync_route(r#"mode = { query = "async", kind = "bool" }"#).await;
    let resp = post(&gw, "/v1/render?a=1&async=true", None, "{}", &[]).await;
    assert_eq!(resp.status(), 202);
    assert!(resp.headers().get("deprecation").is_some());
    let doc: Value = resp.json().await.unwrap();
    until_terminal(&gw, doc["status_url"].as_str().unwrap()).await;

    let resp = post(&gw, "/v1/render?async=false&b=2", None, "{}", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    let uris: Vec<_> = up.seen().into_iter().map(|s| s.uri).collect();
    assert_eq!(uris, ["/v1/render?a=1", "/v1/render?b=2"]);

    for bad in ["TRUE", "1", "yes", ""] {
        let resp = post(&gw, &format!("/v1/render?async={bad}"), None, "{}", &[]).await;
        let doc = problem(resp, 400, "invalid-mode").await;
        let detail = doc["detail"].as_str().unwrap();
        let want =
            format!("query parameter \"async\" must be a boolean (true or false), got {bad:?}");
        assert!(detail.starts_with(&want), "{detail}");
    }
    assert_eq!(up.seen().len(), 2);
}

// === async_requires ===

#[tokio::test]
async fn async_with_bytes_is_a_422_before_any_job_or_upstream_call() {
    let (gw, up) = sync_route(&format!("{FLAG}\n{RULE}")).await;
    let key = [("idempotency-key", "\"k1\"")];
    let bytes = r#"{"async":true,"response_mode":"bytes"}"#;
    let resp = post(&gw, "/v1/render", None, bytes, &key).await;
    assert_eq!(resp.headers()["deprecation"], "@1780272000");
    assert_eq!(resp.headers()["vary"], "Prefer");
    let doc = problem(resp, 422, "async-requirement").await;
    assert_eq!(
        doc["detail"],
        r#""/response_mode" must be "urls" when the request is asynchronous"#
    );
    assert_eq!(
        (&doc["field"], &doc["expected"]),
        (&json!("/response_mode"), &json!("urls"))
    );

    // Missing, not an object, or Prefer-made ASYNC: the same 422.
    for (prefer, body) in [
        (None, r#"{"async":true}"#),
        (Some("respond-async"), r#"{"response_mode":"bytes"}"#),
        (Some("respond-async"), r#"["urls"]"#),
        (Some("respond-async"), "not json"),
    ] {
        let resp = post(&gw, "/v1/render", prefer, body, &[]).await;
        problem(resp, 422, "async-requirement").await;
    }
    let resp = client()
        .post(gw.url("/v1/render"))
        .header("prefer", "respond-async")
        .header("content-type", "text/plain")
        .body(r#"{"response_mode":"urls"}"#)
        .send()
        .await
        .unwrap();
    problem(resp, 422, "async-requirement").await;

    // No job was stored: the same key with a different (valid) request is a new job,
    // not `idempotency-key-reused`.
    let urls = r#"{"async":true,"response_mode":"urls"}"#;
    let resp = post(&gw, "/v1/render", None, urls, &key).await;
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.unwrap();
    until_terminal(&gw, doc["status_url"].as_str().unwrap()).await;
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "the upstream only saw the valid request");
    assert_eq!(seen[0].body, r#"{"response_mode":"urls"}"#);
}

#[tokio::test]
async fn only_asynchronous_requests_are_checked() {
    let (gw, up) = sync_route(RULE).await;
    let bytes = r#"{"response_mode":"bytes"}"#;
    let resp = post(&gw, "/v1/render", None, bytes, &[]).await;
    assert_eq!(resp.status(), 200, "DEFAULT is not checked");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"rendered":{"response_mode":"bytes"}}"#
    );

    let resp = post(&gw, "/v1/render", Some("wait=5"), bytes, &[]).await;
    let doc = problem(resp, 422, "async-requirement").await;
    assert_eq!(doc["field"], "/response_mode");

    let urls = r#"{"response_mode":"urls"}"#;
    let resp = post(&gw, "/v1/render", Some("wait=5"), urls, &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=5"
    );
    let bodies: Vec<_> = up.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, [bytes, urls]);
}

#[tokio::test]
async fn a_task_route_checks_before_submitting() {
    let up = task_upstream(Duration::from_secs(5)).await;
    let gw = Gateway::start(&task_config("", RULE), &up.url()).await;
    let bytes = r#"{"response_mode":"bytes"}"#;
    let resp = post(&gw, "/v1/edit", Some("respond-async"), bytes, &[]).await;
    problem(resp, 422, "async-requirement").await;
    assert!(up.seen().is_empty(), "nothing was submitted");

    let urls = r#"{"response_mode":"urls"}"#;
    let resp = post(&gw, "/v1/edit", Some("respond-async"), urls, &[]).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(up.seen().len(), 1);
    assert_eq!(up.seen()[0].body, urls);
}
