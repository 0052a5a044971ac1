//! Which events a client asks to have delivered to its callback URL (`callback_events`).
//!
//! The terminal event (the job succeeded, failed or was canceled) is always delivered, as
//! before; a client may ask for `started` as well — the job was claimed and its upstream
//! call begins. The route names where the list lives, exactly as for the callback URL
//! (`callback_events = { header = "Callback-Events" }` or `{ json = "/callback_events" }`),
//! and the value is taken off the request before it is forwarded. A header is a
//! comma-separated list (`started, completed`); a body field is such a string or an array
//! of strings. Names are `started` and `completed` (the terminal event, implied anyway),
//! compared case-insensitively; anything else, an empty list, or a list without a callback
//! URL in the same request is `400 invalid-callback-events` (Stripe and GitHub refuse
//! unknown event names at subscription time likewise, rather than dropping them).

use http::header::{HeaderValue, CONTENT_LENGTH};
use http::request::Parts;
use serde_json::Value;

use crate::body::{self, Body};
use crate::config::{FieldSource, RouteConfig};
use crate::problem::Problem;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events {
    /// `started` as well as the terminal event.
    pub started: bool,
}

/// Parses the names of a `callback_events` value.
pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Events, Problem> {
    let mut started = false;
    let mut any = false;
    for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
        any = true;
        if name.eq_ignore_ascii_case("started") {
            started = true;
        } else if !name.eq_ignore_ascii_case("completed") {
            return Err(Problem::InvalidCallbackEvents(format!(
                "unknown callback event {name:?}; expected \"started\" or \"completed\""
            )));
        }
    }
    if !any {
        return Err(Problem::InvalidCallbackEvents(
            "callback_events names no event".into(),
        ));
    }
    Ok(Events { started })
}

/// Takes the `callback_events` value off the request (see the module doc); `None` when the
/// route has none or the request does not carry it.
pub async fn take(
    route: &RouteConfig,
    parts: &mut Parts,
    body: Body,
) -> Result<(Option<Events>, Body), Problem> {
    match &route.callback_events {
        None => Ok((None, body)),
        Some(FieldSource::Header(name)) => {
            let values: Vec<HeaderValue> = parts.headers.get_all(name).iter().cloned().collect();
            if values.is_empty() {
                return Ok((None, body));
            }
            parts.headers.remove(name);
            let text = values
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            Ok((Some(parse(text.split(','))?), body))
        }
        Some(FieldSource::Json(ptr)) if crate::intent::is_json(&parts.headers) => {
            let bytes = body::collect(body, route.settings.max_body.bytes())
                .await
                .map_err(Problem::from)?;
            let Ok(mut doc) = serde_json::from_slice::<Value>(&bytes) else {
                return Ok((None, Body::full(bytes)));
            };
            let events = match ptr.get(&doc) {
                None | Some(Value::Null) => return Ok((None, Body::full(bytes))),
                Some(Value::String(s)) => parse(s.split(','))?,
                Some(Value::Array(items)) => {
                    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    let names = names.ok_or_else(|| {
                        Problem::InvalidCallbackEvents(format!("{ptr} must hold strings"))
                    })?;
                    parse(names)?
                }
                Some(_) => {
                    return Err(Problem::InvalidCallbackEvents(format!(
                        "{ptr} must be a string or an array of strings"
                    )))
                }
            };
            ptr.remove(&mut doc);
            let rewritten = serde_json::to_vec(&doc).unwrap_or_default();
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
            Ok((Some(events), Body::full(rewritten)))
        }
        Some(FieldSource::Json(_)) => Ok((None, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse(["started"]).unwrap(), Events { started: true });
        assert_eq!(
            parse(" Started , completed".split(',')).unwrap(),
            Events { started: true }
        );
        assert_eq!(parse(["completed"]).unwrap(), Events { started: false });
        assert!(parse(["progress"]).is_err());
        assert!(parse(["", " "]).is_err());
    }
}
