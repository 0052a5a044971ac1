//! The one body type the gateway sends and receives.
//!
//! A closed enum instead of `BoxBody`: the hot proxy path passes hyper's `Incoming` straight
//! through (no allocation, no dynamic dispatch), and the gateway's own answers are a single
//! `Bytes` chunk. Both directions (client → upstream, upstream → client) use it, so the
//! pooled upstream client has exactly one body type. Upstream responses arrive as
//! [`Body::Upstream`], which hands its connection back to the pool when fully read. The
//! one answer the gateway writes piece by piece (a live status stream, see
//! `jobs::events`) is [`Body::Stream`]: boxed, since it is rare and long-lived.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Where a lent upstream connection goes back once its response has been read to the end.
/// The upstream pool implements it ([`crate::upstream::client`]); the body only knows to
/// call it — one dynamic call per response, no allocation (the pool is already an `Arc`).
pub trait Lender: Send + Sync {
    /// Takes the connection back (it may be reused for the next request).
    fn give_back(&self, tx: hyper::client::conn::http1::SendRequest<Body>);
}

/// A pooled connection on loan to one response body.
pub struct Loan {
    tx: hyper::client::conn::http1::SendRequest<Body>,
    to: std::sync::Arc<dyn Lender>,
}

impl Loan {
    /// Connection `tx`, lent by `to`.
    pub fn new(
        tx: hyper::client::conn::http1::SendRequest<Body>,
        to: std::sync::Arc<dyn Lender>,
    ) -> Loan {
        Loan { tx, to }
    }

    /// Returns the connection to its pool (the response was read to its end).
    pub fn give_back(self) {
        self.to.give_back(self.tx);
    }
}

/// A request or response body: nothing, one buffered chunk, or a stream from a peer.
#[derive(Debug, Default)]
pub enum Body {
    /// No bytes at all.
    #[default]
    Empty,
    /// One chunk, yielded once.
    Full(Option<Bytes>),
    /// A streaming body received from a client.
    Incoming(Incoming),
    /// A response body from an upstream; its connection goes back to the pool at the end.
    Upstream(UpstreamBody),
    /// A client's request body with an idle limit between frames (`body_idle_timeout`).
    Idle(IdleBody),
    /// An answer the gateway makes as it goes; dropping it (the client left) drops the
    /// stream and whatever it waits on.
    Stream(Generated),
}

/// See [`Body::Stream`]: chunks from a stream, each sent as soon as it is produced.
///
/// hyper's server (with upgrades) wants a `Sync` body, and a stream that awaits the store
/// is only `Send`. The `Mutex` makes it `Sync` without a lock ever being taken: the body
/// is only polled through `&mut`, where [`Mutex::get_mut`] reaches the stream directly.
pub struct Generated(std::sync::Mutex<Pin<Box<dyn Stream<Item = Bytes> + Send>>>);

impl Generated {
    /// A body of the chunks `stream` yields, ending when it does.
    pub fn new(stream: impl Stream<Item = Bytes> + Send + 'static) -> Generated {
        Generated(std::sync::Mutex::new(Box::pin(stream)))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let stream = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        stream
            .as_mut()
            .poll_next(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated").finish_non_exhaustive()
    }
}

impl Body {
    /// The client's body `inner`, failing with [`BodyError::Idle`] when no frame arrives
    /// for `idle`. An already finished body (no body at all) is passed through unwrapped:
    /// it needs no timer.
    pub fn idle_limited(inner: Incoming, idle: Duration) -> Body {
        if http_body::Body::is_end_stream(&inner) {
            return Body::Incoming(inner);
        }
        let now = Instant::now();
        Body::Idle(IdleBody {
            inner,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        })
    }
}

/// Why reading a body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The peer's connection failed.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// No data for this long.
    #[error("no body data for {0:?}")]
    Idle(Duration),
}

impl BodyError {
    /// The `BodyError` in `e`'s chain of causes, if any. An upstream call that fails with
    /// one failed because the client's request body it was streaming failed (it stopped
    /// mid-way, or went idle): the client's fault, not the upstream's.
    pub fn find_in<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e BodyError> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(b) = err.downcast_ref::<BodyError>() {
                return Some(b);
            }
            cur = err.source();
        }
        None
    }
}

/// See [`Body::idle_limited`]. The timer is only re-armed when it fires: a frame just
/// notes the time, so a large upload costs one clock read per frame, not a timer update.
pub struct IdleBody {
    inner: Incoming,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for IdleBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleBody")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl IdleBody {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Poll::Ready(frame) = http_body::Body::poll_frame(Pin::new(&mut self.inner), cx) {
            self.last = Instant::now();
            return Poll::Ready(frame.map(|r| r.map_err(BodyError::Hyper)));
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return Poll::Ready(Some(Err(BodyError::Idle(self.idle))));
            }
            // Data arrived since the timer was set: wait out the rest of the new window.
            self.timer.as_mut().reset(due);
        }
    }
}

/// An upstream response body that returns its keep-alive connection to the pool once the
/// last frame has been read (see [`crate::upstream::client`]). Dropped early, it closes it instead.
pub struct UpstreamBody {
    inner: Incoming,
    loan: Option<Loan>,
}

impl UpstreamBody {
    /// `inner`, read over the connection `loan`.
    pub fn new(inner: Incoming, loan: Loan) -> Self {
        let mut b = UpstreamBody {
            inner,
            loan: Some(loan),
        };
        if http_body::Body::is_end_stream(&b.inner) {
            b.finish();
        }
        b
    }

    fn finish(&mut self) {
        if let Some(loan) = self.loan.take() {
            loan.give_back();
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Body {
    /// A body of exactly these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(bytes))
        }
    }
}

impl From<Incoming> for Body {
    fn from(b: Incoming) -> Self {
        Body::Incoming(b)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(chunk) => Poll::Ready(chunk.take().map(|b| Ok(Frame::data(b)))),
            Body::Incoming(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BodyError::Hyper))),
            Body::Upstream(up) => {
                let polled = Pin::new(&mut up.inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => up.finish(),
                    Poll::Ready(Some(Ok(_))) if up.inner.is_end_stream() => up.finish(),
                    // A read error: the connection is broken, drop it.
                    Poll::Ready(Some(Err(_))) => up.loan = None,
                    _ => {}
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::Hyper)))
            }
            Body::Idle(b) => b.poll(cx),
            Body::Stream(g) => g.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(chunk) => chunk.is_none(),
            Body::Incoming(inner) => inner.is_end_stream(),
            Body::Upstream(up) => up.inner.is_end_stream(),
            Body::Idle(b) => b.inner.is_end_stream(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Incoming(inner) => inner.size_hint(),
            Body::Upstream(up) => up.inner.size_hint(),
            Body::Idle(b) => b.inner.size_hint(),
            // Unknown: chunked on HTTP/1.1, DATA frames as they come on HTTP/2.
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Why a body could not be read into memory.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The body is longer than the allowed limit.
    #[error("body exceeds {0} bytes")]
    TooLarge(u64),
    /// The peer failed while sending it.
    #[error("body read failed: {0}")]
    Read(hyper::Error),
    /// The client paused longer than the body idle timeout.
    #[error("no body data for {0:?}")]
    Idle(Duration),
}

/// Reads a whole body into one `Bytes`, refusing more than `limit` bytes.
///
/// A declared `Content-Length` above the limit fails before anything is read.
pub async fn collect(body: Body, limit: u64) -> Result<Bytes, CollectError> {
    use http_body::Body as _;
    use http_body_util::BodyExt;
    if body.size_hint().lower() > limit {
        return Err(CollectError::TooLarge(limit));
    }
    if let Body::Full(Some(b)) = body {
        return Ok(b);
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => match e.downcast::<BodyError>() {
            Ok(b) => match *b {
                BodyError::Hyper(h) => Err(CollectError::Read(h)),
                BodyError::Idle(d) => Err(CollectError::Idle(d)),
            },
            Err(_) => Err(CollectError::TooLarge(limit)),
        },
    }
}
