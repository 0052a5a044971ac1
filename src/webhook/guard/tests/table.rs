//! The guard's address table: each forbidden range's first, last and an inside address,
//! and the public neighbours just outside it; IPv4-mapped and -compatible forms.
//! Test-only: `guard/tests.rs` declares it as `mod table;`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::{check_ip, is_public, Refusal, V4_FORBIDDEN, V6_FORBIDDEN};
use super::{ip, policy};

/// Each range's first, last and an inside address, and the public neighbours just
/// outside it. `true` = public.
const TABLE: &[(&str, bool)] = &[
    // 0.0.0.0/8
    ("0.0.0.0", false),
    ("0.1.2.3", false),
    ("0.255.255.255", false),
    ("1.0.0.0", true),
    // 10/8
    ("9.255.255.255", true),
    ("10.0.0.0", false),
    ("10.1.2.3", false),
    ("10.255.255.255", false),
    ("11.0.0.0", true),
    // 100.64/10 CGNAT
    ("100.63.255.255", true),
    ("100.64.0.0", false),
    ("100.100.100.100", false),
    ("100.127.255.255", false),
    ("100.128.0.0", true),
    // 127/8
    ("126.255.255.255", true),
    ("127.0.0.0", false),
    ("127.0.0.1", false),
    ("127.255.255.255", false),
    ("128.0.0.0", true),
    // 169.254/16, cloud metadata inside
    ("169.253.255.255", true),
    ("169.254.0.0", false),
    ("169.254.169.254", false),
    ("169.254.255.255", false),
    ("169.255.0.0", true),
    // 172.16/12
    ("172.15.255.255", true),
    ("172.16.0.0", false),
    ("172.20.1.1", false),
    ("172.31.255.255", false),
    ("172.32.0.0", true),
    // 192.0.0/24 and 192.0.2/24, with the public /24 between them
    ("191.255.255.255", true),
    ("192.0.0.0", false),
    ("192.0.0.8", false),
    ("192.0.0.255", false),
    ("192.0.1.0", true),
    ("192.0.1.255", true),
    ("192.0.2.0", false),
    ("192.0.2.123", false),
    ("192.0.2.255", false),
    ("192.0.3.0", true),
    // 192.168/16
    ("192.167.255.255", true),
    ("192.168.0.0", false),
    ("192.168.1.1", false),
    ("192.168.255.255", false),
    ("192.169.0.0", true),
    // 198.18/15 benchmarking
    ("198.17.255.255", true),
    ("198.18.0.0", false),
    ("198.19.255.255", false),
    ("198.20.0.0", true),
    // 198.51.100/24 and 203.0.113/24 documentation
    ("198.51.99.255", true),
    ("198.51.100.0", false),
    ("198.51.100.255", false),
    ("198.51.101.0", true),
    ("203.0.112.255", true),
    ("203.0.113.0", false),
    ("203.0.113.255", false),
    ("203.0.114.0", true),
    // 224/4 multicast, 240/4 reserved + broadcast
    ("223.255.255.255", true),
    ("224.0.0.0", false),
    ("224.0.0.251", false),
    ("239.255.255.255", false),
    ("240.0.0.0", false),
    ("250.1.2.3", false),
    ("255.255.255.255", false),
    // ordinary public IPv4
    ("8.8.8.8", true),
    ("1.1.1.1", true),
    ("93.184.215.14", true),
    // IPv6 unspecified, loopback, and IPv4-compatible forms next to them
    ("::", false),
    ("::1", false),
    ("::2", false),
    // link-local fe80::/10, site-local fec0::/10
    ("fe80::", false),
    ("fe80::1", false),
    ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("fec0::", false),
    ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // ULA fc00::/7
    ("fc00::", false),
    ("fd12:3456:789a::1", false),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // multicast ff00::/8
    ("ff00::", false),
    ("ff02::1", false),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    // documentation 2001:db8::/32 (and its public neighbours) and 3fff::/20
    ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ("2001:db8::", false),
    ("2001:db8::1", false),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("2001:db9::", true),
    ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ("3fff::", false),
    ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("3fff:1000::", true),
    // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48
    ("64:ff9b::", false),
    ("64:ff9b::808:808", false),
    ("64:ff9b::ffff:ffff", false),
    ("64:ff9b:1::", false),
    ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", false),
    // 6to4 2002::/16
    ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ("2002::", false),
    ("2002:c000:204::1", false),
    ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("2003::", true),
    // discard-only 100::/64
    ("100::", false),
    ("100::ffff:ffff:ffff:ffff", false),
    // IETF special 2001::/23: Teredo 2001::/32, benchmarking 2001:2::/48
    ("2001::", false),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
    ("2001:2::1", false),
    ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("2001:200::", true),
    // outside global unicast 2000::/3
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
    ("2000::", true),
    ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ("4000::", false),
    // ordinary public IPv6
    ("2606:4700:4700::1111", true),
    ("2001:4860:4860::8888", true),
    // IPv4-mapped forms judge the embedded address
    ("::ffff:0.0.0.0", false),
    ("::ffff:10.0.0.1", false),
    ("::ffff:100.64.0.1", false),
    ("::ffff:127.0.0.1", false),
    ("::ffff:169.254.169.254", false),
    ("::ffff:172.16.0.1", false),
    ("::ffff:192.168.0.1", false),
    ("::ffff:198.18.0.1", false),
    ("::ffff:224.0.0.1", false),
    ("::ffff:255.255.255.255", false),
    ("::ffff:8.8.8.8", true),
    ("::ffff:100.63.255.255", true),
    // IPv4-compatible forms too
    ("::127.0.0.1", false),
    ("::10.0.0.1", false),
    ("::169.254.169.254", false),
    ("::192.0.2.1", false),
    ("::8.8.8.8", true),
];

#[test]
fn address_table() {
    assert!(TABLE.len() >= 60, "{} addresses", TABLE.len());
    for (addr, public) in TABLE {
        assert_eq!(is_public(ip(addr)), *public, "{addr}");
        let checked = check_ip(ip(addr), &policy());
        if *public {
            assert_eq!(checked, Ok(()), "{addr}");
        } else {
            assert_eq!(checked, Err(Refusal::Forbidden(ip(addr))), "{addr}");
        }
    }
}

/// Every block in the guard's own tables is closed at both ends, whatever the table
/// above happens to list.
#[test]
fn every_listed_block_is_forbidden_from_first_to_last() {
    for (net, len, why) in V4_FORBIDDEN {
        let first = u32::from(*net);
        let last = first | (u32::MAX >> len);
        for bits in [first, last] {
            let addr = IpAddr::V4(Ipv4Addr::from(bits));
            assert!(!is_public(addr), "{addr} ({why})");
            let mapped = IpAddr::V6(Ipv4Addr::from(bits).to_ipv6_mapped());
            assert!(!is_public(mapped), "{mapped} ({why})");
        }
    }
    for (net, len, why) in V6_FORBIDDEN {
        let first = u128::from(*net);
        let last = first | u128::MAX.checked_shr(u32::from(*len)).unwrap_or(0);
        for bits in [first, last] {
            let addr = IpAddr::V6(Ipv6Addr::from(bits));
            assert!(!is_public(addr), "{addr} ({why})");
        }
    }
}
