//! The client-facing listener: accept loop, HTTP/1.1 + h2c, graceful drain.
//!
//! hyper-util's auto builder sniffs the connection preface, so one port serves HTTP/1.1 and
//! cleartext HTTP/2 (prior knowledge). The HTTP/1 header read timeout protects against
//! slow-loris clients; a connection that sends no request at all within that time is closed
//! too. On shutdown the listener closes at once, idle keep-alive connections
//! are closed, busy ones finish their in-flight requests (HTTP/2 gets `GOAWAY`), and after
//! `drain_timeout` whatever is left is dropped. An `accept` error (e.g. out of file
//! descriptors) is logged and retried after a short pause instead of ending the server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::gateway::Gateway;

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
        // hyper's own limits sit above the gateway's (see `gateway::MAX_HEADERS`), so an
        // oversized head is answered by the gateway as a 431 problem, not a bare 431.
        .max_headers(crate::gateway::MAX_HEADERS * 4)
        .max_buf_size(crate::gateway::MAX_HEADER_BYTES * 4);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(Some(100_000));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        let gw = Arc::clone(&gateway);
        let first_request = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&first_request);
        let svc = service_fn(move |req| {
            seen.store(true, Ordering::Relaxed);
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(gw.handle(req, remote).await) }
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        let first_within = cfg.header_read_timeout;
        tokio::spawn(async move {
            tokio::pin!(conn);
            // hyper's header timeout starts only once HTTP/1 is detected; a client that
            // sends nothing (or stops inside the HTTP/2 preface) is cut here instead.
            let result = tokio::select! {
                r = &mut conn => r,
                () = tokio::time::sleep(first_within) => {
                    if !first_request.load(Ordering::Relaxed) {
                        tracing::debug!(%remote, "no request within the header timeout; closing");
                        return;
                    }
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
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
