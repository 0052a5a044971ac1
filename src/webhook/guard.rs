//! The callback address guard: which URLs and addresses a webhook may be sent to. Pure —
//! no DNS, no I/O; [`super::resolve`] applies [`check_ip`] to what DNS returns.
//!
//! A callback URL is chosen by the client, so without a guard the gateway becomes a proxy
//! into its own network (SSRF): cloud metadata at 169.254.169.254, admin ports on
//! loopback, private services. Contract: behaviour §6.
//!
//! Decisions:
//!
//! - **The `url` crate parses first**, so every spelling of an address (`0x7f.1`,
//!   `2130706433`, `127.1`, `0177.0.0.1`, `%31%32%37.0.0.1`, full-width digits,
//!   `[::ffff:127.0.0.1]`) is normalised to the one address it means before anything is
//!   checked. The guard never looks at the host text itself.
//! - **Checks in a fixed order** (parse, scheme, userinfo, host, port, address) so the
//!   problem detail names the first thing wrong, and a `file:` URL reports its scheme,
//!   not a missing host.
//! - **"Public" is an explicit deny list for IPv4 and an allow-then-deny list for IPv6**:
//!   an IPv6 address must lie in global unicast `2000::/3` (everything IANA has handed
//!   out for the Internet) and outside the special blocks inside it. That refuses the
//!   listed blocks outside `2000::/3` (`fc00::/7`, `fe80::/10`, `ff00::/8`, NAT64, …) and
//!   also anything unassigned there, without a table entry each.
//! - **Embedded IPv4 is judged as IPv4**: `::ffff:a.b.c.d` (mapped) and `::a.b.c.d`
//!   (compatible) are public exactly when `a.b.c.d` is, because a dual-stack socket sends
//!   the mapped form to the IPv4 address.
//! - **Also forbidden, beyond the list**: `3fff::/20`, the second IPv6
//!   documentation prefix (RFC 9637), for the same reason as `2001:db8::/32`.
//! - **`allow_networks` match the address as given and its canonical form**, so allowing
//!   `127.0.0.0/8` also allows `[::ffff:127.0.0.1]`, the same destination.
//! - **Domain names pass the syntax check**; whether their addresses are public is only
//!   known after DNS ([`super::resolve::check_resolved`] at submit, the resolver before
//!   each attempt).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

#[cfg(test)]
mod tests;

/// Ports a callback URL may use when the config names none.
pub const DEFAULT_PORTS: [u16; 4] = [80, 443, 8080, 8443];

/// What the guard allows, from `[webhooks]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardPolicy {
    /// Whether plain `http` callback URLs are allowed (development only).
    pub allow_http: bool,
    /// Ports a callback URL may use (explicit or the scheme's default); empty = any.
    pub allow_ports: Vec<u16>,
    /// Networks exempt from the public-address rule (e.g. a loopback receiver in tests).
    pub allow_networks: Vec<IpNet>,
}

impl GuardPolicy {
    /// The policy configured in `[webhooks]`.
    pub fn from_config(cfg: &crate::config::WebhooksConfig) -> Self {
        GuardPolicy {
            allow_http: cfg.allow_http,
            allow_ports: cfg.allow_ports.clone(),
            allow_networks: cfg.allow_networks.clone(),
        }
    }
}

impl Default for GuardPolicy {
    /// https only, [`DEFAULT_PORTS`], no exempt networks.
    fn default() -> Self {
        GuardPolicy {
            allow_http: false,
            allow_ports: DEFAULT_PORTS.to_vec(),
            allow_networks: Vec::new(),
        }
    }
}

/// Why a callback URL or address is refused. Its `Display` text is written for the
/// client: it becomes the `detail` of the `422` problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a URL at all; carries the parser's reason.
    Unparsable(String),
    /// A scheme other than `https` (or `http` where allowed); carries the scheme.
    Scheme(String),
    /// The URL carries a user name or password.
    Userinfo,
    /// The port (explicit or the scheme's default) is not allowed.
    Port(u16),
    /// The URL has no host.
    NoHost,
    /// The address is not public and not in an allowed network.
    Forbidden(IpAddr),
    /// The host name has no address (or could not be resolved).
    NoAddress,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unparsable(why) => write!(f, "the callback URL is not a valid URL: {why}"),
            Refusal::Scheme(scheme) => write!(
                f,
                "the callback URL scheme `{scheme}` is not allowed: callbacks use https"
            ),
            Refusal::Userinfo => f.write_str(
                "the callback URL must not contain a user name or password; \
                 callbacks are authenticated by their signature",
            ),
            Refusal::Port(port) => {
                write!(f, "the callback URL port {port} is not allowed")
            }
            Refusal::NoHost => f.write_str("the callback URL has no host"),
            Refusal::Forbidden(ip) => match reason(*ip) {
                Some(why) => write!(
                    f,
                    "the callback address {ip} is not public ({why}); \
                     callbacks are only sent to public addresses"
                ),
                // Only reached for an allowed-network address refused by hand.
                None => write!(f, "the callback address {ip} is not allowed"),
            },
            Refusal::NoAddress => f.write_str("the callback host has no address"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Parses and checks a callback URL without DNS: scheme `https` (or `http` when
/// allowed), no userinfo, a host, an allowed port, and — when the host is an IP literal —
/// an allowed address. Returns the parsed (normalised) URL to send to.
pub fn check_url(raw: &str, p: &GuardPolicy) -> Result<Url, Refusal> {
    let url = Url::parse(raw).map_err(|e| Refusal::Unparsable(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if p.allow_http => {}
        other => return Err(Refusal::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Userinfo);
    }
    let host = url.host().ok_or(Refusal::NoHost)?;
    // Both allowed schemes have a default port, so `None` cannot happen; refusing it
    // anyway keeps a future scheme from slipping past the allow-list.
    let port = url.port_or_known_default().ok_or(Refusal::Port(0))?;
    if !p.allow_ports.is_empty() && !p.allow_ports.contains(&port) {
        return Err(Refusal::Port(port));
    }
    match host {
        Host::Ipv4(v4) => check_ip(IpAddr::V4(v4), p)?,
        Host::Ipv6(v6) => check_ip(IpAddr::V6(v6), p)?,
        Host::Domain(_) => {}
    }
    Ok(url)
}

/// Allows `ip` when it is public or inside one of `p.allow_networks`.
pub fn check_ip(ip: IpAddr, p: &GuardPolicy) -> Result<(), Refusal> {
    let canonical = ip.to_canonical();
    let exempt = p
        .allow_networks
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&canonical));
    if exempt || is_public(ip) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(ip))
    }
}

/// Whether `ip` is a public Internet address a callback may go to.
pub fn is_public(ip: IpAddr) -> bool {
    reason(ip).is_none()
}

// === the address tables ===

/// IPv4 blocks that are not public: network, prefix length, what it is.
const V4_FORBIDDEN: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\", 0.0.0.0/8"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private network, 10.0.0.0/8"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "carrier-grade NAT, 100.64.0.0/10",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback, 127.0.0.0/8"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local, 169.254.0.0/16",
    ),
    (
        Ipv4Addr::new(172, 16, 0, 0),
        12,
        "private network, 172.16.0.0/12",
    ),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments, 192.0.0.0/24",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation, 192.0.2.0/24",
    ),
    (
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "private network, 192.168.0.0/16",
    ),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking, 198.18.0.0/15",
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation, 198.51.100.0/24",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation, 203.0.113.0/24",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast, 224.0.0.0/4"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved or broadcast, 240.0.0.0/4",
    ),
];

/// IPv6 blocks that are not public. Those outside `2000::/3` are refused by that rule
/// anyway; they are listed so the refusal names what the address is.
const V6_FORBIDDEN: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified, ::/128"),
    (Ipv6Addr::LOCALHOST, 128, "loopback, ::1/128"),
    (v6(0x64, 0xff9b, 0, 0), 96, "NAT64, 64:ff9b::/96"),
    (
        v6(0x64, 0xff9b, 1, 0),
        48,
        "local-use NAT64, 64:ff9b:1::/48",
    ),
    (v6(0x100, 0, 0, 0), 64, "discard-only, 100::/64"),
    (v6(0x2001, 0xdb8, 0, 0), 32, "documentation, 2001:db8::/32"),
    (
        v6(0x2001, 0, 0, 0),
        23,
        "IETF protocol assignments, 2001::/23",
    ),
    (v6(0x2002, 0, 0, 0), 16, "6to4, 2002::/16"),
    (v6(0x3fff, 0, 0, 0), 20, "documentation, 3fff::/20"),
    (v6(0xfc00, 0, 0, 0), 7, "unique local, fc00::/7"),
    (v6(0xfe80, 0, 0, 0), 10, "link-local, fe80::/10"),
    (v6(0xfec0, 0, 0, 0), 10, "site-local, fec0::/10"),
    (v6(0xff00, 0, 0, 0), 8, "multicast, ff00::/8"),
];

/// An IPv6 address from its first four 16-bit groups (the rest zero).
const fn v6(a: u16, b: u16, c: u16, d: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)
}

/// Why `ip` is not public, or `None` when it is.
fn reason(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_string),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some((form, v4)) => v4_reason(v4).map(|why| format!("{form} {v4}: {why}")),
            None => v6_reason(v6).map(str::to_string),
        },
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_FORBIDDEN
        .iter()
        .find(|(net, len, _)| prefix_match(bits.into(), u32::from(*net).into(), *len, 32))
        .map(|(_, _, why)| *why)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let listed = V6_FORBIDDEN
        .iter()
        .find(|(net, len, _)| prefix_match(bits, u128::from(*net), *len, 128))
        .map(|(_, _, why)| *why);
    // Global unicast is 2000::/3: the top three bits are 001.
    let global_unicast = bits >> 125 == 0b001;
    listed.or((!global_unicast).then_some("not global unicast, outside 2000::/3"))
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
/// (`::a.b.c.d`) address, with the form's name. `::` and `::1` are IPv6's own
/// unspecified and loopback addresses, not compatible forms.
fn embedded_v4(ip: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(("IPv4-mapped", v4));
    }
    let bits = u128::from(ip);
    match u32::try_from(bits) {
        Ok(low) if bits > 1 => Some(("IPv4-compatible", Ipv4Addr::from(low))),
        _ => None,
    }
}

/// Whether the top `len` of `width` bits of `addr` equal those of `net`.
fn prefix_match(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let shift = width.saturating_sub(u32::from(len));
    // `checked_shr` is `None` only for a shift of 128 (a /0 over IPv6): every address.
    addr.checked_shr(shift) == net.checked_shr(shift)
}
