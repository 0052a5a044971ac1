//! Fuzzes the callback address guard (`webhook::guard::{check_url, check_ip, is_public}`),
//! the pure SSRF check a client-chosen callback URL goes through before any DNS.
//!
//! Input: an optional policy line, then the URL text. When the input has a `\n`, the text
//! before it is the policy: space-separated `http` (allow plain http), `anyport`
//! (`allow_ports = []`), `ports=80,8443`, `allow=CIDR-or-IP` (repeatable); the rest,
//! decoded lossily as UTF-8, is the URL. Without a `\n` the whole input is the URL. The
//! URL is checked under the default policy and under the parsed one. Addresses checked:
//! the URL text itself when it parses as an IP, the IP host the URL normalises to, the
//! last 4 and 16 input bytes as IPv4/IPv6, and the IPv4-mapped and IPv4-compatible forms
//! of every IPv4 address.
//!
//! Invariants checked (src/webhook/guard.rs docs, behaviour §6):
//!
//! - never panics;
//! - under the default policy `check_ip` allows exactly `is_public` addresses, and no
//!   loopback, private, link-local, unspecified, multicast, broadcast, documentation,
//!   carrier-grade NAT, benchmarking or IPv6 unique-local address is public;
//! - embedded IPv4 is judged as IPv4: `::ffff:a.b.c.d` and `::a.b.c.d` are public exactly
//!   when `a.b.c.d` is;
//! - with `allow_networks`, `check_ip` allows exactly the public addresses plus those
//!   whose given or canonical form is in a listed network;
//! - `check_url` returns `Unparsable` exactly when the `url` crate refuses the text, and an
//!   accepted URL has an allowed scheme (`https`, or `http` when allowed), no userinfo, a
//!   host, an allowed port, an IP host that `check_ip` allows (public under the default
//!   policy) and never a domain host that is an IP address in disguise (the `url` crate
//!   must have normalised every spelling of an address, trailing root dot included);
//! - an accepted URL, re-checked in its normalised form, is accepted unchanged (the URL
//!   actually sent passes the guard too);
//! - every refusal renders a non-empty message; `Forbidden(ip)` names the address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use prefer_gateway::webhook::guard::{check_ip, check_url, is_public, GuardPolicy, Refusal};
use url::Host;

/// Non-public blocks named by the issue and the module docs, written independently of
/// the guard's own tables (std covers the rest below).
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "3fff::/20",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

fn std_says_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
        }
    }
}

fn check_address(ip: IpAddr, policy: &GuardPolicy, nets: &[IpNet]) {
    let default = GuardPolicy::default();
    let public = is_public(ip);
    assert_eq!(check_ip(ip, &default).is_ok(), public, "{ip}");
    if std_says_special(ip) {
        assert!(!public, "{ip} is special (std) but judged public");
    }
    if let Some(block) = nets_containing(ip, NOT_PUBLIC) {
        assert!(!public, "{ip} is in {block} but judged public");
    }
    match check_ip(ip, &default) {
        Err(r @ Refusal::Forbidden(_)) => {
            let msg = r.to_string();
            assert!(msg.contains(&ip.to_string()), "{msg:?} does not name {ip}");
        }
        Err(other) => panic!("check_ip refused {ip} with {other:?}"),
        Ok(()) => {}
    }

    let canonical = ip.to_canonical();
    let exempt = nets
        .iter()
        .any(|n| n.contains(&ip) || n.contains(&canonical));
    assert_eq!(
        check_ip(ip, policy).is_ok(),
        public || exempt,
        "{ip} under {policy:?}"
    );

    if let IpAddr::V4(v4) = ip {
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        let compatible = IpAddr::V6(v4.to_ipv6_compatible());
        assert_eq!(is_public(mapped), public, "{mapped} vs {v4}");
        assert_eq!(is_public(compatible), public, "{compatible} vs {v4}");
        assert_eq!(check_ip(mapped, &default).is_ok(), public);
    }
}

fn nets_containing(ip: IpAddr, blocks: &[&'static str]) -> Option<&'static str> {
    blocks
        .iter()
        .copied()
        .find(|b| b.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)))
}

fn check_url_under(raw: &str, p: &GuardPolicy, nets: &[IpNet], is_default: bool) {
    let result = check_url(raw, p);
    if let Err(r) = &result {
        assert!(!r.to_string().is_empty());
    }
    assert_eq!(
        matches!(result, Err(Refusal::Unparsable(_))),
        url::Url::parse(raw).is_err(),
        "Unparsable disagrees with the url crate for {raw:?}"
    );
    let Ok(u) = result else {
        return;
    };
    assert!(
        u.scheme() == "https" || (p.allow_http && u.scheme() == "http"),
        "scheme {} accepted under {p:?}",
        u.scheme()
    );
    assert!(u.username().is_empty() && u.password().is_none(), "{u}");
    let port = u.port_or_known_default();
    assert!(port.is_some(), "{u} has no port");
    if let Some(port) = port {
        assert!(
            p.allow_ports.is_empty() || p.allow_ports.contains(&port),
            "port {port} accepted under {p:?}"
        );
    }
    let ip = match u.host() {
        None => panic!("{u} accepted without a host"),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(d)) => {
            // One trailing dot is the root label, so `127.0.0.1.` is still an address
            // (`127.0.0.1..` is not: that name has an empty label and never resolves).
            let bare = d.strip_suffix('.').unwrap_or(d);
            assert!(
                bare.parse::<IpAddr>().is_err(),
                "domain host {d:?} of {u} is an IP address"
            );
            None
        }
    };
    if let Some(ip) = ip {
        assert!(
            check_ip(ip, p).is_ok(),
            "{u} accepted with refused address {ip}"
        );
        if is_default {
            assert!(is_public(ip), "{u} accepted with non-public {ip}");
        }
        check_address(ip, p, nets);
    }
    let again = check_url(u.as_str(), p);
    assert_eq!(
        again.as_ref().ok(),
        Some(&u),
        "re-checking the normalised URL {u} gave {again:?}"
    );
}

fn parse_policy(line: &str) -> (GuardPolicy, Vec<IpNet>) {
    let mut p = GuardPolicy::default();
    for tok in line.split(' ') {
        if tok == "http" {
            p.allow_http = true;
        } else if tok == "anyport" {
            p.allow_ports.clear();
        } else if let Some(list) = tok.strip_prefix("ports=") {
            p.allow_ports = list.split(',').filter_map(|s| s.parse().ok()).collect();
        } else if let Some(net) = tok.strip_prefix("allow=") {
            let parsed = net
                .parse::<IpNet>()
                .ok()
                .or_else(|| net.parse::<IpAddr>().ok().map(IpNet::from));
            p.allow_networks.extend(parsed);
        }
    }
    let nets = p.allow_networks.clone();
    (p, nets)
}

fuzz_target!(|data: &[u8]| {
    let (policy, nets, url_bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let (p, n) = parse_policy(&String::from_utf8_lossy(&data[..i]));
            (p, n, &data[i + 1..])
        }
        None => (GuardPolicy::default(), Vec::new(), data),
    };
    let raw = String::from_utf8_lossy(url_bytes);

    check_url_under(&raw, &GuardPolicy::default(), &[], true);
    check_url_under(&raw, &policy, &nets, false);

    if let Ok(ip) = raw.trim().parse::<IpAddr>() {
        check_address(ip, &policy, &nets);
    }
    if let Some(tail) = data.last_chunk::<4>() {
        check_address(IpAddr::V4(Ipv4Addr::from(*tail)), &policy, &nets);
    }
    if let Some(tail) = data.last_chunk::<16>() {
        check_address(IpAddr::V6(Ipv6Addr::from(*tail)), &policy, &nets);
    }
});
