//! The pooled upstream HTTP client and its resolve-once DNS.
//!
//! Upstream host names are resolved when the gateway starts (as nginx does), so a request
//! never waits on DNS: the connector asks [`StaticResolver`], which answers from that table.
//! A host that was not known at start (an absolute status URL added later) falls back to one
//! `getaddrinfo` per *new connection* — pooled keep-alive connections are reused, so even
//! then there is no lookup per request.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;

/// The client every route shares (one pool for all upstreams).
pub type HttpClient = Client<HttpConnector<StaticResolver>, Body>;

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
}

/// The addresses handed to the connector (ports are overwritten by it).
pub type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for StaticResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name
            .as_str()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if let Some(addrs) = self.table.get(&host) {
            let addrs = addrs.clone();
            return Box::pin(async move { Ok(addrs.into_iter()) });
        }
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(addrs.into_iter())
        })
    }
}

/// Builds the shared client: keep-alive pool, `TCP_NODELAY`, bounded connect time.
pub fn build(resolver: StaticResolver) -> HttpClient {
    let mut connector = HttpConnector::new_with_resolver(resolver);
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector)
}
