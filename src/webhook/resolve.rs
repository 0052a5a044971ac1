//! The callback HTTP client and its guarded DNS resolver: connections go only to
//! addresses that passed [`check_ip`].
//!
//! Checking a host name and then letting the HTTP client resolve it again leaves a gap: a
//! DNS answer that changes between the two (DNS rebinding) sends the request to an
//! address nobody checked. So the client's own resolver is the check — [`GuardedResolver`]
//! resolves, drops every refused address, and hands reqwest only what remains; reqwest
//! connects to exactly those.
//!
//! Decisions:
//!
//! - **IP-literal hosts never reach a resolver** (the connector uses the literal as is),
//!   so the delivery code must run [`check_url`](super::guard::check_url) before every
//!   attempt; that also re-checks the scheme, userinfo and port.
//! - **The resolver filters, submit-time checking refuses**: at delivery a host with one
//!   public and one private address is still reached over the public one, while at
//!   submit ([`check_resolved`]) any refused address makes the URL a `422`, because a
//!   client naming such a host is either misconfigured or probing.
//! - **No redirects, no proxy**: a redirect would be a second, unchecked URL, and an
//!   environment proxy would make the connection go somewhere other than the checked
//!   address. `https_only` is set unless plain http is allowed, as a second lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::guard::{check_ip, GuardPolicy, Refusal};

/// A reqwest resolver that returns only addresses allowed by its [`GuardPolicy`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<GuardPolicy>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<GuardPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let found = lookup(name.as_str()).await?;
            let allowed = allowed(found, &policy)?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The allowed subset of `found`; the first refusal when none is allowed.
fn allowed(found: Vec<SocketAddr>, p: &GuardPolicy) -> Result<Vec<SocketAddr>, Refusal> {
    let mut first_refusal = None;
    let mut allowed = Vec::with_capacity(found.len());
    for addr in found {
        match check_ip(addr.ip(), p) {
            Ok(()) => allowed.push(addr),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    if allowed.is_empty() {
        Err(first_refusal.unwrap_or(Refusal::NoAddress))
    } else {
        Ok(allowed)
    }
}

/// The addresses of `host` (port 0: the connector sets the URL's port). A failed lookup
/// is [`Refusal::NoAddress`]: to the client, a name that does not resolve has none.
async fn lookup(host: &str) -> Result<Vec<SocketAddr>, Refusal> {
    match tokio::net::lookup_host((host, 0)).await {
        Ok(addrs) => Ok(addrs.collect()),
        Err(_) => Err(Refusal::NoAddress),
    }
}

/// The client callbacks are sent with: [`GuardedResolver`], no redirects, no proxy,
/// `timeout` per request, user agent `prefer-gateway-webhook/<version>`.
pub fn client(policy: Arc<GuardPolicy>, timeout: Duration) -> Result<reqwest::Client, String> {
    let https_only = !policy.allow_http;
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .https_only(https_only)
        .timeout(timeout)
        .user_agent(concat!(
            "prefer-gateway-webhook/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// The submit-time check of an already [`check_url`](super::guard::check_url)ed URL:
/// an IP-literal host must be allowed; a domain must resolve, and *every* address must
/// be allowed.
pub async fn check_resolved(url: &Url, p: &GuardPolicy) -> Result<(), Refusal> {
    match url.host() {
        None => Err(Refusal::NoHost),
        Some(Host::Ipv4(v4)) => check_ip(v4.into(), p),
        Some(Host::Ipv6(v6)) => check_ip(v6.into(), p),
        Some(Host::Domain(name)) => {
            let found = lookup(name).await?;
            if found.is_empty() {
                return Err(Refusal::NoAddress);
            }
            found.iter().try_for_each(|addr| check_ip(addr.ip(), p))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn loopback_allowed() -> GuardPolicy {
        GuardPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..GuardPolicy::default()
        }
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn filtering_keeps_only_allowed_addresses() {
        let found = vec![sock("10.0.0.1:0"), sock("8.8.8.8:0"), sock("[::1]:0")];
        assert_eq!(
            allowed(found.clone(), &GuardPolicy::default()),
            Ok(vec![sock("8.8.8.8:0")])
        );
        assert_eq!(
            allowed(found, &loopback_allowed()),
            Ok(vec![sock("8.8.8.8:0"), sock("[::1]:0")])
        );
        // None left: the first refusal says why.
        let private = vec![sock("169.254.169.254:0"), sock("10.0.0.1:0")];
        assert_eq!(
            allowed(private, &GuardPolicy::default()),
            Err(Refusal::Forbidden("169.254.169.254".parse().unwrap()))
        );
        assert_eq!(
            allowed(vec![], &GuardPolicy::default()),
            Err(Refusal::NoAddress)
        );
    }

    // `localhost` comes from /etc/hosts: no network is used.
    #[tokio::test]
    async fn localhost_is_refused_unless_allowed() {
        let url = Url::parse("https://localhost:8443/cb").unwrap();
        let refused = check_resolved(&url, &GuardPolicy::default()).await;
        assert!(
            matches!(refused, Err(Refusal::Forbidden(ip)) if ip.is_loopback()),
            "{refused:?}"
        );
        assert_eq!(check_resolved(&url, &loopback_allowed()).await, Ok(()));
    }

    #[tokio::test]
    async fn resolver_returns_only_checked_addresses() {
        let name = || "localhost".parse::<Name>().unwrap();
        let refusing = GuardedResolver::new(Arc::new(GuardPolicy::default()));
        let err = refusing.resolve(name()).await.err().unwrap();
        assert!(err.to_string().contains("is not public (loopback"), "{err}");
        let allowing = GuardedResolver::new(Arc::new(loopback_allowed()));
        let addrs: Vec<SocketAddr> = allowing.resolve(name()).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn ip_literals_are_checked_without_dns() {
        let p = GuardPolicy::default();
        let url = Url::parse("https://[::ffff:10.0.0.1]/").unwrap();
        assert_eq!(
            check_resolved(&url, &p).await,
            Err(Refusal::Forbidden("::ffff:10.0.0.1".parse().unwrap()))
        );
        let url = Url::parse("https://8.8.8.8/").unwrap();
        assert_eq!(check_resolved(&url, &p).await, Ok(()));
    }

    #[test]
    fn client_builds() {
        let policy = Arc::new(GuardPolicy::default());
        assert!(client(policy, Duration::from_secs(15)).is_ok());
    }
}
