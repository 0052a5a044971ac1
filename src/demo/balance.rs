//! The demo's balance service: the admission endpoint of the demo's `paid-render` route.
//!
//! It holds [`CREDITS`] credits. A `reserve` takes one (`200 {"reservation": "r-N"}`) or,
//! with none left, answers `402` with a problem document — which the gateway passes to the
//! client as it is, without creating a job. `settle` keeps the credit; `release` gives it
//! back. Every call is printed, so the demo output shows the reserve → settle/release
//! round trip (and the smoke test in tests/cli.rs reads it).

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::json;
use crate::body::Body;

/// Credits the demo starts with.
pub const CREDITS: u32 = 3;

/// The service's state: credits left and reservations handed out.
#[derive(Debug)]
pub struct Balance {
    credits: u32,
    issued: u32,
}

impl Default for Balance {
    fn default() -> Self {
        Balance {
            credits: CREDITS,
            issued: 0,
        }
    }
}

/// Answers one admission call (`POST /balance`).
pub async fn handle(state: Arc<Mutex<Balance>>, req: Request<Incoming>) -> Response<Body> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let mut b = state.lock().unwrap_or_else(|p| p.into_inner());
    match field("action").as_str() {
        "reserve" if b.credits == 0 => {
            println!("balance: reserve refused (no credits left) → 402");
            let mut r = json(
                StatusCode::PAYMENT_REQUIRED,
                serde_json::json!({
                    "type": "https://example.com/problems/insufficient-balance",
                    "title": "Insufficient balance",
                    "status": 402,
                    "credits_left": 0
                }),
            );
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/problem+json"),
            );
            r
        }
        "reserve" => {
            b.credits -= 1;
            b.issued += 1;
            let reservation = format!("r-{}", b.issued);
            println!(
                "balance: reserved {reservation} for {} ({} credits left)",
                field("route"),
                b.credits
            );
            json(
                StatusCode::OK,
                serde_json::json!({"reservation": reservation, "credits_left": b.credits}),
            )
        }
        "settle" => {
            println!(
                "balance: settled {} (job {} {})",
                field("reservation"),
                field("job_id"),
                field("status")
            );
            json(StatusCode::OK, serde_json::json!({"settled": true}))
        }
        "release" => {
            b.credits += 1;
            println!(
                "balance: released {} (job {} {}; {} credits left)",
                field("reservation"),
                field("job_id"),
                field("status"),
                b.credits
            );
            json(StatusCode::OK, serde_json::json!({"released": true}))
        }
        _ => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "unknown action"}),
        ),
    }
}
