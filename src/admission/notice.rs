//! Settle and release: telling a route's admission endpoint how the work it admitted ended.
//!
//! The notice is a `POST` to the admission URL:
//! ```json
//! {"action": "settle", "reservation": "r-17", "job_id": "…", "tenant": "…",
//!  "route": "render", "status": "succeeded"}
//! ```
//! `settle` for a succeeded job; `release` for failed, canceled, or a job that never ran
//! (interrupted, expired). Each carries `Idempotency-Key: {job_id}:{action}`: delivery is
//! at-least-once (a lease that ran out, a crash after sending), so the endpoint drops a
//! repeat by that key. Outcome of one attempt, as for callbacks: `2xx` = done, `410` =
//! stop (the reservation is gone), anything else = retry on `[webhooks].retry_schedule`.

use std::time::Duration;

use crate::config::AdmissionConfig;

/// What the endpoint is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The work succeeded: charge the reservation.
    Settle,
    /// The work did not succeed: give the reservation back.
    Release,
}

impl Action {
    /// For a job that ended with `status` (`succeeded` settles; anything else releases).
    pub fn for_status(status: &str) -> Action {
        if status == "succeeded" {
            Action::Settle
        } else {
            Action::Release
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Settle => "settle",
            Action::Release => "release",
        }
    }
}

/// One notice.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// Settle or release.
    pub action: Action,
    /// The endpoint's reservation id, if it gave one.
    pub reservation: Option<&'a str>,
    /// The job (or, for work without a job, the request id).
    pub job_id: &'a str,
    /// Tenant.
    pub tenant: &'a str,
    /// Route name.
    pub route: &'a str,
    /// Final status (`succeeded`, `failed`, `canceled`, or an HTTP status for plain
    /// forwards).
    pub status: &'a str,
}

impl Notice<'_> {
    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "action": self.action.as_str(),
            "reservation": self.reservation,
            "job_id": self.job_id,
            "tenant": self.tenant,
            "route": self.route,
            "status": self.status,
        })
    }

    /// `{job_id}:{action}`.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.job_id, self.action.as_str())
    }
}

/// Sends one notice; the received status (if any), what went wrong (if anything), and a
/// `Retry-After` the endpoint asked for.
pub async fn send(
    client: &reqwest::Client,
    cfg: &AdmissionConfig,
    notice: &Notice<'_>,
) -> (Option<u16>, Option<String>, Option<Duration>) {
    let sent = client
        .post(cfg.url.clone())
        .timeout(cfg.timeout)
        .header("idempotency-key", notice.idempotency_key())
        .header("content-type", "application/json")
        .body(notice.body().to_string())
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (None, Some(crate::error::describe(&e)), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::webhook::schedule::parse_retry_after(v, std::time::SystemTime::now()));
    // Drain a little so the connection can be reused; the answer itself is not used.
    let _ = super::read_capped(resp, cfg.timeout).await;
    let error = (!(200..300).contains(&status)).then(|| format!("the endpoint answered {status}"));
    (Some(status), error, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn succeeded_settles_everything_else_releases() {
        assert_eq!(Action::for_status("succeeded"), Action::Settle);
        for s in ["failed", "canceled", "expired", "interrupted"] {
            assert_eq!(Action::for_status(s), Action::Release);
        }
    }

    #[test]
    fn the_body_and_key_name_the_job_and_action() {
        let n = Notice {
            action: Action::Release,
            reservation: Some("r-1"),
            job_id: "j-1",
            tenant: "acme",
            route: "render",
            status: "failed",
        };
        assert_eq!(
            n.body(),
            serde_json::json!({"action":"release","reservation":"r-1","job_id":"j-1",
                "tenant":"acme","route":"render","status":"failed"})
        );
        assert_eq!(n.idempotency_key(), "j-1:release");
    }
}
