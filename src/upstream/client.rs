//! The upstream HTTP/1.1 client: a keep-alive connection pool per upstream and resolve-once DNS.
//!
//! Why not hyper-util's legacy `Client`: on the proxy hot path it cost ~12k instructions per
//! request (bench/callgrind.sh) — a SipHash of the pool key three times, a `format!`
//! for `Host`, a `Checkout` future racing a connect, and a *spawned task per request* that
//! waits for the connection to become idle again. This pool does the same job with a short
//! linear lookup (a gateway talks to a handful of upstreams), a mutex-guarded stack of idle
//! connections per upstream and per thread ([`lane`]: one per core runtime, so a request
//! uses connections whose hyper task runs on its own thread), and a response body ([`Body::Upstream`]) that puts its
//! connection back itself when the last byte has been read.
//!
//! Behaviour (nginx's `upstream { keepalive …; }` is the bar):
//! - idle connections are reused most-recently-used first (warm caches, and the oldest ones
//!   age out); one idle longer than [`IDLE_TIMEOUT`] is closed, at most [`MAX_IDLE`] are kept
//!   per upstream, and every 5 s half of those unused for the whole 5 s are closed, as
//!   HAProxy's `pool-purge-delay` does ([`idle`]), so a burst's surplus does not sit open;
//! - at most [`MAX_CONNECTIONS`] are open per upstream; a request beyond that waits for a
//!   connection to come back (or to close and free its slot) instead of opening another —
//!   bursts queue in the gateway, not as thousands of sockets;
//! - a request the pooled connection could not even start (the upstream closed it while it
//!   sat idle) is sent again on a fresh connection — it was never sent, so this is safe for
//!   any method; one written into a connection that then ends without an answer (the stale
//!   keep-alive race) is sent again once only when that is safe: an idempotent method or an
//!   `Idempotency-Key`, and a body the gateway still holds ([`retry`] has the rule);
//! - a response body dropped before its end closes its connection (HTTP/1.1 cannot skip the
//!   rest), so a client that goes away never leaves a half-read connection in the pool;
//! - `Host` is added from the URI when the caller did not set one, and the request line is
//!   sent in origin form (`/path?query`).
//!
//! Upstream host names are resolved when the gateway starts (as nginx does) and again on
//! a config reload, so a request never waits on DNS: [`StaticResolver`] answers from that
//! table. A host that was not known
//! at start (an absolute status URL handed out later) falls back to one `getaddrinfo` per
//! *new connection* — pooled connections are reused, so even then there is no lookup per
//! request.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::header::{HeaderValue, HOST};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::body::{Body, Lender, Loan, UpstreamBody};

mod error;
mod idle;
pub mod lane;
mod resolver;
mod retry;

use error::root_cause;
pub use error::ClientError;
pub use resolver::StaticResolver;

/// An idle connection is closed after this long (nginx's upstream `keepalive_timeout` is 60 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most idle connections kept per upstream.
pub const MAX_IDLE: usize = 1024;
/// Longest TCP connect to an upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most open connections per upstream: beyond it a request waits for one to come free (as
/// nginx's `max_conns` with a queue). Without a cap, a burst of polls — 18,000 waiters whose
/// ticks line up — opens one connection each and runs the process out of file descriptors.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most distinct upstream authorities with a pool (more are served without pooling leftovers).
const MAX_POOLS: usize = 256;

/// The client every route shares. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced on a config reload ([`HttpClient::set_resolver`]), so upstreams a reload
    /// adds are answered from the table too.
    resolver: arc_swap::ArcSwap<StaticResolver>,
    pools: Mutex<Vec<Arc<HostPool>>>,
    max_connections: usize,
    /// Whether the idle purge task runs (started with the first pool; see [`idle`]).
    purging: std::sync::atomic::AtomicBool,
}

/// Idle connections to one upstream authority, one stack per [`lane`].
pub struct HostPool {
    authority: Authority,
    lanes: Box<[idle::IdleStack]>,
    /// One permit per open connection (held by its connection task).
    open: Arc<Semaphore>,
    /// Signalled when a connection is put back idle.
    returned: Notify,
}

impl Lender for HostPool {
    fn give_back(&self, tx: SendRequest<Body>) {
        if self.here().put(tx, IDLE_TIMEOUT, MAX_IDLE) {
            self.returned.notify_one();
        }
    }
}

impl HostPool {
    /// The calling thread's lane.
    fn here(&self) -> &idle::IdleStack {
        let n = self.lanes.len().max(1);
        &self.lanes[lane::current() % n]
    }

    /// An idle connection of this thread's lane; at the connection cap, of any lane
    /// (waiting for one to come back to this lane could wait forever while others idle).
    fn take(&self) -> Option<SendRequest<Body>> {
        let here = self.here().take(IDLE_TIMEOUT);
        if here.is_some() || self.open.available_permits() > 0 {
            return here;
        }
        self.lanes.iter().find_map(|l| l.take(IDLE_TIMEOUT))
    }

    fn is_idle_empty(&self) -> bool {
        self.lanes.iter().all(idle::IdleStack::is_empty)
    }
}

/// Builds the shared client.
pub fn build(resolver: StaticResolver) -> HttpClient {
    build_with_cap(resolver, MAX_CONNECTIONS)
}

/// [`build`] with another per-upstream connection cap (tests use small ones).
pub fn build_with_cap(resolver: StaticResolver, max_connections: usize) -> HttpClient {
    HttpClient {
        inner: Arc::new(Inner {
            resolver: arc_swap::ArcSwap::from_pointee(resolver),
            pools: Mutex::new(Vec::new()),
            max_connections: max_connections.max(1),
            purging: std::sync::atomic::AtomicBool::new(false),
        }),
    }
}

impl HttpClient {
    /// Answers new connections from `resolver` from now on (a reload resolved its hosts).
    pub fn set_resolver(&self, resolver: StaticResolver) {
        self.inner.resolver.store(Arc::new(resolver));
    }

    /// Sends `req` (absolute `http://` URI) and returns the response head; the body streams.
    /// A request that may be sent again (see [`retry`]) is copied before it goes out on a
    /// reused connection; a caller that can build it again uses [`HttpClient::request_with`].
    pub async fn request(&self, req: Request<Body>) -> Result<Response<Body>, ClientError> {
        self.request_with(req, Again::Copy).await
    }

    /// [`HttpClient::request`], with how a request whose reused connection died under it is
    /// had again (`again`).
    pub async fn request_with(
        &self,
        mut req: Request<Body>,
        again: Again<'_>,
    ) -> Result<Response<Body>, ClientError> {
        let authority = origin_form(&mut req)?;
        let pool = self.pool(&authority);

        // A pooled connection first. If it dies under the request (see `retry`), the request
        // goes out again once, on a fresh connection when one may be opened now — a second
        // pooled one may be as stale as the first. At the connection cap, wait for either.
        let mut resent = false;
        let mut avoid_pool = false;
        loop {
            let pooled = if avoid_pool { None } else { pool.take() };
            let permit = match pooled {
                Some(mut tx) => {
                    if tx.ready().await.is_err() {
                        continue;
                    }
                    match retry::send_reused(&mut tx, req, !resent, &again).await {
                        retry::Reused::Answered(resp) => return Ok(lend(resp, tx, pool)),
                        retry::Reused::Again {
                            again,
                            maybe_sent,
                            rebuilt,
                        } => {
                            req = again;
                            if rebuilt {
                                // The same request as the first, so the same upstream.
                                origin_form(&mut req)?;
                            }
                            resent |= maybe_sent;
                            avoid_pool = true;
                            continue;
                        }
                        retry::Reused::Failed(e) => return Err(ClientError::Http(e)),
                    }
                }
                None => match Arc::clone(&pool.open).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        // At the cap no fresh connection may be opened: take whichever
                        // comes first, a connection handed back or a freed slot.
                        avoid_pool = false;
                        let returned = pool.returned.notified();
                        tokio::select! {
                            () = returned => continue,
                            permit = Arc::clone(&pool.open).acquire_owned() => match permit {
                                Ok(p) => p,
                                Err(_) => continue,
                            },
                        }
                    }
                },
            };
            let mut tx = self.connect(&pool.authority, permit).await?;
            let resp = tx.send_request(req).await?;
            return Ok(lend(resp, tx, pool));
        }
    }

    fn pool(&self, authority: &Authority) -> Arc<HostPool> {
        let mut pools = self
            .inner
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = pools.iter().find(|p| p.authority == *authority) {
            return Arc::clone(p);
        }
        if pools.len() >= MAX_POOLS {
            pools.retain(|p| Arc::strong_count(p) > 1 || !p.is_idle_empty());
        }
        let p = Arc::new(HostPool {
            authority: authority.clone(),
            lanes: (0..lane::lanes())
                .map(|_| idle::IdleStack::default())
                .collect(),
            open: Arc::new(Semaphore::new(self.inner.max_connections)),
            returned: Notify::new(),
        });
        if pools.len() < MAX_POOLS {
            pools.push(Arc::clone(&p));
        }
        drop(pools);
        self.start_purging();
        p
    }

    /// Starts the idle purge ([`idle`]) once, from within the runtime: a task that holds
    /// the client weakly, so it ends with the client (a reload's old one included).
    fn start_purging(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.purging.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.purging.store(false, Ordering::Relaxed);
            return;
        };
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(idle::PURGE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let now = tick.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                let pools = inner
                    .pools
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                drop(inner);
                for l in pools.iter().flat_map(|p| p.lanes.iter()) {
                    l.purge(now, IDLE_TIMEOUT);
                }
            }
        });
    }

    async fn connect(
        &self,
        authority: &Authority,
        permit: OwnedSemaphorePermit,
    ) -> Result<SendRequest<Body>, ClientError> {
        let port = authority.port_u16().unwrap_or(80);
        let resolver = self.inner.resolver.load_full();
        let addrs = resolver
            .lookup(authority.host(), port)
            .await
            .map_err(|e| ClientError::Connect(format!("resolving {authority}: {e}")))?;
        let mut last = format!("{authority} has no addresses");
        for addr in addrs {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return handshake(stream, permit).await,
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer from {addr} within {CONNECT_TIMEOUT:?}"),
            }
        }
        Err(ClientError::Connect(last))
    }
}

/// How a request whose reused connection died under it is had again, when [`retry`]'s rule
/// allows sending it twice.
pub enum Again<'a> {
    /// A copy taken before the send (a header-map clone): for callers that cannot build the
    /// request again.
    Copy,
    /// Built again by the caller from what it still holds (a proxy: the client's request),
    /// only when it is needed — nothing is copied on the request's way out. Returns the
    /// request as first given (absolute URI), or `None` when it cannot.
    Rebuild(&'a (dyn Fn() -> Option<Request<Body>> + Send + Sync)),
}

/// Turns `req`'s absolute `http://` URI into origin form (`/path?query`), adding `Host` from
/// it when the caller set none; returns the authority to connect to.
fn origin_form(req: &mut Request<Body>) -> Result<Authority, ClientError> {
    let uri = std::mem::take(req.uri_mut());
    if uri.scheme().is_some_and(|s| *s != Scheme::HTTP) {
        return Err(ClientError::Uri(format!(
            "{uri}: only http:// is supported"
        )));
    }
    let Some(authority) = uri.authority() else {
        return Err(ClientError::Uri(format!("{uri}: no host")));
    };
    if !req.headers().contains_key(HOST) {
        let host =
            host_header(authority).ok_or_else(|| ClientError::Uri(format!("{uri}: bad host")))?;
        req.headers_mut().insert(HOST, host);
    }
    let parts = uri.into_parts();
    *req.uri_mut() = match parts.path_and_query {
        Some(pq) => Uri::from(pq),
        None => Uri::from_static("/"),
    };
    parts
        .authority
        .ok_or_else(|| ClientError::Uri("no host".to_owned()))
}

/// `Host` for an authority: the port is left out when it is 80 (as browsers and curl do).
fn host_header(authority: &Authority) -> Option<HeaderValue> {
    match authority.port_u16() {
        Some(80) => HeaderValue::from_str(authority.host()).ok(),
        _ => HeaderValue::from_str(authority.as_str()).ok(),
    }
}

async fn handshake(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
) -> Result<SendRequest<Body>, ClientError> {
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    let (tx, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Connect(root_cause(&e)))?;
    tokio::spawn(async move {
        // The connection counts against the upstream's cap until it ends.
        let _open = permit;
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(tx)
}

fn lend(
    resp: Response<hyper::body::Incoming>,
    tx: SendRequest<Body>,
    pool: Arc<HostPool>,
) -> Response<Body> {
    resp.map(|b| Body::Upstream(UpstreamBody::new(b, Loan::new(tx, pool))))
}
