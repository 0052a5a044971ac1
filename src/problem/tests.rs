//! Every problem renders as `application/problem+json` with its stable type.

use super::*;

#[test]
fn every_problem_is_problem_json_with_a_stable_type() {
    let all = [
        Problem::NoRoute,
        Problem::MethodNotAllowed(HeaderValue::from_static("GET")),
        Problem::InvalidMode("x".into()),
        Problem::InvalidFlag {
            field: "field \"/async\"".into(),
            got: "\"yes\"".into(),
        },
        Problem::AsyncRequirement {
            field: "/response_mode".into(),
            expected: json!("urls"),
        },
        Problem::BodyTooLarge(10),
        Problem::HeadersTooLarge,
        Problem::BadRequestBody("x".into()),
        Problem::UpstreamUnreachable("x".into()),
        Problem::UpstreamTimeout,
        Problem::UpstreamContract {
            id: Some("a".into()),
            detail: "x".into(),
        },
        Problem::Draining,
        Problem::TenantRequired("X-Api-Key".into()),
        Problem::InvalidIdempotencyKey("x".into()),
        Problem::IdempotencyConflict,
        Problem::QueueFull(1),
        Problem::JobNotFound,
        Problem::JobExpired,
        Problem::JobFinished("succeeded"),
        Problem::NoResult("canceled"),
        Problem::StoreUnavailable,
        Problem::AdmissionUnavailable,
        Problem::CallbackWithoutAsync,
        Problem::CallbackForbidden("x".into()),
        Problem::CannotRedeliver("x"),
        Problem::NotReady("x".into()),
        Problem::BodyTimeout(std::time::Duration::from_secs(1)),
        Problem::RateLimited(3),
        Problem::SignatureInvalid,
        Problem::SignatureExpired,
    ];
    for p in all {
        let (status, slug, _) = p.parts();
        let doc = p.document();
        assert_eq!(doc["status"], status.as_u16());
        assert_eq!(doc["type"], format!("{TYPE_BASE}{slug}"));
        let resp = p.into_response();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/problem+json");
    }
}
