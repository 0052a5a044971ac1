//! `routes[].retry`: defaults applied, the kind and `backoff ≤ max_backoff` checked.

use toml::Spanned;

use super::super::raw::RawRetry;
use super::super::{ConfigError, Source};
use crate::config::{RetryConfig, RouteKind};

/// `routes[].retry` with its defaults, on a `sync` route (the only kind whose jobs make an
/// upstream call; proxy routes were refused before).
pub(super) fn retry(
    at: &str,
    kind: RouteKind,
    raw: Option<&Spanned<RawRetry>>,
    src: &Source<'_>,
) -> Result<RetryConfig, ConfigError> {
    let Some(spanned) = raw else {
        return Ok(RetryConfig::default());
    };
    if kind != RouteKind::Sync {
        let msg = "`retry` is only for kind = \"sync\" (the gateway's jobs there make the \
                   upstream call; a task route's upstream owns its operations)"
            .to_owned();
        return Err(src.error(format!("{at}.retry"), Some(spanned.span()), msg));
    }
    let r = spanned.get_ref();
    let base = RetryConfig::default();
    if let Some(b) = r.backoff.as_ref().filter(|b| b.get_ref().is_zero()) {
        let msg = "`backoff` must be greater than zero".to_owned();
        return Err(src.error(format!("{at}.retry.backoff"), Some(b.span()), msg));
    }
    let backoff = r.backoff.as_ref().map_or(base.backoff, |b| *b.get_ref());
    let max_backoff = r
        .max_backoff
        .as_ref()
        .map_or(base.max_backoff, |b| *b.get_ref());
    if backoff > max_backoff {
        let msg = format!(
            "backoff ({}) must not exceed max_backoff ({})",
            humantime::format_duration(backoff),
            humantime::format_duration(max_backoff)
        );
        // Blame the key that was written (max_backoff if both were).
        let (key, span) = match (&r.max_backoff, &r.backoff) {
            (Some(m), _) => ("max_backoff", m.span()),
            (None, Some(b)) => ("backoff", b.span()),
            (None, None) => ("max_backoff", spanned.span()),
        };
        return Err(src.error(format!("{at}.retry.{key}"), Some(span), msg));
    }
    Ok(RetryConfig {
        attempts: r.attempts.as_ref().map_or(base.attempts, |n| *n.get_ref()),
        backoff,
        max_backoff,
        on: r.on.clone().unwrap_or(base.on),
    })
}
