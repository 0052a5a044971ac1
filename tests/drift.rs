//! The drift bugs of issue 13 (bullet 5), black-box over real sockets: one test per bug,
//! each named for it, each failing on the code the issue was filed against.
//!
//! - **One tenant rule.** The tenant is the `[jobs].tenant_header` value with surrounding
//!   whitespace (SP, HTAB) removed; empty after that means *no tenant*; and two different
//!   header values are never one tenant. Jobs, admission, the rate limiter and the access
//!   log must all apply that one rule. HTTP/1 parsers already strip the whitespace around a
//!   field value, HTTP/2 does not, so the whitespace cases go over h2c (prior knowledge).
//! - **Forwarded headers behind TLS.** A request that came over the TLS listener reaches
//!   the upstream with `X-Forwarded-Proto: https`, `X-Forwarded-Port: <listener port>` and a
//!   `Forwarded` element (RFC 7239) `for=…;host=…;proto=https` appended to the client's
//!   chain; over cleartext the same with `http` — on proxy, task and sync (job) routes.
//! - **Built-in paths reserved at load.** While any route runs jobs, a route at or under
//!   `jobs.path`, or on `/webhook-secret`, is a config error (`check` and `run` exit 2,
//!   naming the route's `path` key with line and column; a reload refuses it).
//!
//! One module per bug (`tenant_rule`, `forwarded`, `reserved_paths`), so a test's full name
//! says which bug it is about, e.g.
//! `tenant_rule::whitespace_around_the_tenant_is_one_rate_limit_bucket`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "drift/forwarded.rs"]
mod forwarded;
#[path = "drift/reserved_paths.rs"]
mod reserved_paths;
#[path = "drift/tenant_rule.rs"]
mod tenant_rule;

use support::{reply, Seen, Upstream};

/// An upstream for every route kind used here: a task submit (`POST /v1/edit` → `202`
/// `{"taskId":"t-1"}`), its status (`GET /v1/tasks/…` → succeeded) and `200 {}` for
/// anything else. Requests are recorded ([`Upstream::seen`]).
pub async fn any_upstream() -> Upstream {
    Upstream::start(|s: Seen| async move {
        let path = s.uri.split('?').next().unwrap_or("").to_owned();
        match (s.method.as_str(), path.as_str()) {
            ("POST", "/v1/edit") => reply(
                202,
                r#"{"taskId":"t-1","status":"pending"}"#,
                &[("location", "/v1/tasks/t-1")],
            ),
            ("GET", p) if p.starts_with("/v1/tasks/") => {
                reply(200, r#"{"taskId":"t-1","status":"succeeded"}"#, &[])
            }
            _ => reply(200, "{}", &[]),
        }
    })
    .await
}
