//! Upstreams that misbehave under load (issue 18, bullet 3), black-box over real loopback
//! sockets: hundreds of clients at once against an upstream that flaps, hangs, or drops
//! its keep-alive connections, each case counting what every client got and what the
//! upstream saw.
//!
//! What every case asserts, whatever the fault:
//! - **no waiter lost**: every client gets an answer within [`PATIENCE`] (no hang, no
//!   dropped connection);
//! - **only answers the contract names** for the situation (behaviour §4, §5, §7): the
//!   final `200` or the `202` handle for a waiter, `504 upstream-timeout` for a call that
//!   never answers, `502 upstream-unreachable` for a broken one — never a 5xx because one
//!   status poll failed;
//! - **retries only where they are safe**: the upstream counts requests by a unique id, and
//!   a `POST` reaches it twice only when it carried the `Idempotency-Key` the gateway
//!   forwards for jobs; status polls (`GET`) may be retried.
//!
//! The cases, one module each (one test target: `cargo test --test upstream_faults`):
//! - `upstream_faults/flapping.rs`: a task route whose status URL answers `500`, hangs past
//!   the poll timeout, closes the connection or says `running`, at random;
//! - `upstream_faults/silent.rs`: an upstream that accepts and never answers, on every
//!   route kind, while another route is served;
//! - `upstream_faults/stale.rs`: an upstream that closes keep-alive connections at random
//!   (the stale-connection race);
//! - `upstream_faults/mixed.rs`: mixed load on a misbehaving upstream beside a healthy one;
//! - `upstream_faults/raw.rs`: the raw TCP upstream they are all built on.
//!
//! Timing: the machine is shared and slow, so the only time assertions are generous upper
//! bounds (and "not before the timeout"); `upstream_timeout` is a few seconds — short
//! enough to stay quick, long enough that hundreds of requests starting at once on a
//! loaded machine are not what times out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "upstream_faults/flapping.rs"]
mod flapping;
#[path = "upstream_faults/mixed.rs"]
mod mixed;
#[path = "upstream_faults/raw.rs"]
mod raw;
#[path = "upstream_faults/silent.rs"]
mod silent;
#[path = "upstream_faults/stale.rs"]
mod stale;

use std::collections::BTreeMap;
use std::time::Duration;

use raw::{hold, read_request, reset, response, send, RawUpstream, Req};

/// The longest any single answer may take before a test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// A gateway config: `[defaults]` (`poll_interval = "100ms"` unless given), an in-memory
/// job store, then `routes`.
fn config(defaults: &str, routes: &str) -> String {
    let poll = if defaults.contains("poll_interval") {
        ""
    } else {
        "poll_interval = \"100ms\""
    };
    format!("[defaults]\n{poll}\n{defaults}\n\n[jobs]\nstore = \"memory\"\n\n{routes}")
}

/// One `[[routes]]` table; `extra` lines are appended to it.
fn route(name: &str, kind: &str, methods: &str, path: &str, up: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nname = \"{name}\"\nkind = \"{kind}\"\nmethods = [{methods}]\n\
         path = \"{path}\"\nupstream = \"{up}\"\n{extra}\n"
    )
}

/// A `task` route at `path` whose operation id is the 202 body's `/taskId` and whose status
/// URL is `/v1/tasks/{id}` on the same upstream.
fn task_route(name: &str, path: &str, up: &str, extra: &str) -> String {
    format!(
        "{}[routes.task]\nid = \"/taskId\"\nstatus_url = \"/v1/tasks/{{id}}\"\n\
         state = \"/status\"\nsucceeded = [\"succeeded\"]\nfailed = [\"failed\"]\n\n",
        route(name, "task", r#""POST""#, path, up, extra)
    )
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64's finaliser, so neighbouring seeds give unrelated streams.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) % n
    }
}

/// What a crowd of clients got: answers by status (and problem `type` slug), and failures
/// to get any answer at all.
#[derive(Debug, Default)]
struct Tally {
    by_status: BTreeMap<String, usize>,
    lost: Vec<String>,
}

impl Tally {
    fn add(&mut self, key: impl Into<String>) {
        *self.by_status.entry(key.into()).or_default() += 1;
    }

    fn total(&self) -> usize {
        self.by_status.values().sum::<usize>() + self.lost.len()
    }

    /// Asserts every client got an answer and every answer's key is in `allowed`.
    fn assert_only(&self, what: &str, allowed: &[&str]) {
        assert!(
            self.lost.is_empty(),
            "{what}: {} clients got no answer: {:?}",
            self.lost.len(),
            &self.lost[..self.lost.len().min(5)]
        );
        for key in self.by_status.keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{what}: answer {key} is not one the contract names here ({:?})",
                self.by_status
            );
        }
        eprintln!("{what}: {:?}", self.by_status);
    }
}

/// `status` for a plain answer, `status type-slug` for a gateway problem (which must be
/// well-formed RFC 9457: `application/problem+json`, `type`, `title`, `status`).
fn answer_key(status: u16, content_type: Option<&str>, body: &[u8]) -> String {
    if content_type != Some("application/problem+json") {
        return status.to_string();
    }
    let doc: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    support::wire::assert_problem_doc(&doc, status, doc["type"].as_str().map_or("?", slug));
    format!("{status} {}", slug(doc["type"].as_str().unwrap_or("?")))
}

fn slug(ty: &str) -> &str {
    ty.rsplit('/').next().unwrap_or(ty)
}

/// A response read whole: status, content type, body.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn key(&self) -> String {
        answer_key(self.status, self.content_type.as_deref(), &self.body)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// Sends `req` and reads the answer whole within [`PATIENCE`]; `Err` says why there was
/// none (a hang, a dropped connection).
async fn call(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let attempt = async {
        let resp = req.send().await.map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
        Ok(Answer {
            status,
            content_type,
            body: body.to_vec(),
        })
    };
    tokio::time::timeout(PATIENCE, attempt)
        .await
        .map_err(|_| format!("no answer within {PATIENCE:?}"))?
}

/// Waits (up to [`PATIENCE`]) until `f` holds; false if it never did.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
