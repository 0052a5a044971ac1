//! Reading a callback URL off a request, before it is forwarded.
//!
//! The route says where the URL lives: a JSON body field (removed from the body before
//! forwarding, so the upstream never sees the gateway's business) or a header (removed
//! likewise). A JSON body is only buffered when its `Content-Type` says JSON and the route
//! takes callbacks from the body. The URL is then checked by the address guard — syntax,
//! scheme, port, and every address its host resolves to — and refused with `422`.

use http::header::{HeaderValue, CONTENT_LENGTH};
use http::request::Parts;

use super::deliver::Deliverer;
use super::{guard, resolve};
use crate::body::{self, Body};
use crate::config::{FieldSource, RouteConfig};
use crate::problem::Problem;

/// Takes the callback URL out of the request (see the module doc).
pub async fn take(
    route: &RouteConfig,
    parts: &mut Parts,
    body: Body,
) -> Result<(Option<String>, Body), Problem> {
    match &route.callback {
        None => Ok((None, body)),
        Some(FieldSource::Header(name)) => {
            let url = parts
                .headers
                .remove(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
            Ok((url.filter(|u| !u.is_empty()), body))
        }
        Some(FieldSource::Json(ptr)) if crate::intent::is_json(&parts.headers) => {
            let bytes = body::collect(body, route.settings.max_body.bytes())
                .await
                .map_err(Problem::from)?;
            let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return Ok((None, Body::full(bytes)));
            };
            match ptr.get(&doc) {
                None | Some(serde_json::Value::Null) => Ok((None, Body::full(bytes))),
                Some(serde_json::Value::String(url)) => {
                    let url = url.clone();
                    ptr.remove(&mut doc);
                    let rewritten = serde_json::to_vec(&doc).unwrap_or_default();
                    parts
                        .headers
                        .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
                    Ok((Some(url), Body::full(rewritten)))
                }
                Some(_) => Err(Problem::CallbackForbidden(format!(
                    "{ptr} must be a URL string"
                ))),
            }
        }
        Some(FieldSource::Json(_)) => Ok((None, body)),
    }
}

/// Checks a callback URL at submit time: `422` when the guard refuses it.
pub async fn check(deliverer: Option<&Deliverer>, url: &str) -> Result<(), Problem> {
    let Some(d) = deliverer else {
        return Err(Problem::CallbackForbidden(
            "callbacks are not configured".into(),
        ));
    };
    let parsed =
        guard::check_url(url, d.policy()).map_err(|r| Problem::CallbackForbidden(r.to_string()))?;
    resolve::check_resolved(&parsed, d.policy())
        .await
        .map_err(|r| Problem::CallbackForbidden(r.to_string()))
}
