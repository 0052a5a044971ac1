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
//! for byte. What the gateway must deliver once a job ends (its callback, its admission's
//! settle / release) lives in `delivery`, re-exported here.

mod delivery;

use bytes::Bytes;

pub use delivery::{
    Admission, Attempt, AttemptNext, Delivery, DeliveryKind, DeliveryState, NewAdmission,
};

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
    /// Canceled by the client, or by a deadline (`deadline_exceeded`).
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
    /// `upstream_timeout`, `result_too_large`, `interrupted`, `route_removed`, `canceled`,
    /// `deadline_exceeded`.
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
    /// Upstream attempts made so far: one per claim (a run's first attempt, also after a
    /// re-queue) plus one per retry of a transient failure within a run (`routes[].retry`).
    pub attempts: u32,
    /// What running it means: an upstream call, or watching an upstream task.
    pub kind: JobKind,
    /// The callback registered with it, and the state of its delivery.
    pub callback: Option<Delivery>,
    /// The admission it was created under, and the state of its settle / release.
    pub admission: Option<Admission>,
    /// The `started` event to the callback URL, when the client asked for it
    /// (`callback_events`): waiting until the job is claimed, then due.
    pub started: Option<Delivery>,
    /// The client's `Cancel-After` as an absolute time, if it sent one (the route's
    /// `max_queue_time` / `max_run_time` are applied from the route when the job is
    /// claimed and run; see [`crate::store::deadline`]).
    pub deadline: Option<Millis>,
}

impl Job {
    /// The job's delivery of `kind`, if it has one.
    pub fn delivery(&self, kind: DeliveryKind) -> Option<&Delivery> {
        match kind {
            DeliveryKind::Callback => self.callback.as_ref(),
            DeliveryKind::Admission => self.admission.as_ref().map(|a| &a.delivery),
            DeliveryKind::Started => self.started.as_ref(),
        }
    }

    /// The job's delivery of `kind`, to change, if it has one.
    pub fn delivery_mut(&mut self, kind: DeliveryKind) -> Option<&mut Delivery> {
        match kind {
            DeliveryKind::Callback => self.callback.as_mut(),
            DeliveryKind::Admission => self.admission.as_mut().map(|a| &mut a.delivery),
            DeliveryKind::Started => self.started.as_mut(),
        }
    }

    /// The job as a listing returns it: the request's and the stored response's header
    /// lists and bodies left empty (the response's status stays), everything else as is —
    /// all the status document reads, without the payloads. (Cloning a body is a
    /// reference count, so this never copies one only to drop it.)
    pub fn summary(&self) -> Job {
        let mut job = self.clone();
        job.request.headers = Vec::new();
        job.request.body = Bytes::new();
        if let Some(r) = job.response.as_mut() {
            r.headers = Vec::new();
            r.body = Bytes::new();
        }
        job
    }
}

/// What a job's run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Send the stored request to a `sync` route's upstream (a gateway job).
    Call,
    /// Poll a `task` route's status URL (`request.target` is that URL, `request.headers`
    /// the poll headers) until terminal, for a callback: the stored response is the final
    /// status response.
    Watch,
}

impl JobKind {
    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Call => "call",
            JobKind::Watch => "watch",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "call" => Some(JobKind::Call),
            "watch" => Some(JobKind::Watch),
            _ => None,
        }
    }
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
    /// Call or watch.
    pub kind: JobKind,
    /// Callback URL (already checked by the address guard), if any.
    pub callback: Option<String>,
    /// The client asked for the `started` event as well (`callback_events`); only with a
    /// `callback`.
    pub notify_started: bool,
    /// The route's admission endpoint and the reservation it granted, if the route has
    /// one.
    pub admission: Option<NewAdmission>,
    /// The client's `Cancel-After` as an absolute time, if any.
    pub deadline: Option<Millis>,
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
            kind: self.kind,
            started: self
                .callback
                .clone()
                .filter(|_| self.notify_started)
                .map(Delivery::waiting),
            callback: self.callback.map(Delivery::waiting),
            admission: self.admission.map(NewAdmission::into_admission),
            deadline: self.deadline,
        }
    }
}

/// How a run ended, as handed to [`crate::store::JobStore::complete`].
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

/// What [`crate::store::JobStore::note_attempt`] records about a running job's retries.
#[derive(Debug, Clone)]
pub enum RunNote {
    /// An upstream attempt failed and another will follow: the job's error becomes this
    /// (shown as `last_error` while the job is unfinished).
    Failed(JobError),
    /// The next upstream attempt starts now: `attempts + 1`.
    Next,
}

/// A fresh UUIDv7 job id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
