//! What a callback saves (status polls, against a polling route) and a callback that
//! arrives before its own submit's `202`.

use std::time::Duration;

use serde_json::Value;

use super::support::Gateway;
use super::upstream::{callback_upstream, config, first_answer, Plan, Via};
use super::{status_polls, submit};

/// The cost the closing note quotes: one operation that takes 1 s, waited on with
/// `wait=10`, on a polling route (`poll_interval = 100ms`) and on a callback-driven one.
/// The polling route makes a poll per interval until it sees the end; the callback-driven
/// one makes none.
#[tokio::test]
async fn a_callback_saves_every_poll_a_polling_route_makes() {
    let plan = Plan {
        from: Via::Json,
        call_back_after: Some(Duration::from_secs(1)),
        finish_after: Duration::from_secs(1),
        rewrite_base: None,
        answer_after: Duration::ZERO,
    };
    let (up, _) = callback_upstream(plan).await;
    let driven = Gateway::start(
        &config("memory", r#"{ json = "/webhook_url" }"#, "30s", ""),
        &up.url(),
    )
    .await;
    let polling_cfg =
        config("memory", "", "", "").replace("callback = \nfallback_poll_interval = \"\"\n", "");
    let polling = Gateway::start(&polling_cfg, &up.url()).await;
    assert_eq!(submit(&polling, "wait=10", "{}").await.status(), 200);
    let polled = status_polls(&up);
    assert_eq!(submit(&driven, "wait=10", "{}").await.status(), 200);
    let by_callback = status_polls(&up) - polled;
    eprintln!(
        "status polls for a 1 s operation: polling route {polled}, callback-driven {by_callback}"
    );
    assert!(polled >= 2, "the polling route polled {polled} times");
    assert_eq!(by_callback, 0);
    driven.shutdown().await;
    polling.shutdown().await;
}

/// An upstream whose callback reaches the gateway before its own `202` does (sent at once,
/// the `202` held 500 ms): the callback is held until the watch is stored, then completes
/// it — the client is answered by it, with no poll.
#[tokio::test]
async fn a_callback_that_beats_the_202_is_held_until_the_watch_is_stored() {
    let plan = Plan {
        from: Via::Json,
        call_back_after: Some(Duration::ZERO),
        finish_after: Duration::from_secs(3600),
        rewrite_base: None,
        answer_after: Duration::from_millis(500),
    };
    let (up, calls) = callback_upstream(plan).await;
    let cfg = config("memory", r#"{ json = "/webhook_url" }"#, "30s", "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let resp = submit(&gw, "wait=10", "{}").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(first_answer(&calls).await.0, 200);
    assert_eq!(status_polls(&up), 0);
    gw.shutdown().await;
}
