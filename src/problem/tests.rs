//! Every problem renders as `application/problem+json` with its stable type, and the
//! OpenAPI document (`openapi/gateway.json`) lists exactly these types.

#![allow(clippy::unwrap_used)]

use super::*;

/// One of each cause. The `match` below has no wildcard: a new variant does not compile
/// until it is added here (and so to the OpenAPI document's check).
fn all() -> Vec<Problem> {
    let all = vec![
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
        Problem::JobUnfinished("running"),
        Problem::NoticePending(2),
        Problem::InvalidQuery("x".into()),
        Problem::InvalidCancelAfter("x".into()),
        Problem::InvalidCallbackEvents("x".into()),
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
        Problem::TaskCallbackUnknown,
        Problem::TaskCallbackUsed("succeeded"),
        Problem::TaskCallbackBody("x".into()),
    ];
    for p in &all {
        match p {
            Problem::NoRoute
            | Problem::MethodNotAllowed(_)
            | Problem::InvalidMode(_)
            | Problem::InvalidFlag { .. }
            | Problem::AsyncRequirement { .. }
            | Problem::BodyTooLarge(_)
            | Problem::HeadersTooLarge
            | Problem::BadRequestBody(_)
            | Problem::UpstreamUnreachable(_)
            | Problem::UpstreamTimeout
            | Problem::UpstreamContract { .. }
            | Problem::Draining
            | Problem::TenantRequired(_)
            | Problem::InvalidIdempotencyKey(_)
            | Problem::IdempotencyConflict
            | Problem::QueueFull(_)
            | Problem::JobNotFound
            | Problem::JobExpired
            | Problem::JobFinished(_)
            | Problem::JobUnfinished(_)
            | Problem::NoticePending(_)
            | Problem::InvalidQuery(_)
            | Problem::InvalidCancelAfter(_)
            | Problem::InvalidCallbackEvents(_)
            | Problem::NoResult(_)
            | Problem::StoreUnavailable
            | Problem::AdmissionUnavailable
            | Problem::NotReady(_)
            | Problem::CallbackWithoutAsync
            | Problem::CallbackForbidden(_)
            | Problem::CannotRedeliver(_)
            | Problem::BodyTimeout(_)
            | Problem::RateLimited(_)
            | Problem::SignatureInvalid
            | Problem::SignatureExpired
            | Problem::TaskCallbackUnknown
            | Problem::TaskCallbackUsed(_)
            | Problem::TaskCallbackBody(_) => {}
        }
    }
    all
}

#[test]
fn every_problem_is_problem_json_with_a_stable_type() {
    for p in all() {
        let (status, slug, _) = p.parts();
        let doc = p.document();
        assert_eq!(doc["status"], status.as_u16());
        assert_eq!(doc["type"], format!("{TYPE_BASE}{slug}"));
        let resp = p.into_response();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/problem+json");
    }
}

#[test]
fn the_openapi_document_lists_every_problem_type_with_its_title_and_status() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi/gateway.json")).unwrap();
    let listed = doc["components"]["schemas"]["ProblemType"]["oneOf"]
        .as_array()
        .unwrap();
    let mut documented: Vec<(String, String, String)> = listed
        .iter()
        .map(|t| {
            let status = t["description"]
                .as_str()
                .unwrap()
                .split(':')
                .next()
                .unwrap();
            (
                t["const"].as_str().unwrap().to_owned(),
                t["title"].as_str().unwrap().to_owned(),
                status.to_owned(),
            )
        })
        .collect();
    let mut made: Vec<(String, String, String)> = all()
        .iter()
        .map(|p| {
            let (status, slug, title) = p.parts();
            (
                format!("{TYPE_BASE}{slug}"),
                title.to_owned(),
                status.as_u16().to_string(),
            )
        })
        .collect();
    for list in [&mut documented, &mut made] {
        list.sort();
        list.dedup();
    }
    assert_eq!(documented, made);
}
