//! The status, stable `type` slug and title of each [`Problem`] — the table the README's
//! errors section documents, kept apart from how a problem is rendered.

use http::StatusCode;

use super::Problem;

impl Problem {
    /// HTTP status, `type` slug and title for this cause.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Problem::NoRoute => (
                StatusCode::NOT_FOUND,
                "no-route",
                "No route matches this path",
            ),
            Problem::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed on this route",
            ),
            Problem::InvalidMode(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-mode",
                "Invalid value for the deprecated mode parameter",
            ),
            Problem::InvalidFlag { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid-mode",
                "Invalid value for the deprecated mode parameter",
            ),
            Problem::AsyncRequirement { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "async-requirement",
                "The request does not meet this route's rules for asynchronous requests",
            ),
            Problem::BodyTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            ),
            Problem::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request header fields too large",
            ),
            Problem::BadRequestBody(_) => (
                StatusCode::BAD_REQUEST,
                "bad-request-body",
                "The request body could not be read",
            ),
            Problem::UpstreamUnreachable(_) => (
                StatusCode::BAD_GATEWAY,
                "upstream-unreachable",
                "The upstream could not be reached",
            ),
            Problem::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "The upstream did not answer in time",
            ),
            Problem::UpstreamContract { .. } => (
                StatusCode::BAD_GATEWAY,
                "upstream-contract",
                "The upstream broke its async contract",
            ),
            Problem::Draining => (
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "The gateway is shutting down",
            ),
            Problem::TenantRequired(_) => (
                StatusCode::UNAUTHORIZED,
                "tenant-required",
                "The tenant header is required",
            ),
            Problem::InvalidIdempotencyKey(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "Invalid idempotency key",
            ),
            Problem::IdempotencyConflict => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The idempotency key was used with a different request",
            ),
            Problem::QueueFull(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "queue-full",
                "Too many unfinished jobs",
            ),
            Problem::JobNotFound => (StatusCode::NOT_FOUND, "job-not-found", "No such job"),
            Problem::JobExpired => (
                StatusCode::GONE,
                "job-expired",
                "The job is past its retention period",
            ),
            Problem::JobFinished(_) => (
                StatusCode::CONFLICT,
                "job-finished",
                "The job has already finished",
            ),
            Problem::JobUnfinished(_) => (
                StatusCode::CONFLICT,
                "job-not-finished",
                "The job has not finished",
            ),
            Problem::NoticePending(_) => (
                StatusCode::CONFLICT,
                "admission-notice-pending",
                "The job's admission notice has not been delivered yet",
            ),
            Problem::InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-query",
                "Invalid query parameter",
            ),
            Problem::InvalidCancelAfter(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-cancel-after",
                "Invalid Cancel-After header",
            ),
            Problem::InvalidCallbackEvents(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-callback-events",
                "Invalid callback events",
            ),
            Problem::NoResult(_) => (
                StatusCode::CONFLICT,
                "job-has-no-result",
                "The job ended without an upstream response",
            ),
            Problem::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The job store is unavailable",
            ),
            Problem::AdmissionUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "admission-unavailable",
                "The admission check could not be made",
            ),
            Problem::NotReady(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "The gateway is not ready for traffic",
            ),
            Problem::CallbackWithoutAsync => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "callback-requires-async",
                "A callback needs Prefer: respond-async or wait",
            ),
            Problem::CallbackForbidden(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "callback-forbidden",
                "The callback URL is not allowed",
            ),
            Problem::CannotRedeliver(_) => (
                StatusCode::CONFLICT,
                "cannot-redeliver",
                "The callback cannot be delivered again",
            ),
            Problem::BodyTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The request body stopped arriving",
            ),
            Problem::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests from this tenant",
            ),
            Problem::SignatureInvalid => (
                StatusCode::FORBIDDEN,
                "signature-invalid",
                "The signed link is not valid",
            ),
            Problem::SignatureExpired => (
                StatusCode::FORBIDDEN,
                "signature-expired",
                "The signed link has expired",
            ),
            Problem::TaskCallbackUnknown => (
                StatusCode::NOT_FOUND,
                "task-callback-unknown",
                "No such task callback URL",
            ),
            Problem::TaskCallbackUsed(_) => (
                StatusCode::GONE,
                "task-callback-used",
                "The task callback URL has been used up",
            ),
            Problem::TaskCallbackBody(_) => (
                StatusCode::BAD_REQUEST,
                "task-callback-body",
                "The callback body is not a status document",
            ),
        }
    }
}
