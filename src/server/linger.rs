//! Lingering close: when the gateway ends an HTTP/1.1 connection while the client may still
//! be sending its request body, send the answer, half-close, and read and discard what
//! keeps arriving for a bounded time before closing the socket.
//!
//! Why: a `413` (or a `400`/`408` mid-body) is answered before the body has been read, and
//! hyper then closes the connection. Closing a TCP socket with unread input makes the
//! kernel send RST, and every body byte that arrives afterwards is answered with RST too.
//! A client that writes its whole body before reading (Python's `http.client`, most SDKs,
//! anything without `Expect: 100-continue`) has its upload fail with `EPIPE`/`ECONNRESET`
//! and often never looks at the answer; on some stacks (Windows, BSD) the RST also discards
//! an answer that has already arrived, and on a lossy path a dropped answer segment is not
//! retransmitted after the reset. Measured over loopback before this module: the uploads in
//! `tests/linger.rs` were reset after 16–160 KiB, every run; Python's `http.client` posting
//! 3 MB to a 1 KiB `max_body` raised `BrokenPipeError` 7 times in 10 (10 in 10 got the
//! `413` after). Linux keeps already-received data after a reset, so a client that does
//! read after its write failed still found the answer there; Windows and BSD may not.
//!
//! How: [`Linger`] wraps the accepted `TcpStream` under hyper (and under TLS, so the
//! close-notify is written first). hyper calls `poll_shutdown` once the last answer is
//! flushed and it has decided to close; there, if the client has not closed its side and
//! may still be sending, the write half is shut (the client sees the answer and a FIN) and
//! input is drained until the client closes, or a bound is reached; only then does
//! `poll_shutdown` return and hyper drop the socket. The connection keeps its
//! `max_connections` slot and stays in the graceful-shutdown count while it lingers.
//!
//! When it lingers — like nginx's `lingering_close on`, only when more input is likely:
//! the client has not closed, the connection is not HTTP/2 (h2 has flow control and
//! `GOAWAY`), and either the latest request carried a body and was answered with an error
//! (the service reports this through [`Hints`]), or input is waiting on the socket right
//! now (one non-blocking read). A keep-alive connection pays nothing for it: per request one
//! relaxed store (replacing the first-request flag the server kept anyway), a body-state
//! check, and a compare-exchange only when a body was answered with an error; no
//! allocation per request, one small one per connection. A client that closes first skips
//! all of this; a server-side close with nothing waiting costs one non-blocking read.
//!
//! Bounds, so lingering cannot be abused ([`MAX_BYTES`], [`MAX_TIME`], [`MAX_IDLE`]):
//! nginx defaults to `lingering_time 30s` in total and `lingering_timeout 5s` between reads,
//! with no byte limit; Go's `net/http` half-closes and sleeps 500 ms (`rstAvoidanceDelay`,
//! "~latency around the planet") without reading, so a client still sending is reset anyway.
//! Here: at most **1 MiB** read, **2 s** in total, **1 s** without input. Two seconds cover
//! several round trips on any real path — the answer reaching the client and the bytes it
//! had in flight arriving — which is all lingering is for; nginx's 30 s also serves clients
//! that must push a whole send buffer out before they read, and holding a connection slot
//! that long per refused request would hand slow-loris clients a new lever. 1 MiB is a
//! tenth of the default `max_body` (10 MiB), so a client cannot make the gateway read more
//! than a legitimate upload could; it ends a fast client's drain in milliseconds.
//! Past a bound the socket is closed as before (with RST if input is still arriving).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The most input read and discarded while lingering.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// The longest a connection lingers in total.
pub const MAX_TIME: Duration = Duration::from_secs(2);
/// The longest a lingering connection waits for its next input.
pub const MAX_IDLE: Duration = Duration::from_secs(1);

/// The size of each discarding read (on the stack).
const CHUNK: usize = 8 * 1024;

// === impl Hints ===

/// What the request side of one connection tells its [`Linger`]: whether any request
/// arrived, and whether the latest one left a body unread.
#[derive(Debug, Default)]
pub struct Hints(AtomicU8);

/// No request yet.
const NONE: u8 = 0;
/// An HTTP/1 request arrived; nothing suggests its body is still coming.
const H1: u8 = 1;
/// The latest HTTP/1 request carried a body and was answered with an error: the answer
/// may well have come before the body was read.
const REFUSED: u8 = 2;
/// HTTP/2: never linger.
const H2: u8 = 3;

impl Hints {
    /// Called as each request arrives.
    pub fn request(&self, version: Version) {
        let state = if version == Version::HTTP_2 { H2 } else { H1 };
        self.0.store(state, Ordering::Relaxed);
    }

    /// Called with each answer: `had_body` is whether the request carried a body.
    pub fn answered(&self, had_body: bool, status: StatusCode) {
        if had_body && (status.is_client_error() || status.is_server_error()) {
            // Never turns an HTTP/2 connection into a lingering one.
            let _ = self
                .0
                .compare_exchange(H1, REFUSED, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Whether any request has arrived on this connection.
    pub fn any_request(&self) -> bool {
        self.0.load(Ordering::Relaxed) != NONE
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

// === impl Linger ===

/// An accepted connection's IO that lingers on close (see the module docs). Reads and
/// writes pass straight through; only `poll_shutdown` differs.
#[derive(Debug)]
pub struct Linger<T> {
    io: T,
    hints: Arc<Hints>,
    peer: SocketAddr,
    /// A read returned end-of-file: the client closed its side, nothing more will come.
    eof: bool,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// Serving; `poll_shutdown` not called yet.
    Open,
    /// Closing without lingering.
    Plain,
    /// Closing: the write half is being shut, then input drained.
    Lingering(Box<Drain>),
    /// Shut down.
    Done,
}

impl<T> Linger<T> {
    /// Wraps `io`, the connection accepted from `peer`; `hints` is shared with its service.
    pub fn new(io: T, hints: Arc<Hints>, peer: SocketAddr) -> Self {
        Linger {
            io,
            hints,
            peer,
            eof: false,
            phase: Phase::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> Linger<T> {
    /// Decides at close whether to linger; `Some(bytes read deciding)` when it should.
    fn should_linger(&mut self, cx: &mut Context<'_>) -> Option<u64> {
        if self.eof {
            return None;
        }
        match self.hints.get() {
            H2 => None,
            REFUSED => Some(0),
            _ => {
                // Input waiting right now (a body still arriving, pipelined bytes)?
                let mut chunk = [0u8; CHUNK];
                let mut buf = ReadBuf::new(&mut chunk);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                        Some(buf.filled().len() as u64)
                    }
                    _ => None,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Linger<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if asked && buf.filled().len() == before {
            this.eof = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Open => {
                    this.phase = match this.should_linger(cx) {
                        Some(read) => Phase::Lingering(Box::new(Drain::new(read))),
                        None => Phase::Plain,
                    };
                }
                Phase::Plain => {
                    let shut = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
                    this.phase = Phase::Done;
                    return Poll::Ready(shut);
                }
                Phase::Lingering(drain) => {
                    if !drain.write_shut {
                        if let Err(e) = ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
                            this.phase = Phase::Done;
                            return Poll::Ready(Err(e));
                        }
                        drain.write_shut = true;
                    }
                    let ended = ready!(drain.poll(&mut this.io, cx));
                    tracing::debug!(
                        peer = %this.peer,
                        drained = drain.read,
                        took = ?drain.started.elapsed(),
                        ended,
                        "lingering close"
                    );
                    this.phase = Phase::Done;
                    return Poll::Ready(Ok(()));
                }
                Phase::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

// === impl Drain ===

/// Reading and discarding input after the write half is shut, within the bounds.
#[derive(Debug)]
struct Drain {
    write_shut: bool,
    /// Bytes read and discarded so far.
    read: u64,
    started: Instant,
    /// When input last arrived.
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Drain {
    fn new(read: u64) -> Drain {
        let now = Instant::now();
        Drain {
            write_shut: false,
            read,
            started: now,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + MAX_IDLE)),
        }
    }

    /// Drains until the client closes or a bound is reached; says which.
    fn poll<T: AsyncRead + Unpin>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<&'static str> {
        let mut chunk = [0u8; CHUNK];
        loop {
            if self.read >= MAX_BYTES {
                return Poll::Ready("bytes");
            }
            let room = usize::try_from(MAX_BYTES - self.read).map_or(CHUNK, |r| r.min(CHUNK));
            let mut buf = ReadBuf::new(&mut chunk[..room]);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready("eof"),
                Poll::Ready(Ok(())) => {
                    self.read += buf.filled().len() as u64;
                    self.last = Instant::now();
                }
                Poll::Ready(Err(_)) => return Poll::Ready("error"),
                Poll::Pending => break,
            }
        }
        // Waiting for input: wake at the idle limit or the total limit, whichever is first.
        // The timer is only re-armed when it fires, as in `body::IdleBody`.
        let end = self.started + MAX_TIME;
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if now >= end {
                return Poll::Ready("time");
            }
            let due = self.last + MAX_IDLE;
            if now >= due {
                return Poll::Ready("idle");
            }
            self.timer.as_mut().reset(due.min(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_http1_body_answered_with_an_error_asks_for_lingering() {
        let h = Hints::default();
        assert!(!h.any_request());
        h.request(Version::HTTP_11);
        assert!(h.any_request());
        h.answered(true, StatusCode::OK);
        assert_eq!(h.get(), H1, "a body answered 200");
        h.answered(false, StatusCode::NOT_FOUND);
        assert_eq!(h.get(), H1, "no body: nothing can still be arriving");
        h.answered(true, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.get(), REFUSED);
        // The next request on a kept-alive connection starts over.
        h.request(Version::HTTP_10);
        assert_eq!(h.get(), H1);
        h.answered(true, StatusCode::BAD_GATEWAY);
        assert_eq!(h.get(), REFUSED);
    }

    #[test]
    fn http2_never_lingers() {
        let h = Hints::default();
        h.request(Version::HTTP_2);
        h.answered(true, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.get(), H2);
        assert!(h.any_request());
    }
}
