//! SIGHUP: re-read the config file and swap its routes in, or keep serving the old ones.
//!
//! What a reload changes — decided to match what nginx and Envoy operators expect from a
//! hot reload, and what can change without dropping a connection:
//!
//! - **Applied:** `[[routes]]` (added, removed, changed: paths, methods, upstreams, modes,
//!   waits, limits, task and callback settings), `[defaults]`, and the `[server].tls`
//!   certificate and key (re-read even when the paths are unchanged: certificate rotation),
//!   all at once (see [`crate::routes::table`]). Requests already in flight finish on the route they started
//!   with; queued jobs run with their route's new settings; jobs of a removed route stay
//!   queued (and run if a later reload brings the route back).
//! - **Not applied** (they are bound at start: sockets, the job store, secrets, limits the
//!   accept loop holds): `[server]`, `[jobs]` and `[webhooks]`. When one of them differs
//!   from what the process started with, the reload still applies the routes and logs a
//!   warning naming the section, so nobody believes a new listen address is live.
//! - **Refused, nothing changes:** a file that does not load (the same checks and messages
//!   as `prefer-gateway check`), an upstream host that does not resolve, or the first
//!   job-running route on a gateway started without one (the store opens only at start).
//!   The refusal is logged at `error` with the reason; the old config keeps serving.
//!
//! Each outcome is counted in `prefer_gateway_config_reloads_total{outcome}`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{self, Config};
use crate::metrics::{self, OutcomeLabels};
use crate::pipeline::Gateway;

/// The sections a reload does not apply, as the process started with them.
pub struct Fixed {
    sections: [(&'static str, String); 3],
}

impl Fixed {
    /// Remembers `cfg`'s start-only sections.
    pub fn of(cfg: &Config) -> Fixed {
        Fixed {
            sections: sections(cfg),
        }
    }

    /// The start-only sections that differ in `cfg`.
    pub fn changed_in(&self, cfg: &Config) -> Vec<&'static str> {
        let now = sections(cfg);
        self.sections
            .iter()
            .zip(now.iter())
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect()
    }
}

/// The config types have no `PartialEq` (durations, URLs, secrets of several kinds); their
/// `Debug` text is a faithful value dump and is only compared, never logged.
/// `[server].tls` is left out of the comparison while it stays on: its files are re-read on
/// every reload (certificate rotation); turning it on or off needs a restart and shows.
fn sections(cfg: &Config) -> [(&'static str, String); 3] {
    let server = crate::config::ServerConfig {
        tls: None,
        ..cfg.server.clone()
    };
    let tls = cfg.server.tls.is_some();
    [
        ("[server]", format!("{server:?} tls={tls}")),
        ("[jobs]", format!("{:?}", cfg.jobs)),
        ("[webhooks]", format!("{:?}", cfg.webhooks)),
    ]
}

/// Reloads `path` into `gateway` once; logs and counts the outcome.
pub async fn reload_once(path: &std::path::Path, gateway: &Gateway, fixed: &Fixed) -> bool {
    let outcome = match config::load_file(path) {
        Err(e) => Err(e.to_string()),
        Ok(cfg) => gateway.reload(&cfg).await.map(|()| cfg),
    };
    let label = match &outcome {
        Ok(cfg) => {
            let ignored = fixed.changed_in(cfg);
            if !ignored.is_empty() {
                tracing::warn!(
                    sections = %ignored.join(", "),
                    "config reload: these sections changed but apply only after a restart; \
                     the running values stay"
                );
            }
            tracing::info!(path = %path.display(), routes = cfg.routes.len(), "config reloaded");
            "applied"
        }
        Err(why) => {
            tracing::error!(
                path = %path.display(),
                error = %why,
                "config reload rejected; the running config stays"
            );
            "rejected"
        }
    };
    metrics::get()
        .reloads
        .get_or_create(&OutcomeLabels { outcome: label })
        .inc();
    outcome.is_ok()
}

/// The SIGHUP listener, installed before the gateway serves (a SIGHUP that arrives before
/// a handler exists would end the process: that is the signal's default action).
pub struct OnHangup {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    path: PathBuf,
    fixed: Fixed,
}

impl OnHangup {
    /// Installs the handler; `cfg` is the config the gateway was started with from `path`.
    pub fn install(path: PathBuf, cfg: &Config) -> Result<OnHangup, String> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?;
        Ok(OnHangup {
            #[cfg(unix)]
            signal,
            path,
            fixed: Fixed::of(cfg),
        })
    }

    /// Reloads on every SIGHUP, for as long as the gateway lives.
    pub async fn run(mut self, gateway: Arc<Gateway>) {
        #[cfg(unix)]
        while self.signal.recv().await.is_some() {
            tracing::info!(path = %self.path.display(), "SIGHUP: reloading the config");
            reload_once(&self.path, &gateway, &self.fixed).await;
        }
        #[cfg(not(unix))]
        {
            let _ = (&mut self, gateway);
            std::future::pending::<()>().await;
        }
    }
}
