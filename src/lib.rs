//! prefer-gateway: one standard control — the HTTP `Prefer` header (RFC 7240) — for
//! synchronous, asynchronous and wait-then-fall-back execution, in front of any backend.
//!
//! Data flows one way: **listener → router → preference → route handler → upstream →
//! response**; each arrow is a module boundary.
//!
//! # Layout
//!
//! Layers, each importing only from the layers below it (see `ARCHITECTURE.md`):
//!
//! 1. **Foundations** — pure or nearly so, used by everything above:
//!    [`body`] (the one body type), [`problem`] (RFC 9457 documents, made only at the edge),
//!    [`error`] (internal errors: whose fault, retry-safe), [`prefer`] (RFC 7240),
//!    [`mode`] (execution-mode resolution), [`intent`] (reading the intent off a request),
//!    [`tenant`] (the one tenant rule), [`request_id`], [`drain`] (shutdown signal),
//!    [`clock`], [`config`] (TOML → validated types), [`metrics`], [`limits`] (head limits,
//!    per-tenant rate), [`idempotency`], [`sign`] (secrets, webhook signatures),
//!    [`signed_url`] (signed result links), [`signal`].
//! 2. **[`store`]** — the job model, the `JobStore` trait, the memory / SQLite / Redis stores,
//!    the durable-delivery claim loop.
//! 3. **[`upstream`]** — the pooled client, forwarding, status polling (tasks and jobs).
//! 4. **[`routes`]** — the route table: typed routes, parsed once, swapped whole on reload.
//! 5. **Workers** — durable deliveries, store + client only: [`webhook`] (signed
//!    callbacks), [`admission`] (reserve, settle, release).
//! 6. **Handlers** — what a route kind does: [`prepare`] (the step task and sync routes
//!    share), [`proxy`], [`task`], [`jobs`].
//! 7. **[`pipeline`]** and **[`server`]** — one path for every request (route lookup →
//!    typed route → shared step → handler → one response-header writer); the accept loop,
//!    TLS, lingering close, admin listener, reload.
//! 8. **[`demo`]**, `main.rs` — the embedded demo upstreams, the CLI.

pub mod admission;
pub mod body;
pub mod clock;
pub mod config;
pub mod demo;
pub mod drain;
pub mod error;
pub mod idempotency;
pub mod intent;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod mode;
pub mod pipeline;
pub mod prefer;
pub mod prepare;
pub mod problem;
pub mod proxy;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod sign;
pub mod signal;
pub mod signed_url;
pub mod store;
pub mod task;
pub mod tenant;
pub mod upstream;
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
    gateway: std::sync::Arc<pipeline::Gateway>,
    server: config::ServerConfig,
    hangup: Option<server::reload::OnHangup>,
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
        // The address actually bound (port 0 picks one): callback URLs name it.
        let mut bound = cfg.clone();
        if let Ok(addr) = listener.local_addr() {
            bound.server.listen = addr;
        }
        let gateway = pipeline::Gateway::new(&bound).await?;
        Ok(Running {
            listener,
            admin,
            gateway,
            server: cfg.server.clone(),
            hangup: None,
        })
    }

    /// Reloads the routes from `path` on SIGHUP (see [`server::reload`]); `cfg` is what was loaded
    /// from it at start. The handler is installed now, before any traffic.
    pub fn reload_on_sighup(
        mut self,
        path: std::path::PathBuf,
        cfg: &config::Config,
    ) -> Result<Running, String> {
        self.hangup = Some(server::reload::OnHangup::install(path, cfg)?);
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
        let admin = self.admin.map(|l| {
            tokio::spawn(server::admin::serve(
                l,
                std::sync::Arc::clone(&self.gateway),
            ))
        });
        let hangup = self
            .hangup
            .map(|h| tokio::spawn(h.run(std::sync::Arc::clone(&self.gateway))));
        server::serve(self.listener, self.gateway, &self.server, shutdown).await;
        for task in [admin, hangup].into_iter().flatten() {
            task.abort();
        }
    }
}
