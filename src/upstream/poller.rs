//! The poll loop: one status request per interval until terminal or the deadline.
//!
//! A waiting request is a parked future plus one tokio timer (tokio's single timer wheel),
//! never a thread. Schedule (behaviour §4.3): the first poll one `poll_interval` after the
//! 202, then every interval on that grid, and a last one at the deadline so the client gets
//! the whole window. Dropping the future (the client went away) stops polling at once.
//!
//! Many requests may wait on the same operation (an upstream that deduplicates submits
//! hands out one id twice). They share a [`Slot`]: a poll in flight is joined, not repeated,
//! and a result that started less than 0.9 interval ago is reused (0.9, not 1.0, so timer
//! jitter can never make a lone waiter skip a tick). A lone waiter always makes its final
//! poll at the deadline; when the operation is shared, a waiter's deadline poll reuses a
//! result younger than half an interval, so staggered deadlines cannot multiply the polls.
//! The registry key is the status URL plus
//! the caller's credentials (`Authorization`, `Cookie`), so clients never share answers
//! across identities.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use http::{Request, StatusCode, Uri};
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::config::{JsonPointer, TaskConfig};
use crate::upstream::client::{Again, HttpClient};
use crate::upstream::scan::Found;

/// What one poll found.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// Not finished yet.
    Pending,
    /// Finished (succeeded or failed): the status response to hand back.
    Terminal {
        /// Status body, verbatim.
        body: Bytes,
        /// Its `Content-Type`.
        content_type: Option<HeaderValue>,
    },
    /// This poll failed in a way worth retrying at the next tick.
    Transient(String),
    /// The upstream broke its contract (404/410, unreadable state): stop and answer 502.
    Broken(String),
}

/// Everything needed to poll one operation.
#[derive(Debug, Clone)]
pub struct Target {
    /// The status URL for this operation.
    pub uri: Uri,
    /// Headers sent with each poll (the client's end-to-end headers).
    pub headers: HeaderMap,
    /// Longest single poll.
    pub timeout: Duration,
    /// Largest status body read.
    pub max_body: u64,
}

/// Issues one status request and classifies the answer (counted in the metrics).
pub async fn poll_once(client: &HttpClient, task: &TaskConfig, t: &Target) -> PollOutcome {
    let outcome = poll_and_classify(client, task, t).await;
    crate::metrics::get().poll(match outcome {
        PollOutcome::Pending => "pending",
        PollOutcome::Terminal { .. } => "terminal",
        PollOutcome::Transient(_) => "transient",
        PollOutcome::Broken(_) => "broken",
    });
    outcome
}

/// The status request for `t`: a bodyless `GET` of its URL with its headers.
fn status_request(t: &Target) -> Request<Body> {
    let mut req = Request::new(Body::Empty);
    *req.uri_mut() = t.uri.clone();
    *req.headers_mut() = t.headers.clone();
    req
}

async fn poll_and_classify(client: &HttpClient, task: &TaskConfig, t: &Target) -> PollOutcome {
    // One bound for the whole poll, head and body: a status URL that sends its head and
    // then stalls must not hold a watch (which has no client deadline) forever.
    let until = Instant::now() + t.timeout;
    // Should the pooled connection die under it, the poll is built again from `t` rather
    // than copied before every send (`Again::Rebuild`: one header-map clone less a poll).
    let rebuild = || Some(status_request(t));
    let sent = client.request_with(status_request(t), Again::Rebuild(&rebuild));
    let resp = match tokio::time::timeout_at(until, sent).await {
        Err(_) => return PollOutcome::Transient("status poll timed out".into()),
        Ok(Err(e)) => return PollOutcome::Transient(format!("status poll failed: {e}")),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        return PollOutcome::Transient(format!("status URL answered {status}"));
    }
    if !status.is_success() {
        return PollOutcome::Broken(format!("status URL answered {status}"));
    }
    let content_type = resp.headers().get(CONTENT_TYPE).cloned();
    let read = tokio::time::timeout_at(until, body::collect(resp.into_body(), t.max_body));
    let bytes = match read.await {
        Err(_) => return PollOutcome::Transient("status body timed out".into()),
        Ok(Ok(b)) => b,
        Ok(Err(body::CollectError::TooLarge(n))) => {
            return PollOutcome::Broken(format!("status body exceeds {n} bytes"))
        }
        Ok(Err(e)) => return PollOutcome::Transient(e.to_string()),
    };
    match read_state(&bytes, &task.state) {
        Err(why) => PollOutcome::Broken(why),
        Ok(state) if task.succeeded.contains(&state) || task.failed.contains(&state) => {
            PollOutcome::Terminal {
                body: bytes,
                content_type,
            }
        }
        Ok(_) => PollOutcome::Pending,
    }
}

/// The state string at `ptr` in a status body, read by pointer (`scan`: no JSON tree is
/// built for a poll).
pub(crate) fn read_state(body: &[u8], ptr: &JsonPointer) -> Result<String, String> {
    match super::scan::at(body, ptr.as_str()) {
        Ok(Found::Str(s)) => Ok(s),
        Ok(Found::Other) => Err(format!("status body's {ptr} is not a string")),
        Ok(Found::Missing) => Err(format!("status body has no {ptr}")),
        Err(e) => Err(format!("status body is not JSON: {e}")),
    }
}

/// Shared poll state of one operation (see the module doc).
#[derive(Debug, Default)]
pub struct Slot {
    last: tokio::sync::Mutex<Option<(Instant, PollOutcome)>>,
}

impl Slot {
    /// Polls, unless a poll is in flight (joined) or one started within `fresh` (reused).
    pub async fn poll(
        &self,
        client: &HttpClient,
        task: &TaskConfig,
        t: &Target,
        fresh: Duration,
    ) -> PollOutcome {
        let mut last = self.last.lock().await;
        if let Some((started, outcome)) = last.as_ref() {
            if started.elapsed() < fresh {
                return outcome.clone();
            }
        }
        let started = Instant::now();
        let outcome = poll_once(client, task, t).await;
        *last = Some((started, outcome.clone()));
        outcome
    }
}

/// All operations being waited on, by status URL and credentials.
#[derive(Debug, Default)]
pub struct Registry {
    slots: Mutex<HashMap<u64, Weak<Slot>>>,
}

impl Registry {
    /// The shared slot for this target, created on first use; its entry leaves the map
    /// with the last [`Held`] (not later, in a sweep: a dead entry would keep its
    /// allocation, scattered among the burst's freed pages, and so those pages, after the
    /// waiters are gone).
    pub fn slot(&self, t: &Target) -> Held<'_> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.uri.hash(&mut h);
        t.headers
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .hash(&mut h);
        t.headers
            .get(COOKIE)
            .map(HeaderValue::as_bytes)
            .hash(&mut h);
        let key = h.finish();
        let mut slots = self.lock();
        let slot = match slots.get(&key).and_then(Weak::upgrade) {
            Some(slot) => slot,
            None => {
                let slot = Arc::new(Slot::default());
                slots.insert(key, Arc::downgrade(&slot));
                slot
            }
        };
        Held {
            registry: self,
            key,
            slot,
        }
    }

    /// Operations with a waiter now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<Slot>>> {
        // A poisoned lock only means another waiter panicked; the map is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One waiter's hold on its operation's [`Slot`].
#[derive(Debug)]
pub struct Held<'r> {
    registry: &'r Registry,
    key: u64,
    slot: Arc<Slot>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Arc<Slot>;
    fn deref(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut slots = self.registry.lock();
        // New holders are made only under this lock, so a count of one is the last holder.
        let ours = slots
            .get(&self.key)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.slot)));
        if ours && Arc::strong_count(&self.slot) == 1 {
            slots.remove(&self.key);
        }
    }
}

/// How a wait ended.
#[derive(Debug)]
pub enum WaitEnd {
    /// The operation finished: its status response.
    Terminal {
        /// Status body.
        body: Bytes,
        /// Its `Content-Type`.
        content_type: Option<HeaderValue>,
    },
    /// The deadline came first.
    Deadline,
    /// The upstream broke its contract.
    Broken(String),
}

/// Polls on the schedule of the module doc until terminal, broken, or `deadline`.
pub async fn wait(
    client: &HttpClient,
    task: &TaskConfig,
    slot: &Arc<Slot>,
    target: &Target,
    accepted_at: Instant,
    interval: Duration,
    deadline: Instant,
) -> WaitEnd {
    let mut next = accepted_at + interval;
    if deadline <= Instant::now() {
        return WaitEnd::Deadline;
    }
    loop {
        let at = next.min(deadline);
        tokio::time::sleep_until(at).await;
        let last = at >= deadline;
        let (fresh, limit) = if last {
            let shared = Arc::strong_count(slot) > 1;
            let fresh = if shared { interval / 2 } else { Duration::ZERO };
            (fresh, Instant::now() + interval)
        } else {
            (interval.mul_f32(0.9), deadline)
        };
        let outcome = tokio::time::timeout_at(limit, slot.poll(client, task, target, fresh)).await;
        match outcome {
            Ok(PollOutcome::Terminal { body, content_type }) => {
                return WaitEnd::Terminal { body, content_type }
            }
            Ok(PollOutcome::Broken(why)) => return WaitEnd::Broken(why),
            Ok(PollOutcome::Transient(why)) => {
                tracing::debug!(uri = %target.uri, %why, "poll failed; retrying at next tick")
            }
            Ok(PollOutcome::Pending) | Err(_) => {}
        }
        if last {
            return WaitEnd::Deadline;
        }
        next = at + interval;
        // A poll that overran its tick moves the grid forward rather than firing twice.
        while next <= Instant::now() && next < deadline {
            next += interval;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(auth: Option<&'static str>) -> Target {
        let mut headers = HeaderMap::new();
        if let Some(a) = auth {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(a));
        }
        Target {
            uri: "http://up/v1/tasks/7".parse().unwrap(),
            headers,
            timeout: Duration::from_secs(1),
            max_body: 1024,
        }
    }

    #[test]
    fn waiters_of_one_operation_share_a_slot_and_the_last_one_out_removes_it() {
        let reg = Registry::default();
        let a = reg.slot(&target(Some("Bearer a")));
        let b = reg.slot(&target(Some("Bearer a")));
        assert!(Arc::ptr_eq(&a, &b));
        // Another identity never shares the answer.
        let other = reg.slot(&target(Some("Bearer b")));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(reg.len(), 2);
        drop(a);
        assert_eq!(reg.len(), 2, "one waiter of the operation is left");
        drop(b);
        assert_eq!(reg.len(), 1);
        drop(other);
        assert!(reg.is_empty());
        // A new waiter after that starts a fresh slot.
        let again = reg.slot(&target(Some("Bearer a")));
        assert_eq!(Arc::strong_count(&again), 1);
        assert_eq!(reg.len(), 1);
    }
}
