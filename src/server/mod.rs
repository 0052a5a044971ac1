//! The client-facing listener: accept loop, HTTP/1.1 + h2c (or TLS), graceful drain.
//!
//! hyper-util's auto builder sniffs the connection preface, so one port serves HTTP/1.1 and
//! cleartext HTTP/2 (prior knowledge); with `[server].tls` each connection first completes a
//! rustls handshake (see [`crate::config::tls`]) and the same sniffing runs inside it. The HTTP/1 header read timeout protects against
//! slow-loris clients; a connection that sends no request at all within that time is closed
//! too. On shutdown the listener closes at once, idle keep-alive connections
//! are closed, busy ones finish their in-flight requests (HTTP/2 gets `GOAWAY`), and after
//! `drain_timeout` whatever is left is dropped. An `accept` error (e.g. out of file
//! descriptors) is logged and retried after a short pause instead of ending the server.
//!
//! Shutdown order: `/readyz` turns unready, requests are still served for `drain_delay`,
//! then the listener closes, new requests get `503`, requests waiting on a task or job are
//! answered at once with their `202` handle, and in-flight work has `drain_timeout`.
//!
//! Limits: at `max_connections` open connections the loop stops accepting until one closes
//! — back-pressure through the kernel's listen backlog, never a crash or an fd-exhaustion
//! storm; HTTP/2 connections allow `h2_max_concurrent_streams` streams each (more are
//! refused with `REFUSED_STREAM`, which clients retry).
//!
//! Threads: the accept loop runs on the main runtime; each accepted connection is handed
//! to one of the per-core single-threaded runtimes ([`cores`]) and served there for its
//! whole life, so a request's tasks never hop threads (the measurement is in `cores`).
//!
//! Closing: every accepted socket is wrapped in [`linger::Linger`] (under TLS), so an
//! HTTP/1.1 connection that hyper closes while the client may still be sending a body —
//! a `413` or a `400`/`408` answered mid-body — lingers, bounded, instead of resetting the
//! client before it can read the answer. The service tells it about each exchange.

pub mod admin;
pub mod cores;
pub mod linger;
pub mod reload;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body::Body as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::pipeline::Gateway;
use crate::upstream::origin::Origin;

use linger::{Hints, Linger};

/// Serves `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    cfg: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true)
        // hyper's own limits sit above the gateway's (see `limits::MAX_HEADERS`), so an
        // oversized head is answered by the gateway as a 431 problem, not a bare 431.
        .max_headers(crate::limits::MAX_HEADERS * 4)
        .max_buf_size(crate::limits::MAX_HEADER_BYTES * 4);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(Some(cfg.h2_max_concurrent_streams));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // Connections are served on per-core runtimes ([`cores`]); on this one with
    // `worker_threads = 0`, or when no thread could be started.
    let cores = match cfg.worker_threads {
        Some(0) => Ok(None),
        Some(n) => cores::Cores::start(n).map(Some),
        None => cores::Cores::per_cpu().map(Some),
    };
    let cores = match cores {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "per-core runtimes not started; serving on the main runtime");
            None
        }
    };
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    // Shutdown starts with `/readyz` unready while traffic is still served for
    // `drain_delay` (load balancers stop sending first); then the listener closes.
    let unready_then_close = {
        let gateway = Arc::clone(&gateway);
        let delay = cfg.drain_delay;
        async move {
            shutdown.await;
            gateway.set_unready();
            if !delay.is_zero() {
                tracing::info!(?delay, "unready; serving until the drain delay ends");
                tokio::time::sleep(delay).await;
            }
        }
    };
    let shutdown = unready_then_close;
    tokio::pin!(shutdown);
    // What `X-Forwarded-Port`/`-Proto` and `Forwarded` say: this listener, TLS or not.
    let listening = listener
        .local_addr()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing 50ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The address the client reached (a wildcard listener's concrete address).
        let local = stream.local_addr().unwrap_or(listening);
        let tls = gateway.tls();
        let hints = Arc::new(Hints::default());
        let conn = Conn {
            builder: Arc::clone(&builder),
            graceful: graceful.watcher(),
            gateway: Arc::clone(&gateway),
            remote,
            origin: Origin::new(remote.ip(), tls.is_some(), local),
            first_within: cfg.header_read_timeout,
            hints,
        };
        // Off this runtime's reactor, to be registered with that of the core serving it.
        let stream = match &cores {
            Some(_) => match stream.into_std() {
                Ok(std) => Accepted::Detached(std),
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "accepted connection not detached");
                    continue;
                }
            },
            None => Accepted::Here(stream),
        };
        let serving = async move {
            let _slot = slot;
            let Some(stream) = stream.attach(remote) else {
                return;
            };
            let stream = Linger::new(stream, Arc::clone(&conn.hints), remote);
            match tls {
                None => conn.serve(stream).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    // A stalled handshake is slow-loris too: the header timeout bounds it.
                    let handshake =
                        tokio::time::timeout(conn.first_within, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls_stream)) => conn.serve(tls_stream).await,
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        };
        match &cores {
            Some(cores) => cores.spawn(serving),
            None => drop(tokio::spawn(serving)),
        }
    }
    drop(listener);
    gateway.start_draining();
    tracing::info!(connections = graceful.count(), "draining");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(cfg.drain_timeout) => {
            tracing::warn!(timeout = ?cfg.drain_timeout, "drain timeout; dropping connections")
        }
    }
}

/// An accepted socket on its way to the runtime that serves it.
enum Accepted {
    /// Registered with the accept loop's runtime (no per-core runtimes).
    Here(tokio::net::TcpStream),
    /// Detached from it, for a core to register with its own reactor.
    Detached(std::net::TcpStream),
}

impl Accepted {
    /// The stream, registered with the calling runtime's reactor.
    fn attach(self, remote: SocketAddr) -> Option<tokio::net::TcpStream> {
        match self {
            Accepted::Here(s) => Some(s),
            Accepted::Detached(std) => match tokio::net::TcpStream::from_std(std) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "accepted connection lost on its core");
                    None
                }
            },
        }
    }
}

/// One accepted connection and what serving it needs.
struct Conn {
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: Watcher,
    gateway: Arc<Gateway>,
    remote: SocketAddr,
    origin: Origin,
    first_within: Duration,
    /// Shared with the connection's [`Linger`]: what its requests were and how they ended.
    hints: Arc<Hints>,
}

/// What one connection's service needs per request, behind one `Arc` (one clone each).
struct Shared {
    gateway: Arc<Gateway>,
    /// Who is on the other end, over what (for `X-Forwarded-*` and `Forwarded`).
    origin: Origin,
    hints: Arc<Hints>,
}

impl Conn {
    /// Serves HTTP/1.1 or HTTP/2 on `io` (a TCP stream, or TLS over one) until it closes.
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            builder,
            graceful,
            gateway,
            remote,
            origin,
            first_within,
            hints,
        } = self;
        let shared = Arc::new(Shared {
            gateway,
            origin,
            hints: Arc::clone(&hints),
        });
        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            shared.hints.request(req.version());
            let had_body = !req.body().is_end_stream();
            let shared = Arc::clone(&shared);
            async move {
                let resp = shared.gateway.handle(req, &shared.origin).await;
                shared.hints.answered(had_body, resp.status());
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::pin!(conn);
        // hyper's header timeout starts only once HTTP/1 is detected; a client that
        // sends nothing (or stops inside the HTTP/2 preface) is cut here instead.
        let result = tokio::select! {
            r = &mut conn => r,
            () = tokio::time::sleep(first_within) => {
                if !hints.any_request() {
                    tracing::debug!(%remote, "no request within the header timeout; closing");
                    return;
                }
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
    }
}
