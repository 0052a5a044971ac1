//! The gateway job: what is stored, and the states it moves through.
//!
//! ```text
//! pending ──claim──▶ running ──complete──▶ succeeded | failed
//!    │                  │  └──lease expired──▶ pending (retry_interrupted) | failed (interrupted)
//!    └──cancel──▶ canceled ◀──cancel──┘
//! ```
//!
//! Times are milliseconds since the Unix epoch ([`Millis`]) so every store keeps them as
//! plain integers and compares them without parsing. A job's request and response are kept
//! verbatim (method, target, header bytes, body bytes) so the result can be replayed byte
//! for byte.

use bytes::Bytes;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Now, in [`Millis`] (read through tokio's clock so paused-time tests can move it).
pub fn now_millis() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Formats [`Millis`] as RFC 3339 with millisecond precision (`2026-11-22T10:00:00.000Z`).
pub fn rfc3339(ms: Millis) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Stored, not started.
    Pending,
    /// Claimed by a runner; the upstream call is in flight.
    Running,
    /// The upstream answered 2xx.
    Succeeded,
    /// The upstream answered non-2xx, was unreachable, timed out, or the run was interrupted.
    Failed,
    /// Canceled by the client.
    Canceled,
}

impl JobStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "canceled" => JobStatus::Canceled,
            _ => return None,
        })
    }

    /// Succeeded, failed or canceled: nothing will change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

/// A request or response header list, order and duplicates kept, values as raw bytes.
pub type HeaderList = Vec<(String, Bytes)>;

/// The upstream request a job will make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query, as forwarded (the upstream prefix is added when sending).
    pub target: String,
    /// End-to-end headers to send.
    pub headers: HeaderList,
    /// The buffered body.
    pub body: Bytes,
}

/// The upstream's answer, replayed verbatim by `GET {jobs}/{id}/result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers (hop-by-hop already removed).
    pub headers: HeaderList,
    /// The whole body.
    pub body: Bytes,
}

/// Why a job failed (or was canceled), for the status document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Stable machine-readable code: `upstream_status`, `upstream_unreachable`,
    /// `upstream_timeout`, `result_too_large`, `interrupted`, `route_removed`, `canceled`.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// UUIDv7, unguessable and time-ordered.
    pub id: String,
    /// Tenant scope (`""` on a single-tenant gateway).
    pub tenant: String,
    /// Route name.
    pub route: String,
    /// Current state.
    pub status: JobStatus,
    /// When it was accepted.
    pub created_at: Millis,
    /// Last state change.
    pub updated_at: Millis,
    /// When it becomes `410 Gone` (`finished + retention`); `None` while unfinished.
    pub expires_at: Option<Millis>,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// SHA-256 of method, target and body: "the same request" for idempotency.
    pub fingerprint: String,
    /// What to send upstream.
    pub request: StoredRequest,
    /// What came back (succeeded, or failed with an upstream status).
    pub response: Option<StoredResponse>,
    /// Why it failed or was canceled.
    pub error: Option<JobError>,
    /// While running: the claim is valid until then.
    pub lease_until: Option<Millis>,
    /// How many times a runner claimed it.
    pub attempts: u32,
}

/// A job to create (the store fills in status, times and counters).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// UUIDv7.
    pub id: String,
    /// Tenant scope.
    pub tenant: String,
    /// Route name.
    pub route: String,
    /// Idempotency key, if the client sent one.
    pub idempotency_key: Option<String>,
    /// Request fingerprint.
    pub fingerprint: String,
    /// The request.
    pub request: StoredRequest,
}

impl NewJob {
    /// The stored form at `now`: pending, never claimed.
    pub fn into_job(self, now: Millis) -> Job {
        Job {
            id: self.id,
            tenant: self.tenant,
            route: self.route,
            status: JobStatus::Pending,
            created_at: now,
            updated_at: now,
            expires_at: None,
            idempotency_key: self.idempotency_key,
            fingerprint: self.fingerprint,
            request: self.request,
            response: None,
            error: None,
            lease_until: None,
            attempts: 0,
        }
    }
}

/// How a run ended, as handed to [`crate::jobs::JobStore::complete`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The upstream answered: 2xx → succeeded, else failed with `upstream_status`.
    Answered(StoredResponse),
    /// No usable answer: failed with this error.
    Failed(JobError),
}

impl Outcome {
    /// The terminal status, stored response and error this outcome records: 2xx →
    /// succeeded; another status → failed with `upstream_status` (response kept for
    /// replay); no answer → failed with the given error.
    pub fn into_parts(self) -> (JobStatus, Option<StoredResponse>, Option<JobError>) {
        match self {
            Outcome::Answered(resp) if (200..300).contains(&resp.status) => {
                (JobStatus::Succeeded, Some(resp), None)
            }
            Outcome::Answered(resp) => {
                let error = JobError {
                    code: "upstream_status".into(),
                    message: format!("the upstream answered {}", resp.status),
                };
                (JobStatus::Failed, Some(resp), Some(error))
            }
            Outcome::Failed(error) => (JobStatus::Failed, None, Some(error)),
        }
    }
}

/// A fresh UUIDv7 job id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
