//! `task` routes over real sockets: every row of the behaviour §3 table and every point of
//! §4 (submit, ASYNC pass-through, WAIT and DEFAULT polling, deadlines, failures,
//! disconnects, shared polling, many waiters).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{client, header_map, reply, task_config, task_upstream, Gateway, Seen, Upstream};

const JSON: &str = "application/json";

async fn submit(gw: &Gateway, path: &str, prefer: Option<&str>) -> (reqwest::Response, Duration) {
    let mut req = client()
        .post(gw.url(path))
        .header("content-type", JSON)
        .body(r#"{"x":1}"#);
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    let t = Instant::now();
    let resp = req.send().await.unwrap();
    (resp, t.elapsed())
}

async fn gateway(finish: Duration, defaults: &str, route_extra: &str) -> (Gateway, Upstream) {
    let up = task_upstream(finish).await;
    let gw = Gateway::start(&task_config(defaults, route_extra), &up.url()).await;
    (gw, up)
}

#[tokio::test]
async fn no_prefer_waits_and_answers_200_with_the_final_status_without_preference_applied() {
    let (gw, up) = gateway(Duration::from_millis(300), "", "").await;
    let (resp, _) = submit(&gw, "/v1/edit", None).await;
    assert_eq!(resp.status(), 200);
    let h = header_map(resp.headers());
    assert!(!h.contains_key("preference-applied"));
    assert_eq!(h["vary"], "Prefer");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["result"]["url"], "u/t-1");
    assert!(up.count("/v1/tasks/t-1") >= 1);
}

#[tokio::test]
async fn respond_async_passes_the_upstream_202_through_unchanged() {
    let (gw, up) = gateway(Duration::from_secs(5), "", "").await;
    let (resp, took) = submit(&gw, "/v1/edit", Some("respond-async")).await;
    assert_eq!(resp.status(), 202);
    assert!(took < Duration::from_secs(2));
    let h = header_map(resp.headers());
    assert_eq!(h["preference-applied"], "respond-async");
    assert_eq!(h["location"], "/v1/tasks/t-1");
    assert_eq!(h["vary"], "Prefer");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"taskId":"t-1","status":"pending"}"#
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.count("/v1/tasks"), 0, "ASYNC never polls");
}

#[tokio::test]
async fn wait_n_answers_200_when_the_task_finishes_in_time() {
    for prefer in ["wait=3", "respond-async, wait=3"] {
        let (gw, _up) = gateway(Duration::from_millis(400), "", "").await;
        let (resp, took) = submit(&gw, "/v1/edit", Some(prefer)).await;
        assert_eq!(resp.status(), 200, "{prefer}");
        assert!(
            took < Duration::from_secs(2),
            "{prefer}: woke at the next tick, not the deadline"
        );
        let h = header_map(resp.headers());
        assert_eq!(h["preference-applied"], "respond-async, wait=3", "{prefer}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "succeeded");
    }
}

#[tokio::test]
async fn wait_n_answers_the_original_202_at_the_deadline_never_a_timeout() {
    let (gw, _up) = gateway(Duration::from_secs(30), "", "").await;
    let (resp, took) = submit(&gw, "/v1/edit", Some("wait=1")).await;
    assert_eq!(resp.status(), 202);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    let h = header_map(resp.headers());
    assert_eq!(h["preference-applied"], "respond-async, wait=1");
    assert_eq!(h["location"], "/v1/tasks/t-1");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"taskId":"t-1","status":"pending"}"#
    );
}

#[tokio::test]
async fn the_last_poll_is_at_the_deadline_so_the_whole_window_counts() {
    // Polls every 800ms: ticks at ~0.8s, then the deadline poll at 1.0s catches a task that
    // finished at 0.9s.
    let (gw, up) = gateway(Duration::from_millis(900), "poll_interval = \"800ms\"", "").await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=1")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count("/v1/tasks"), 2);
}

#[tokio::test]
async fn wait_above_the_cap_is_capped_and_reported() {
    let (gw, _up) = gateway(Duration::from_secs(30), "max_wait = \"1s\"", "").await;
    let (resp, took) = submit(&gw, "/v1/edit", Some("wait=100000000000000000000000")).await;
    assert_eq!(resp.status(), 202);
    assert!(took < Duration::from_secs(3));
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=1"
    );
}

#[tokio::test]
async fn wait_zero_alone_is_the_sync_default() {
    let (gw, _up) = gateway(Duration::from_millis(200), "", "").await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=0")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("preference-applied").is_none());
}

#[tokio::test]
async fn respond_async_with_wait_zero_is_async() {
    let (gw, _up) = gateway(Duration::from_secs(5), "", "").await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("respond-async, wait=0")).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["preference-applied"], "respond-async");
}

#[tokio::test]
async fn default_falls_back_to_the_202_after_sync_wait_without_preference_applied() {
    let (gw, _up) = gateway(Duration::from_secs(30), "sync_wait = \"1s\"", "").await;
    let (resp, took) = submit(&gw, "/v1/edit", None).await;
    assert_eq!(resp.status(), 202);
    assert!(took < Duration::from_secs(2));
    assert!(resp.headers().get("preference-applied").is_none());
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"taskId":"t-1","status":"pending"}"#
    );
}

#[tokio::test]
async fn execution_preferences_and_mode_are_removed_before_forwarding() {
    let mode = r#"mode = { query = "mode" }"#;
    let (gw, up) = gateway(Duration::from_secs(5), "", mode).await;
    let resp = client()
        .post(gw.url("/v1/edit?a=1&mode=async&b=2"))
        .header("prefer", "return=minimal; x=\"a,b\", respond-async")
        .header("prefer", "wait=1, foo")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=1"
    );
    let seen: Seen = up.seen().remove(0);
    assert_eq!(seen.uri, "/v1/edit?a=1&b=2");
    let prefer: Vec<_> = seen
        .headers
        .get_all("prefer")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        prefer,
        vec!["return=minimal; x=\"a,b\"".to_string(), "foo".to_string()]
    );
}

#[tokio::test]
async fn deprecated_mode_in_the_query_maps_to_the_table_with_deprecation_headers() {
    let mode = r#"mode = { query = "mode", deprecation = "2026-06-01T00:00:00Z", sunset = "2027-01-01T00:00:00Z", link = "https://example.com/docs/prefer" }"#;
    let (gw, up) = gateway(Duration::from_millis(300), "", mode).await;
    // async → 202 at once, no Preference-Applied (no Prefer was sent).
    let (resp, took) = submit(&gw, "/v1/edit?mode=async", None).await;
    assert_eq!(resp.status(), 202);
    assert!(took < Duration::from_millis(250));
    let h = header_map(resp.headers());
    assert!(!h.contains_key("preference-applied"));
    assert_eq!(h["deprecation"], "@1780272000");
    assert_eq!(h["sunset"], "Fri, 01 Jan 2027 00:00:00 GMT");
    assert!(
        h["link"].contains("<https://example.com/docs/prefer>"),
        "{}",
        h["link"]
    );
    assert!(h["link"].contains("rel=\"deprecation\""));
    // sync → waits (WAIT(60)) → 200.
    let (resp, _) = submit(&gw, "/v1/edit?mode=sync", None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("preference-applied").is_none());
    assert!(resp.headers().get("deprecation").is_some());
    // auto → default → 200.
    let (resp, _) = submit(&gw, "/v1/edit?mode=auto", None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("deprecation").is_some());
    assert!(up.seen().iter().all(|s| !s.uri.contains("mode=")));
}

#[tokio::test]
async fn mode_sync_waits_like_wait_60_and_falls_back_to_202() {
    let mode = r#"mode = { query = "mode" }"#;
    let (gw, _up) = gateway(Duration::from_secs(30), "max_wait = \"1s\"", mode).await;
    let (resp, took) = submit(&gw, "/v1/edit?mode=sync", None).await;
    assert_eq!(resp.status(), 202, "WAIT(min(60, cap)) ran out");
    assert!(took >= Duration::from_millis(900));
    assert!(resp.headers().get("preference-applied").is_none());
    assert_eq!(resp.headers()["deprecation"], "@0");
}

#[tokio::test]
async fn an_unknown_mode_value_is_a_400_problem() {
    let mode = r#"mode = { query = "mode" }"#;
    let (gw, up) = gateway(Duration::from_secs(1), "", mode).await;
    let (resp, _) = submit(&gw, "/v1/edit?mode=fast", None).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resp.headers()["vary"], "Prefer");
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert!(doc["type"].as_str().unwrap().ends_with("/invalid-mode"));
    assert_eq!(doc["status"], 400);
    assert_eq!(up.seen().len(), 0);
}

#[tokio::test]
async fn prefer_wins_over_mode() {
    let mode = r#"mode = { query = "mode" }"#;
    let (gw, _up) = gateway(Duration::from_secs(30), "", mode).await;
    let (resp, took) = submit(&gw, "/v1/edit?mode=sync", Some("respond-async")).await;
    assert_eq!(resp.status(), 202);
    assert!(took < Duration::from_millis(500));
    assert_eq!(resp.headers()["preference-applied"], "respond-async");
    assert!(resp.headers().get("deprecation").is_some(), "mode was used");
}

#[tokio::test]
async fn deprecated_mode_in_a_json_body_field_is_read_and_removed() {
    let mode = r#"mode = { json = "/options/mode" }"#;
    let (gw, up) = gateway(Duration::from_secs(30), "", mode).await;
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("content-type", JSON)
        .body(r#"{"b":1,"options":{"mode":"async","q":2},"a":3}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(resp.headers().get("deprecation").is_some());
    assert_eq!(up.seen()[0].body, r#"{"b":1,"options":{"q":2},"a":3}"#);
    assert_eq!(up.seen()[0].headers["content-length"], "31");
    // A non-string mode is malformed → 400.
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("content-type", JSON)
        .body(r#"{"options":{"mode":true}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_json_mode_body_over_max_body_is_a_413_problem() {
    let mode = r#"mode = { json = "/mode" }"#;
    let (gw, up) = gateway(Duration::from_secs(1), "max_body = \"1KiB\"", mode).await;
    let big = format!(r#"{{"mode":"async","pad":"{}"}}"#, "x".repeat(4096));
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("content-type", JSON)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(up.seen().len(), 0);
}

#[tokio::test]
async fn a_non_202_submit_answer_is_returned_as_it_is_plus_vary() {
    let up = Upstream::start(|_s| async {
        reply(
            400,
            r#"{"error":"bad input"}"#,
            &[("vary", "Accept-Encoding"), ("x-up", "1")],
        )
    })
    .await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=5")).await;
    assert_eq!(resp.status(), 400);
    let h = header_map(resp.headers());
    assert_eq!(h["x-up"], "1");
    assert_eq!(h["vary"], "Accept-Encoding, Prefer");
    assert!(!h.contains_key("preference-applied"));
    assert_eq!(resp.text().await.unwrap(), r#"{"error":"bad input"}"#);
}

#[tokio::test]
async fn respond_async_with_a_non_202_answer_passes_it_through_without_preference_applied() {
    let up =
        Upstream::start(|_s| async { reply(503, r#"{"error":"busy"}"#, &[("retry-after", "7")]) })
            .await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("respond-async")).await;
    assert_eq!(resp.status(), 503);
    let h = header_map(resp.headers());
    assert_eq!(h["retry-after"], "7");
    assert_eq!(h["vary"], "Prefer");
    assert!(!h.contains_key("preference-applied"));
    assert_eq!(resp.text().await.unwrap(), r#"{"error":"busy"}"#);
}

#[tokio::test]
async fn a_malformed_cancel_after_is_a_400_before_anything_is_submitted_in_every_mode() {
    let (gw, up) = gateway(Duration::from_millis(100), "", "").await;
    for prefer in [Some("respond-async"), Some("wait=5"), None] {
        let mut req = client()
            .post(gw.url("/v1/edit"))
            .header("content-type", JSON)
            .header("cancel-after", "soon")
            .body(r#"{"x":1}"#);
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        let resp = req.send().await.unwrap();
        support::wire::assert_problem(resp, 400, "invalid-cancel-after").await;
    }
    assert!(up.seen().is_empty(), "nothing was submitted");
}

#[tokio::test]
async fn the_operation_id_can_come_from_a_header() {
    let up = task_upstream(Duration::from_millis(200)).await;
    let cfg = task_config("", "").replace(r#"id = "/taskId""#, r#"id = "header:Location""#);
    let gw = Gateway::start(&cfg, &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=5")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count("/v1/tasks/t-1"), up.count("/v1/tasks"));
}

#[tokio::test]
async fn polls_follow_the_interval_starting_one_interval_after_the_202() {
    let (gw, up) = gateway(Duration::from_secs(30), "poll_interval = \"200ms\"", "").await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=1")).await;
    assert_eq!(resp.status(), 202);
    // Ticks at 0.2, 0.4, 0.6, 0.8 and the deadline poll at 1.0 (± scheduling).
    let n = up.count("/v1/tasks");
    assert!((4..=6).contains(&n), "{n} polls in 1s at 200ms");
}

#[tokio::test]
async fn a_failed_poll_is_retried_at_the_next_tick() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let polls = std::sync::Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let up = Upstream::start(move |s: Seen| {
        let p = p.clone();
        async move {
            if s.method == "POST" {
                return reply(202, r#"{"taskId":"a"}"#, &[]);
            }
            match p.fetch_add(1, Ordering::SeqCst) {
                0 => reply(503, "busy", &[]),
                1 => reply(500, "oops", &[]),
                _ => reply(200, r#"{"status":"failed","error":"boom"}"#, &[]),
            }
        }
    })
    .await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=5")).await;
    assert_eq!(resp.status(), 200, "a failed task is still a final result");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"status":"failed","error":"boom"}"#
    );
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

async fn broken_status(status: u16, body: &'static str) -> serde_json::Value {
    let up = Upstream::start(move |s: Seen| async move {
        if s.method == "POST" {
            reply(202, r#"{"taskId":"op-77"}"#, &[])
        } else {
            reply(status, body, &[])
        }
    })
    .await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=5")).await;
    assert_eq!(resp.status(), 502, "status {status} {body}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert_eq!(resp.headers()["vary"], "Prefer");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_vanished_or_unreadable_operation_is_a_502_naming_the_id() {
    for (status, body) in [
        (404, "{}"),
        (410, "{}"),
        (200, "not json"),
        (200, r#"{"state":"x"}"#),
        (200, r#"{"status":5}"#),
    ] {
        let doc = broken_status(status, body).await;
        assert_eq!(doc["operation_id"], "op-77");
        assert!(doc["detail"].as_str().unwrap().contains("op-77"));
        assert!(doc["type"]
            .as_str()
            .unwrap()
            .ends_with("/upstream-contract"));
    }
}

#[tokio::test]
async fn a_202_without_a_readable_id_is_a_502() {
    let up = Upstream::start(|_s| async { reply(202, r#"{"nope":1}"#, &[]) }).await;
    let gw = Gateway::start(&task_config("", ""), &up.url()).await;
    let (resp, _) = submit(&gw, "/v1/edit", Some("wait=5")).await;
    assert_eq!(resp.status(), 502);
    // ASYNC does not need the id: the 202 passes through.
    let (resp, _) = submit(&gw, "/v1/edit", Some("respond-async")).await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn polling_stops_within_one_interval_when_the_client_goes_away() {
    let (gw, up) = gateway(Duration::from_secs(60), "poll_interval = \"100ms\"", "").await;
    let req = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "wait=30")
        .send();
    let _ = tokio::time::timeout(Duration::from_millis(550), req).await;
    // The client future is dropped: its connection closes.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let after_drop = up.count("/v1/tasks");
    assert!(after_drop >= 3, "was polling: {after_drop}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        up.count("/v1/tasks"),
        after_drop,
        "no polls after the client left"
    );
}

#[tokio::test]
async fn many_waiters_on_one_operation_share_one_poll_per_interval() {
    // An upstream that deduplicates: every submit returns the same id.
    let up = Upstream::start(|s: Seen| async move {
        if s.method == "POST" {
            reply(202, r#"{"taskId":"same"}"#, &[])
        } else {
            reply(200, r#"{"status":"running"}"#, &[])
        }
    })
    .await;
    let gw = Gateway::start(&task_config("poll_interval = \"200ms\"", ""), &up.url()).await;
    let mut waiters = Vec::new();
    for i in 0..20u64 {
        let url = gw.url("/v1/edit");
        waiters.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            client()
                .post(url)
                .header("prefer", "wait=1")
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for w in waiters {
        assert_eq!(w.await.unwrap(), 202);
    }
    // Over ~1.2 s at 200 ms: at most ~7 polls in all, not 20 × 5.
    let n = up.count("/v1/tasks");
    assert!(n <= 8, "{n} polls");
}

#[tokio::test]
async fn five_hundred_concurrent_waiters_are_all_answered() {
    let (gw, _up) = gateway(Duration::from_millis(500), "poll_interval = \"200ms\"", "").await;
    let http = client();
    let mut all = Vec::new();
    for _ in 0..500 {
        let req = http
            .post(gw.url("/v1/edit"))
            .header("prefer", "wait=10")
            .send();
        all.push(tokio::spawn(req));
    }
    let mut ok = 0;
    for r in all {
        if r.await.unwrap().unwrap().status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 500);
}

#[tokio::test]
async fn h2c_clients_get_the_same_contract() {
    let (gw, _up) = gateway(Duration::from_millis(200), "", "").await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2
        .post(gw.url("/v1/edit"))
        .header("prefer", "wait=5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["preference-applied"],
        "respond-async, wait=5"
    );
}
