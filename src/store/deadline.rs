//! Deadlines: when a job stops being worth running.
//!
//! Three inputs: the client's `Cancel-After` (stored with the job as the absolute time
//! `job.deadline = created_at + Cancel-After`), and the route's `max_queue_time` and
//! `max_run_time` (read from the route when they are applied, so a reload changes them for
//! queued jobs too, as it does every other route setting). The rule:
//!
//! ```text
//! queue deadline = min(job.deadline, created_at + max_queue_time)
//! run deadline   = min(job.deadline, started_at + max_run_time)
//! ```
//!
//! each term left out when its input is absent, no deadline when both are. A job still
//! pending at its queue deadline is never sent: it is canceled unsent (when claimed past
//! it, or by a timer set at submit). A running job's upstream call is raced against its run
//! deadline and dropped when it passes. Either way it ends `canceled` with
//! `error.code = "deadline_exceeded"` through [`crate::store::JobStore::cancel_with`], the
//! transition a client's `DELETE` takes, so its callback and admission release follow.
//!
//! `Cancel-After` is a duration as in the config — `30s`, `5m`, `1h`, `250ms` — or bare
//! whole seconds (`30`). It must be greater than zero and at most [`MAX_CANCEL_AFTER`]:
//! anything else is refused with a `400` rather than silently clamped, so a client never
//! believes in a deadline the gateway does not keep.

use std::time::Duration;

use super::model::{Job, JobError, Millis};

/// The request header naming the client's deadline.
pub const CANCEL_AFTER: &str = "cancel-after";

/// The largest `Cancel-After` accepted: a week. Longer than any retention a job would
/// sensibly be kept for, short enough that the absolute time cannot overflow.
pub const MAX_CANCEL_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The error a job canceled by its deadline carries.
pub fn exceeded(what: &str) -> JobError {
    JobError {
        code: "deadline_exceeded".into(),
        message: format!("the job's deadline passed {what}"),
    }
}

/// Parses a `Cancel-After` value; the message says what is wrong with it.
pub fn parse_cancel_after(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{v:?} is too large"))?
    } else {
        humantime::parse_duration(v).map_err(|_| {
            format!("{v:?} is not a duration; write e.g. \"30s\", \"5m\" or whole seconds")
        })?
    };
    if d.is_zero() {
        return Err("it must be greater than zero".into());
    }
    if d > MAX_CANCEL_AFTER {
        return Err(format!(
            "it must be at most {}",
            humantime::format_duration(MAX_CANCEL_AFTER)
        ));
    }
    Ok(d)
}

/// The `Cancel-After` of a request's `headers`, if it has one; the message says what is
/// wrong with a malformed one (also: given twice, not visible ASCII).
pub fn cancel_after_of(headers: &http::HeaderMap) -> Result<Option<Duration>, String> {
    let mut values = headers.get_all(CANCEL_AFTER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("give it once".into());
    }
    let text = value.to_str().map_err(|_| "not visible ASCII".to_owned())?;
    parse_cancel_after(text).map(Some)
}

/// `now + d`, in [`Millis`] (saturating).
pub fn after(now: Millis, d: Duration) -> Millis {
    now.saturating_add(ms(d))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The queue deadline of `job` under the route's `max_queue_time`.
pub fn queue_deadline(job: &Job, max_queue_time: Option<Duration>) -> Option<Millis> {
    let route = max_queue_time.map(|d| job.created_at.saturating_add(ms(d)));
    earliest(job.deadline, route)
}

/// The run deadline of `job`, started at `started_at`, under the route's `max_run_time`.
pub fn run_deadline(
    job: &Job,
    started_at: Millis,
    max_run_time: Option<Duration>,
) -> Option<Millis> {
    let route = max_run_time.map(|d| started_at.saturating_add(ms(d)));
    earliest(job.deadline, route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_after_forms() {
        assert_eq!(parse_cancel_after("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_cancel_after(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse_cancel_after("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_cancel_after("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "0",
            "0s",
            "soon",
            "-5",
            "1.5",
            "8d",
            "99999999999999999999999",
        ] {
            assert!(parse_cancel_after(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn earliest_term_wins() {
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(5), None), Some(5));
        assert_eq!(earliest(None, Some(7)), Some(7));
        assert_eq!(earliest(Some(9), Some(7)), Some(7));
    }
}
