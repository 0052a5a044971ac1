//! Upstream host names resolved once, at start (and again on a reload): the pool connects
//! to these addresses, so a DNS outage cannot stall requests and every replica of a name
//! is known up front.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Host name → addresses resolved once at start.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    table: Arc<HashMap<String, Vec<SocketAddr>>>,
}

impl StaticResolver {
    /// Resolves every `(host, port)` now; a host that fails to resolve is an error.
    pub async fn resolve_all(hosts: &[(String, u16)]) -> Result<Self, String> {
        let mut table = HashMap::new();
        for (host, port) in hosts {
            if table.contains_key(host) {
                continue;
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| format!("cannot resolve upstream host {host:?}: {e}"))?
                .collect();
            if addrs.is_empty() {
                return Err(format!("upstream host {host:?} has no addresses"));
            }
            table.insert(host.clone(), addrs);
        }
        Ok(StaticResolver {
            table: Arc::new(table),
        })
    }

    /// Addresses for `host` (brackets of an IPv6 literal allowed) with `port` applied.
    pub(super) async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(addrs) = self.table.get(host) {
            return Ok(addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect());
        }
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}
