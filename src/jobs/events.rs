//! Live job status: `GET {jobs}/{id}` with `Accept: text/event-stream` answers a stream of
//! Server-Sent Events, one per state change, and ends after the terminal one.
//!
//! Wire format (WHATWG HTML, "Server-sent events"):
//!
//! ```text
//! id: 1
//! event: status
//! data: {"id":"0193…","status":"pending",…}
//!
//! : heartbeat
//!
//! id: 4
//! event: status
//! data: {"id":"0193…","status":"succeeded",…}
//!
//! ```
//!
//! `data` is the status document exactly as the plain `GET` returns it
//! ([`crate::store::document::live_doc`]), compact JSON on one line: a `pending` event
//! carries the job's `queue_position` as it was when the event was written. A position
//! that moves is not a new event (the ids name states, see below, and a resumed stream
//! must not replay a pending state); a client that wants it live reads the plain `GET`. The first event is
//! the state at connect time; after that an event is sent whenever a read shows a state
//! with a higher id than the last one sent, so states a job passed through between two
//! reads are not replayed (the terminal one always is: it ends the stream). A `: heartbeat`
//! comment goes out after `[jobs].sse_heartbeat` (default 15 s) without anything written,
//! so proxies and clients see a live connection.
//!
//! **Ids** are derived from the job itself, not kept per connection: `2 × attempts +`
//! `0` running, `1` pending, `2` finished (succeeded, failed, canceled). A job that runs
//! once goes `1` pending → `2` running → `4` finished (canceled before it ran: `1` → `2`);
//! one re-queued after an interrupted run goes `1 → 2 → 3 → 4 → 6`. Each change raises
//! the id (a claim adds one attempt), so the ids of one job only ever increase and mean the
//! same on every replica: a client reconnecting with `Last-Event-ID: n`, to any replica,
//! gets only a state whose id is above `n`. Resuming at or past a finished job's id answers
//! `204 No Content`, which tells an `EventSource` to stop reconnecting; a `Last-Event-ID`
//! that is not a decimal number counts as absent.
//!
//! **How changes are seen**: the engine's per-job wake-up ([`Engine::changed`]), the same
//! one `Prefer: wait` long-polls use — given by this process's claim, completion and
//! cancel, and on Redis by the finished-jobs feed for completions on other replicas — plus
//! a re-read of the store once a second while the job is unfinished, which is what brings
//! a claim made on another replica (no feed carries claims) or a lease recovery. Every
//! wake-up is registered before the read it triggers, so no change falls between a read
//! and the next wait. An idle stream costs one store read a second until its job finishes
//! (the same as a long-poll), a timer and its state — no task: the stream is the response
//! body, so a client that disconnects drops it with its wake-up (HTTP/2: with the stream's
//! reset; HTTP/1.1: when hyper sees the socket close, at the latest when the next
//! heartbeat cannot be written). Measured roughly with 2000 open streams on the demo
//! (debug build, RSS): ≈42 KiB each, against ≈41 KiB for as many idle keep-alive
//! connections — a stream adds about 1 KiB to its connection.
//!
//! Everything but a `200` stream is the plain `GET`'s answer: `401`, `404`, `410`, `503`
//! as `application/problem+json`. `HEAD` and a request whose `Accept` does not name
//! `text/event-stream` get the plain status document; `Prefer: wait` is ignored on a
//! stream. The stream ends early when the gateway drains (the client reconnects with
//! `Last-Event-ID`, to another replica if need be), and when the job disappears under it
//! (swept: a reconnect learns `410`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, VARY};
use http::{Response, StatusCode};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::engine::Engine;
use crate::body::{Body, Generated};
use crate::drain::{self, Drain};
use crate::metrics::{RouteLabel, RouteLabels};
use crate::store::document::{self, Progress};
use crate::store::{Job, JobStatus, Lookup};

/// The media type of a Server-Sent Events stream.
pub const EVENT_STREAM: &str = "text/event-stream";

/// How often an unfinished job is read again when nothing woke the stream.
const REREAD: Duration = Duration::from_secs(1);

/// The comment sent after [`crate::config::JobsConfig::sse_heartbeat`] of silence.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Whether the request asks for an event stream: a media range of its `Accept` is exactly
/// `text/event-stream` (case-insensitive, parameters allowed) without `q=0`. `*/*` and
/// `text/*` do not count: a generic client gets the JSON document it always got.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|range| {
            let mut parts = range.split(|&b| b == b';');
            let media = parts.next().unwrap_or_default().trim_ascii();
            media.eq_ignore_ascii_case(EVENT_STREAM.as_bytes())
                && !parts.any(|p| refuses(p.trim_ascii()))
        })
}

/// `q=0` (`0.`, `0.0`, … up to three decimals): "not acceptable" (RFC 9110 §12.4.2).
fn refuses(param: &[u8]) -> bool {
    let Some(value) = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))
    else {
        return false;
    };
    match value.split_first() {
        Some((b'0', rest)) => match rest.split_first() {
            None => true,
            Some((b'.', digits)) => digits.iter().all(|&d| d == b'0'),
            Some(_) => false,
        },
        _ => false,
    }
}

/// The id the client resumes after (`Last-Event-ID`); `0`, before every event, when the
/// header is absent or not a decimal number.
pub fn last_event_id(headers: &HeaderMap) -> u64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The event id of `job`'s current state (see the module doc).
pub fn event_id(job: &Job) -> u64 {
    id_of(job.status, job.attempts)
}

/// `2 × attempts +` 0 running, 1 pending, 2 finished: every transition of the job model
/// raises it (a claim adds an attempt; see the tests).
fn id_of(status: JobStatus, attempts: u32) -> u64 {
    let rank = match status {
        JobStatus::Running => 0,
        JobStatus::Pending => 1,
        JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled => 2,
    };
    u64::from(attempts) * 2 + rank
}

/// One `status` event: the job's id, its status document (with `position` while
/// pending) on one line.
fn render(engine: &Engine, job: &Job, position: Option<u64>, base: &str) -> Bytes {
    let progress = Progress {
        queue_position: position,
        ..Progress::default()
    };
    let doc = document::live_doc(&engine.links(job, base), job, &progress);
    // Compact JSON has no raw line breaks (they are escaped inside strings), so the
    // document is one `data:` line.
    let data = serde_json::to_string(&doc).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: status\ndata: {data}\n\n",
        event_id(job)
    ))
}

/// The stream for `job` (already read for `tenant`, at queue `position` when pending,
/// after the client's `Last-Event-ID` `last`): `200 text/event-stream`, or `204` when the
/// job is finished and the client has seen its last event.
pub fn respond(
    engine: &Arc<Engine>,
    job: &Job,
    position: Option<u64>,
    tenant: String,
    base: String,
    last: u64,
    drain: Drain,
) -> Response<Body> {
    let mut watch = Watch {
        signal: engine.change_signal(&job.id),
        engine: Arc::clone(engine),
        id: job.id.clone(),
        tenant,
        base,
        last,
        first: None,
        read_now: true,
        closed: false,
        written: Instant::now(),
        heartbeat: engine.cfg.sse_heartbeat,
        drain,
        open: None,
    };
    watch.first = watch.event(job, position);
    let mut resp = if watch.closed && watch.first.is_none() {
        let mut r = Response::new(Body::Empty);
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else {
        watch.open = Some(Open::new(&job.route));
        let stream = futures_util::stream::unfold(watch, Watch::next);
        let mut r = Response::new(Body::Stream(Generated::new(stream)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
        // Buffering proxies (nginx) would hold events back; this asks them not to.
        r.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        r
    };
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    vary_accept(h);
    resp
}

/// `Vary` gains `Accept`: the job status answer depends on it (document or stream).
pub fn vary_accept(headers: &mut HeaderMap) {
    crate::mode::add_vary_prefer(headers);
    let merged = match headers.get(VARY).map(HeaderValue::as_bytes) {
        Some(v) if !v.is_empty() => [v, b", Accept"].concat(),
        _ => b"Accept".to_vec(),
    };
    if let Ok(v) = HeaderValue::from_bytes(&merged) {
        headers.insert(VARY, v);
    }
}

/// One stream's state between two chunks.
struct Watch {
    engine: Arc<Engine>,
    /// The job's wake-up, held for as long as the stream lives.
    signal: Arc<Notify>,
    tenant: String,
    id: String,
    base: String,
    /// The highest event id the client has (sent here, or its `Last-Event-ID`).
    last: u64,
    /// The connect-time event, sent before anything is read again.
    first: Option<Bytes>,
    /// Read the store before waiting (woken, the re-read tick, or an event just sent).
    read_now: bool,
    /// The terminal state was seen: nothing follows.
    closed: bool,
    /// When something was last written (the heartbeat counts from it).
    written: Instant,
    heartbeat: Duration,
    drain: Drain,
    /// Counted as open while it lives (`None` only before the stream is made).
    open: Option<Open>,
}

/// One open stream in `prefer_gateway_event_streams`, until dropped — with the body, when
/// the stream ends or the client goes away.
struct Open(Gauge);

impl Open {
    fn new(route: &str) -> Open {
        let labels = RouteLabels {
            route: RouteLabel::new(route),
        };
        let gauge = crate::metrics::get()
            .event_streams
            .get_or_create(&labels)
            .clone();
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What one read of the job found, for the stream.
enum Read {
    /// The job, and its queue position when it is pending.
    Job(Box<Job>, Option<u64>),
    /// Expired or gone: the stream ends (a reconnect gets the `410` or `404`).
    Gone,
    /// The store did not answer: the next tick tries again.
    Failed,
}

impl Watch {
    /// The event for `job`'s state if the client has not seen it; marks the stream closed
    /// once the state is terminal.
    fn event(&mut self, job: &Job, position: Option<u64>) -> Option<Bytes> {
        let id = event_id(job);
        let terminal = job.status.is_terminal();
        self.closed |= terminal;
        if id <= self.last {
            return None;
        }
        self.last = id;
        // The next step reads again after registering for the wake-up: a change made
        // between this read and that registration is then not left to the re-read tick.
        self.read_now = !terminal;
        self.written = Instant::now();
        Some(render(&self.engine, job, position, &self.base))
    }

    async fn read(&self) -> Read {
        match self
            .engine
            .store
            .get(&self.tenant, &self.id, self.engine.now())
            .await
        {
            Ok(Lookup::Found(job)) => {
                // Only a pending state's event shows a position, and only a new state is
                // sent: the read is skipped for every other state and every re-read.
                let position = if job.status == JobStatus::Pending && event_id(&job) > self.last {
                    self.engine.progress(&job).await.queue_position
                } else {
                    None
                };
                Read::Job(Box::new(job), position)
            }
            Ok(Lookup::Expired | Lookup::Missing) => Read::Gone,
            Err(e) => {
                // Counted like every store error; logged quietly, as every open stream
                // would log it once a second while the store is down.
                crate::metrics::get().store_errors.inc();
                tracing::debug!(job = %self.id, error = %e, "live status: store read failed");
                Read::Failed
            }
        }
    }

    /// The next chunk — an event or a heartbeat — or `None` when the stream ends.
    async fn next(mut self) -> Option<(Bytes, Watch)> {
        if let Some(first) = self.first.take() {
            return Some((first, self));
        }
        let signal = Arc::clone(&self.signal);
        let mut tick = Instant::now() + REREAD;
        loop {
            if self.closed {
                return None;
            }
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if std::mem::take(&mut self.read_now) {
                tick = Instant::now() + REREAD;
                match self.read().await {
                    Read::Job(job, position) => {
                        if let Some(event) = self.event(&job, position) {
                            return Some((event, self));
                        }
                    }
                    Read::Gone => return None,
                    Read::Failed => {}
                }
                if self.closed {
                    return None;
                }
            }
            let beat_at = self.written + self.heartbeat;
            tokio::select! {
                () = &mut notified => self.read_now = true,
                () = tokio::time::sleep_until(tick) => self.read_now = true,
                () = tokio::time::sleep_until(beat_at) => {
                    self.written = Instant::now();
                    // A wake-up while the heartbeat is written would find nobody
                    // registered: read once more when the next chunk is asked for.
                    self.read_now = true;
                    return Some((Bytes::from_static(HEARTBEAT), self));
                }
                () = drain::drained(self.drain.clone()) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests;
