//! When a gateway job's failed upstream attempt is tried again (`routes[].retry`, see
//! [`crate::config::retry`]), and after how long.
//!
//! **Backoff**: exponential with full jitter (the AWS Architecture Blog's "Exponential
//! Backoff and Jitter", also what Google's and Azure's SDKs do): after the n-th attempt the
//! wait is uniform in `[0, min(max_backoff, backoff · 2^(n-1)))`, so jobs that failed together
//! do not come back together.
//!
//! **`Retry-After`** (delta-seconds or an HTTP date, on any retried answer — in practice
//! `429` and `503`) raises the wait to at least what the upstream asked for. An upstream
//! that asks for more than `max_backoff` ends the retries: the job fails with that answer
//! at once rather than hammering the upstream sooner than it asked, or holding the route's
//! slot longer than the route allows (followed Google's api-core, whose retry gives up when
//! the next wait would pass its limit, rather than the Azure SDK, which sleeps whatever it
//! is told).
//!
//! **Deadline**: when the wait would reach the job's run deadline (`Cancel-After`,
//! `max_run_time`; [`crate::store::deadline`]), the retries stop and the job fails at once
//! with the last attempt's error — the client learns now, with the real reason, instead of a
//! `deadline_exceeded` that would only come later and hide it.
//!
//! **Where the wait happens**: in the runner, which keeps the job's lease (and the route's
//! `max_in_flight` slot) meanwhile, rather than putting the job back to `pending` with a
//! not-before time. Waits are short (at most `max_backoff`, 30 s by default), a retrying job
//! still counting against the route's concurrency is the back-pressure a struggling upstream
//! needs, and no store needs a second claim order. Each failure and each new attempt are
//! written to the store ([`crate::store::JobStore::note_attempt`]) before the wait and
//! after it, so the status on every replica shows `attempts` and `last_error`, and a crash
//! mid-backoff keeps the count: the lease runs out and the job is recovered like any
//! interrupted run (re-queued with `retry_interrupted`, whose claim counts the next attempt,
//! else failed `interrupted`); a re-claimed job makes only the attempts left.

use std::time::Duration;

use crate::config::{RetryConfig, RetryOn};
use crate::store::model::{JobError, Outcome};

/// One attempt's result: the outcome, and what kind of transient failure it was (if any).
pub(super) struct Tried {
    /// What the attempt gave.
    pub outcome: Outcome,
    /// The retry condition it meets, if it is a transient failure.
    pub transient: Option<RetryOn>,
    /// The upstream's `Retry-After`, if it answered with one.
    pub retry_after: Option<Duration>,
}

impl Tried {
    /// A result that is never retried.
    pub fn done(outcome: Outcome) -> Tried {
        Tried {
            outcome,
            transient: None,
            retry_after: None,
        }
    }
}

/// The error a failed attempt leaves: its own, or `upstream_status` for an answer.
pub(super) fn last_error(outcome: &Outcome) -> Option<JobError> {
    match outcome {
        Outcome::Answered(r) if (200..300).contains(&r.status) => None,
        Outcome::Answered(r) => Some(JobError {
            code: "upstream_status".into(),
            message: format!("the upstream answered {}", r.status),
        }),
        Outcome::Failed(e) => Some(e.clone()),
    }
}

/// The wait before the next attempt, or `None` to stop retrying: `made` attempts are done;
/// `unit` in `[0, 1)` picks the jitter; `left` is the time to the run deadline, if any.
pub(super) fn next_wait(
    policy: &RetryConfig,
    made: u32,
    tried: &Tried,
    unit: f64,
    left: Option<Duration>,
) -> Option<Duration> {
    let what = tried.transient?;
    if !policy.covers(what) || made >= policy.attempts {
        return None;
    }
    let jittered = policy.bound(made).mul_f64(unit.clamp(0.0, 1.0));
    let wait = match tried.retry_after {
        Some(ra) if ra > policy.max_backoff => return None,
        Some(ra) => ra.max(jittered),
        None => jittered,
    };
    match left {
        Some(left) if wait >= left => None,
        _ => Some(wait),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::StoredResponse;

    fn answered(status: u16, retry_after: Option<u64>) -> Tried {
        Tried {
            outcome: Outcome::Answered(StoredResponse {
                status,
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            }),
            transient: Some(RetryOn::Status(status)),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn policy(on: &[RetryOn]) -> RetryConfig {
        RetryConfig {
            on: on.to_vec(),
            ..RetryConfig::default()
        }
    }

    #[test]
    fn only_listed_conditions_and_only_while_attempts_remain() {
        let p = policy(&[RetryOn::Status(503)]);
        assert!(next_wait(&p, 1, &answered(503, None), 0.5, None).is_some());
        assert!(next_wait(&p, 2, &answered(503, None), 0.5, None).is_some());
        assert_eq!(next_wait(&p, 3, &answered(503, None), 0.5, None), None);
        assert_eq!(next_wait(&p, 1, &answered(502, None), 0.5, None), None);
        let default = RetryConfig::default();
        assert_eq!(
            next_wait(&default, 1, &answered(503, None), 0.5, None),
            None
        );
    }

    #[test]
    fn full_jitter_within_the_doubling_bound() {
        let p = policy(&[RetryOn::Status(503)]);
        let t = answered(503, None);
        assert_eq!(next_wait(&p, 1, &t, 0.0, None), Some(Duration::ZERO));
        assert_eq!(
            next_wait(&p, 2, &t, 0.5, None),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_raises_the_wait_but_never_past_max_backoff_or_the_deadline() {
        let p = policy(&[RetryOn::Status(503)]);
        let two = Duration::from_secs(2);
        assert_eq!(
            next_wait(&p, 1, &answered(503, Some(2)), 0.1, None),
            Some(two)
        );
        assert_eq!(next_wait(&p, 1, &answered(503, Some(31)), 0.1, None), None);
        let left = Some(Duration::from_millis(1500));
        assert_eq!(next_wait(&p, 1, &answered(503, Some(2)), 0.1, left), None);
        assert!(next_wait(&p, 1, &answered(503, None), 0.1, left).is_some());
    }

    #[test]
    fn last_error_of_each_outcome() {
        assert_eq!(
            last_error(&answered(503, None).outcome).unwrap().code,
            "upstream_status"
        );
        assert!(last_error(&answered(200, None).outcome).is_none());
    }
}
