//! Hostile `Prefer` headers (behaviour §2: bytes that are not visible ASCII never cause a
//! 5xx; malformed elements are skipped; README "Limits": 100 lines / 64 KiB of head → `431`).
//!
//! - a 100 KiB `Prefer` and 150 `Prefer` lines are over the gateway's head limits: a `431`
//!   problem, nothing reaches the upstream;
//! - a head beyond hyper's own read buffer (4 × 64 KiB) is refused by hyper before the
//!   gateway sees it: hyper's automatic, empty-bodied `431`, then the connection closes;
//! - NUL and a bare CR are not legal in a field value: hyper refuses the head at parse
//!   (its automatic `400`) and closes — never a 5xx, nothing forwarded;
//! - obs-text (0x80–0xFF) is legal field content (RFC 9110 §5.5): the element is an
//!   unknown / malformed preference and is ignored, the rest of the header still counts.
//!
//! Each attack is repeated concurrently while a [`Bystander`] is served.

use std::time::Duration;

use super::support::wire::{Ended, RawResponse};
use super::support::{task_upstream, Upstream};
use super::{
    assert_raw_problem, config, healthy_upstream, send_raw, task_route, Bystander, PATIENCE,
};

/// A gateway with the bystanders' route and a task route `/v1/edit` whose tasks finish
/// after 200 ms. Returns the gateway, the task upstream and the bystanders' upstream.
async fn gateway() -> (super::support::Gateway, Upstream, Upstream) {
    let alive = healthy_upstream().await;
    let tasks = task_upstream(Duration::from_millis(200)).await;
    let cfg = config(
        "",
        "",
        &alive.url(),
        &task_route("edit", "/v1/edit", &tasks.url(), ""),
    );
    let gw = super::support::Gateway::start(&cfg, "").await;
    (gw, tasks, alive)
}

/// A `POST /v1/edit` head with `prefer_lines` (each the bytes after `Prefer: `).
fn submit(prefer_lines: &[Vec<u8>]) -> Vec<u8> {
    let mut req = b"POST /v1/edit HTTP/1.1\r\nHost: x\r\n".to_vec();
    for line in prefer_lines {
        req.extend_from_slice(b"Prefer: ");
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: 2\r\n");
    req.extend_from_slice(b"Connection: close\r\n\r\n{}");
    req
}

/// How many times [`attack`] sends a request: 10 rounds of 8 at once.
const ATTACKS: usize = 80;

/// Sends `req` [`ATTACKS`] times while a bystander is served; returns every answer.
async fn attack(gw: &super::support::Gateway, req: Vec<u8>, what: &str) -> Vec<Vec<u8>> {
    let bystander = Bystander::start(gw.addr);
    let mut answers = Vec::new();
    for _ in 0..ATTACKS / 8 {
        let round: Vec<_> = (0..8)
            .map(|_| {
                let req = req.clone();
                let addr = gw.addr;
                tokio::spawn(async move {
                    let (out, ended) = send_raw(addr, &req, PATIENCE).await;
                    assert_ne!(ended, Ended::StillOpen, "the connection was left open");
                    out
                })
            })
            .collect();
        for r in round {
            answers.push(r.await.unwrap());
        }
    }
    bystander.finish(what).await;
    answers
}

/// `n` bytes of a syntactically valid but unknown preference.
fn padding(n: usize) -> Vec<u8> {
    let mut v = b"x-pad=\"".to_vec();
    v.resize(n - 1, b'a');
    v.push(b'"');
    v
}

#[tokio::test]
async fn a_100_kib_prefer_is_a_431_problem_and_never_forwarded() {
    let (gw, tasks, _alive) = gateway().await;
    let mut value = b"respond-async, ".to_vec();
    value.extend(padding(100 * 1024));
    for raw in attack(&gw, submit(&[value]), "100 KiB Prefer").await {
        assert_raw_problem(&raw, 431, "headers-too-large");
    }
    assert!(
        tasks.seen().is_empty(),
        "a 431 request reached the upstream"
    );
}

#[tokio::test]
async fn a_hundred_and_fifty_prefer_lines_are_a_431_problem_and_never_forwarded() {
    let (gw, tasks, _alive) = gateway().await;
    let lines: Vec<Vec<u8>> = (0..150).map(|i| format!("wait={i}").into_bytes()).collect();
    for raw in attack(&gw, submit(&lines), "150 Prefer lines").await {
        assert_raw_problem(&raw, 431, "headers-too-large");
    }
    assert!(
        tasks.seen().is_empty(),
        "a 431 request reached the upstream"
    );
}

#[tokio::test]
async fn a_prefer_past_hypers_read_buffer_is_refused_by_hyper_and_closed() {
    let (gw, tasks, _alive) = gateway().await;
    // 1 MiB: four times past hyper's read buffer (`max_buf_size` = 4 × 64 KiB), so hyper
    // stops reading the head and answers on its own; the gateway never sees the request.
    let value = padding(1024 * 1024);
    for raw in attack(&gw, submit(&[value]), "1 MiB Prefer").await {
        if let Some(resp) = RawResponse::parse(&raw) {
            // hyper's automatic answer to a head it cannot buffer: a bare 431.
            assert_eq!(resp.status, 431, "{resp:?}");
        }
    }
    assert!(
        tasks.seen().is_empty(),
        "an unparsed request reached the upstream"
    );
}

#[tokio::test]
async fn nul_and_bare_cr_in_prefer_are_refused_at_parse_never_a_5xx() {
    let (gw, tasks, _alive) = gateway().await;
    let hostile: [(&str, &[u8]); 4] = [
        ("NUL", b"respond-async\0, wait=5"),
        ("NUL alone", b"\0"),
        ("bare CR", b"respond-async\r, wait=5"),
        ("CR before the value", b"\rwait=5"),
    ];
    for (what, value) in hostile {
        for raw in attack(&gw, submit(&[value.to_vec()]), what).await {
            // httparse refuses control bytes in a value; hyper answers 400 and closes.
            if let Some(resp) = RawResponse::parse(&raw) {
                assert_eq!(resp.status, 400, "{what}: {resp:?}");
            }
        }
    }
    assert!(
        tasks.seen().is_empty(),
        "a refused request reached the upstream"
    );
}

#[tokio::test]
async fn obs_text_in_prefer_is_an_ignored_element_and_the_request_succeeds() {
    let (gw, tasks, _alive) = gateway().await;
    // obs-text alone: no execution preference is left → DEFAULT (sync): the task's final
    // status (200), no Preference-Applied.
    let alone: [&[u8]; 3] = [b"\x80\xff\xfe", b"wait=\xff9", b"\xc3\xa9=\"\x80\""];
    for value in alone {
        for raw in attack(&gw, submit(&[value.to_vec()]), "obs-text Prefer").await {
            let resp = RawResponse::parse(&raw).expect("an answer");
            assert_eq!(resp.status, 200, "{value:?}: {resp:?}");
            assert!(!resp.has("preference-applied"), "{value:?}: {resp:?}");
            let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(body["status"], "succeeded", "{value:?}: {body}");
        }
    }
    // obs-text beside a valid element: the malformed element is skipped, respond-async
    // still counts → the upstream's own 202 with Preference-Applied.
    let beside = b"\xff\xfe, respond-async, x=\"\x80\x81\"".to_vec();
    for raw in attack(&gw, submit(&[beside]), "obs-text beside respond-async").await {
        let resp = RawResponse::parse(&raw).expect("an answer");
        assert_eq!(resp.status, 202, "{resp:?}");
        assert_eq!(resp.header("preference-applied"), Some("respond-async"));
    }
    assert_eq!(
        tasks.count("/v1/edit"),
        4 * ATTACKS,
        "every submit was forwarded once"
    );
}
