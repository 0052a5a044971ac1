//! The one place response headers the pipeline owns are written: `X-Request-Id` on every
//! answer; and for task and sync routes `Preference-Applied` (when the handler's answer
//! honours a `Prefer` preference), `Vary: Prefer`, and `Deprecation`/`Sunset`/`Link` when
//! the deprecated `mode` opt-in was used (what [`crate::intent`] read).

use http::header::{HeaderMap, HeaderValue};
use http::Response;

use crate::body::Body;
use crate::intent::Intent;
use crate::prefer::PREFERENCE_APPLIED;
use crate::request_id::X_REQUEST_ID;

/// What a task or sync request's answer gets from its intent.
pub enum Intended<'a> {
    /// The intent was read; `honoured` when the answer is the one the preference asked for.
    Read {
        /// The request's intent.
        intent: &'a Intent,
        /// Whether `Preference-Applied` confirms it.
        honoured: bool,
    },
    /// Reading the intent stopped the request; these headers were gathered by then.
    Partial(&'a HeaderMap),
}

/// Writes the intent's headers on a task or sync route's answer.
pub fn intent_headers(resp: &mut Response<Body>, intended: Intended<'_>) {
    match intended {
        Intended::Read { intent, honoured } => {
            if let (true, Some(applied)) = (honoured, &intent.resolution.applied) {
                resp.headers_mut()
                    .insert(PREFERENCE_APPLIED, applied.clone());
            }
            intent.decorate(resp.headers_mut());
        }
        Intended::Partial(extra) => crate::intent::decorate(extra, resp.headers_mut()),
    }
}

/// Every answer carries the request id it was served under.
pub fn request_id(resp: &mut Response<Body>, id: HeaderValue) {
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
}
