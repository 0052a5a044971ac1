//! prefer-gateway: one standard control — the HTTP `Prefer` header (RFC 7240) — for
//! synchronous, asynchronous and wait-then-fall-back execution, in front of any backend.
//!
//! Data flows one way: **listener → router → preference → route handler → upstream →
//! response**; each arrow is a module boundary.
//!
//! # Layout
//!
//! - [`config`]: TOML → validated [`config::Config`]; errors name the key, line and column.
//! - [`prefer`]: pure RFC 7240 parsing of `Prefer`, rendering of `Preference-Applied`.
//! - [`mode`]: pure execution-mode resolution (`Prefer` + the deprecated `mode` or a
//!   boolean opt-in field) and the `async_requires` rules.
//! - [`intent`]: reads the intent off a real request (query / JSON body) and rewrites it.
//! - [`server`]: accept loop, HTTP/1.1 + h2c, header timeout, graceful drain.
//! - [`linger`]: lingering close — drain, bounded, a body still arriving after the answer.
//! - [`gateway`]: the per-request entry point; request ids; dispatch by route kind.
//! - [`router`]: matchit path patterns + methods → route; `404` / `405` + `Allow`.
//! - [`table`]: the route table built from a config, swapped whole on reload.
//! - [`proxy`]: streaming forwarding, hop-by-hop hygiene, `X-Forwarded-*`, `Via`.
//! - [`client`]: the pooled upstream client and its resolve-once DNS table.
//! - [`task`]: `task` routes: submit, operation id, the shared poll loop.
//! - [`jobs`]: `sync` routes as durable gateway jobs: store, runner, job API.
//! - [`webhook`]: signed callbacks: address guard, signatures, durable delivery.
//! - [`problem`]: RFC 9457 problem documents for every error the gateway makes.
//! - [`admin`]: the admin listener: `/healthz`, `/readyz`, `/metrics`.
//! - [`admission`]: a route's admission endpoint: reserve, settle, release.
//! - [`metrics`]: the Prometheus metrics every part counts into.
//! - [`limits`]: the per-tenant request rate limiter (`429`).
//! - [`access_log`]: one structured line per request, secrets hashed or left out.
//! - [`body`]: the single body type (empty / one chunk / streaming).
//! - [`demo`]: the embedded demo upstreams behind `prefer-gateway demo`.
//! - [`signal`]: SIGTERM / SIGINT as a future.
//! - [`reload`]: SIGHUP re-reads the config file and swaps the routes in.
//! - [`tls`]: the optional rustls listener (ALPN `h2`, `http/1.1`).

pub mod access_log;
pub mod admin;
pub mod admission;
pub mod body;
pub mod client;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod intent;
pub mod jobs;
pub mod limits;
pub mod linger;
pub mod metrics;
pub mod mode;
pub mod prefer;
pub mod problem;
pub mod proxy;
pub mod reload;
mod request_id;
pub mod router;
pub mod server;
pub mod signal;
pub mod table;
pub mod task;
pub mod tls;
pub mod webhook;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

/// The client listener's accept queue. tokio's `TcpListener::bind` (through mio) listens
/// with std's backlog of 128: a burst of more connects than that before the accept loop
/// catches up overflows the queue, and every dropped SYN costs its client a 1 s
/// retransmit — a flood of throwaway connections then slows everyone else down. The
/// kernel caps the value at `net.core.somaxconn` (4096 by default since Linux 5.4), the
/// value Go's listeners use; nginx's default is 511.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`SO_REUSEADDR`, as tokio's own `bind`) with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A gateway bound to its listener, ready to [`Running::serve`].
pub struct Running {
    listener: TcpListener,
    admin: Option<TcpListener>,
    gateway: std::sync::Arc<gateway::Gateway>,
    server: config::ServerConfig,
    hangup: Option<reload::OnHangup>,
}

impl Running {
    /// Binds `cfg.server.listen` (port 0 picks a free port) and prepares the routes.
    pub async fn bind(cfg: &config::Config) -> Result<Running, String> {
        let listener = listen(cfg.server.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", cfg.server.listen))?;
        let admin = match cfg.server.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (admin): {e}"))?,
            ),
            None => None,
        };
        let gateway = gateway::Gateway::new(cfg).await?;
        Ok(Running {
            listener,
            admin,
            gateway,
            server: cfg.server.clone(),
            hangup: None,
        })
    }

    /// Reloads the routes from `path` on SIGHUP (see [`reload`]); `cfg` is what was loaded
    /// from it at start. The handler is installed now, before any traffic.
    pub fn reload_on_sighup(
        mut self,
        path: std::path::PathBuf,
        cfg: &config::Config,
    ) -> Result<Running, String> {
        self.hangup = Some(reload::OnHangup::install(path, cfg)?);
        Ok(self)
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// The admin listener's address, when one is configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains (see [`server`]); the admin listener
    /// (if any) answers until the drain is over.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let admin = self
            .admin
            .map(|l| tokio::spawn(admin::serve(l, std::sync::Arc::clone(&self.gateway))));
        let hangup = self
            .hangup
            .map(|h| tokio::spawn(h.run(std::sync::Arc::clone(&self.gateway))));
        server::serve(self.listener, self.gateway, &self.server, shutdown).await;
        for task in [admin, hangup].into_iter().flatten() {
            task.abort();
        }
    }
}
