//! Unit tests for `guard`: the address table, every URL spelling of a forbidden address,
//! scheme, userinfo, ports, `allow_networks`, IDNA and trailing dots.
//! The whole file is test-only: its parent declares it as `#[cfg(test)] mod tests;`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use super::*;

mod table;

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn policy() -> GuardPolicy {
    GuardPolicy::default()
}

fn loopback_allowed() -> GuardPolicy {
    GuardPolicy {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        ..GuardPolicy::default()
    }
}

#[test]
fn every_spelling_of_a_forbidden_address_is_normalised_then_refused() {
    let cases = [
        ("https://127.0.0.1/", "127.0.0.1"),
        ("https://0x7f.1/", "127.0.0.1"),
        ("https://2130706433/", "127.0.0.1"),
        ("https://0x7f000001/", "127.0.0.1"),
        ("https://127.1/", "127.0.0.1"),
        ("https://127.0.1/", "127.0.0.1"),
        ("https://0177.0.0.1/", "127.0.0.1"),
        ("https://%31%32%37.0.0.1/", "127.0.0.1"),
        (
            "https://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
            "127.0.0.1",
        ),
        ("https://127.0.0.1./", "127.0.0.1"),
        ("https://0/", "0.0.0.0"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("https://0xa9fea9fe/", "169.254.169.254"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("https://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
        ("https://[0:0:0:0:0:ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
        ("https://[::127.0.0.1]/", "::127.0.0.1"),
        ("https://[::1]/", "::1"),
        ("https://[0:0::1]/", "::1"),
        ("https://[::]/", "::"),
        ("https://[fe80::1]:8443/", "fe80::1"),
        (
            "https://[::ffff:169.254.169.254]/",
            "::ffff:169.254.169.254",
        ),
        ("https://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
        ("https://10.0.0.1:8080/hook", "10.0.0.1"),
    ];
    for (url, addr) in cases {
        assert_eq!(
            check_url(url, &policy()),
            Err(Refusal::Forbidden(ip(addr))),
            "{url}"
        );
    }
}

#[test]
fn zone_ids_do_not_parse() {
    let refused = check_url("https://[fe80::1%25eth0]/", &policy());
    assert!(
        matches!(refused, Err(Refusal::Unparsable(_))),
        "{refused:?}"
    );
}

#[test]
fn public_urls_pass_and_come_back_normalised() {
    let url = check_url("https://Hooks.Example.COM:443/a/../b?x=1", &policy()).unwrap();
    assert_eq!(url.as_str(), "https://hooks.example.com/b?x=1");
    let url = check_url("https://8.8.8.8/cb", &policy()).unwrap();
    assert_eq!(url.host_str(), Some("8.8.8.8"));
    let url = check_url("https://[2606:4700:4700::1111]:8443/cb", &policy()).unwrap();
    assert_eq!(url.port(), Some(8443));
    assert!(check_url("https://[::ffff:8.8.8.8]/", &policy()).is_ok());
}

#[test]
fn idna_hosts_are_converted_to_ascii() {
    let url = check_url("https://bücher.example/cb", &policy()).unwrap();
    assert_eq!(url.host_str(), Some("xn--bcher-kva.example"));
    let url = check_url("https://\u{ff25}XAMPLE.com/", &policy()).unwrap();
    assert_eq!(url.host_str(), Some("example.com"));
}

#[test]
fn trailing_dot_domains_pass_the_syntax_check() {
    let url = check_url("https://example.com./cb", &policy()).unwrap();
    assert_eq!(url.host_str(), Some("example.com."));
}

#[test]
fn userinfo_is_refused() {
    for url in [
        "https://u:p@x.example/",
        "https://u@x.example/",
        "https://:p@x.example/",
        "https://u:p@8.8.8.8/",
    ] {
        assert_eq!(check_url(url, &policy()), Err(Refusal::Userinfo), "{url}");
    }
    // An empty userinfo is dropped by the parser: nothing is sent.
    let url = check_url("https://@x.example/", &policy()).unwrap();
    assert_eq!(url.as_str(), "https://x.example/");
}

#[test]
fn http_only_when_allowed() {
    assert_eq!(
        check_url("http://x.example/", &policy()),
        Err(Refusal::Scheme("http".into()))
    );
    let allow = GuardPolicy {
        allow_http: true,
        ..policy()
    };
    assert!(check_url("http://x.example/", &allow).is_ok());
    assert!(check_url("https://x.example/", &allow).is_ok());
    // Allowing http does not exempt the address.
    assert_eq!(
        check_url("http://127.0.0.1/", &allow),
        Err(Refusal::Forbidden(ip("127.0.0.1")))
    );
}

#[test]
fn other_schemes_are_refused_before_anything_else() {
    for (url, scheme) in [
        ("ftp://x.example/", "ftp"),
        ("file:///etc/passwd", "file"),
        ("gopher://127.0.0.1:6379/_INFO", "gopher"),
        ("ws://x.example/", "ws"),
        ("javascript:alert(1)", "javascript"),
        ("data:text/plain,hi", "data"),
        ("HTTPS+x://x.example/", "https+x"),
    ] {
        assert_eq!(
            check_url(url, &policy()),
            Err(Refusal::Scheme(scheme.into())),
            "{url}"
        );
    }
    // Scheme case is normalised by the parser.
    assert!(check_url("HTTPS://x.example/", &policy()).is_ok());
}

#[test]
fn ports_follow_the_allow_list() {
    for url in [
        "https://x.example/",
        "https://x.example:443/",
        "https://x.example:8443/",
        "https://x.example:8080/",
        "https://x.example:80/",
    ] {
        assert!(check_url(url, &policy()).is_ok(), "{url}");
    }
    for (url, port) in [
        ("https://x.example:22/", 22),
        ("https://x.example:6379/", 6379),
        ("https://x.example:444/", 444),
        ("https://x.example:65535/", 65535),
    ] {
        assert_eq!(check_url(url, &policy()), Err(Refusal::Port(port)), "{url}");
    }
    // The scheme's default port counts.
    let https_only = GuardPolicy {
        allow_http: true,
        allow_ports: vec![443],
        ..policy()
    };
    assert_eq!(
        check_url("http://x.example/", &https_only),
        Err(Refusal::Port(80))
    );
    // An explicit default port is the same port.
    assert!(check_url("https://x.example:443/", &https_only).is_ok());
    // Empty = any port.
    let any = GuardPolicy {
        allow_ports: vec![],
        ..policy()
    };
    assert!(check_url("https://x.example:22/", &any).is_ok());
    // The port is checked before the address.
    assert_eq!(
        check_url("https://127.0.0.1:22/", &policy()),
        Err(Refusal::Port(22))
    );
}

#[test]
fn allow_networks_exempt_loopback() {
    let p = loopback_allowed();
    for url in [
        "https://127.0.0.1:8443/cb",
        "https://127.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
    ] {
        assert!(check_url(url, &p).is_ok(), "{url}");
    }
    for addr in ["127.0.0.1", "127.255.255.255", "::1", "::ffff:127.0.0.2"] {
        assert_eq!(check_ip(ip(addr), &p), Ok(()), "{addr}");
    }
    // Only the listed networks.
    for addr in [
        "10.0.0.1",
        "169.254.169.254",
        "::2",
        "::127.0.0.1",
        "fe80::1",
    ] {
        assert_eq!(
            check_ip(ip(addr), &p),
            Err(Refusal::Forbidden(ip(addr))),
            "{addr}"
        );
    }
    // An exemption does not change what is public.
    assert!(!is_public(ip("127.0.0.1")));
}

#[test]
fn unparsable_urls() {
    for url in [
        "",
        "not a url",
        "/relative/path",
        "https://",
        "https://:443/",
        "https://exa mple.com/",
        "https://[::1/",
        "https://256.0.0.1/",
        "https://x.example:99999/",
    ] {
        let refused = check_url(url, &policy());
        assert!(
            matches!(refused, Err(Refusal::Unparsable(_))),
            "{url}: {refused:?}"
        );
    }
}

#[test]
fn refusals_read_well() {
    let text = |r: Refusal| r.to_string();
    assert_eq!(
        text(Refusal::Scheme("ftp".into())),
        "the callback URL scheme `ftp` is not allowed: callbacks use https"
    );
    assert!(text(Refusal::Userinfo).contains("user name or password"));
    assert_eq!(
        text(Refusal::Port(22)),
        "the callback URL port 22 is not allowed"
    );
    assert_eq!(
        text(Refusal::Forbidden(ip("169.254.169.254"))),
        "the callback address 169.254.169.254 is not public (link-local, 169.254.0.0/16); \
         callbacks are only sent to public addresses"
    );
    assert!(text(Refusal::Forbidden(ip("::ffff:10.1.2.3")))
        .contains("(IPv4-mapped 10.1.2.3: private network, 10.0.0.0/8)"));
    assert!(text(Refusal::Forbidden(ip("fd00::1"))).contains("unique local"));
    assert!(text(Refusal::Forbidden(ip("4000::1"))).contains("outside 2000::/3"));
    assert!(text(Refusal::NoAddress).contains("no address"));
    let parse = check_url("https://", &policy()).unwrap_err();
    assert!(text(parse).starts_with("the callback URL is not a valid URL: "));
}

#[test]
fn default_policy() {
    let p = GuardPolicy::default();
    assert!(!p.allow_http);
    assert_eq!(p.allow_ports, vec![80, 443, 8080, 8443]);
    assert!(p.allow_networks.is_empty());
}

#[test]
fn policy_from_config() {
    let toml = r#"
        [webhooks]
        allow_http = true
        allow_ports = [8443]
        allow_networks = ["127.0.0.0/8", "::1/128"]
    "#;
    let cfg = crate::config::load_str(toml, "test").unwrap();
    let p = GuardPolicy::from_config(&cfg.webhooks);
    assert!(p.allow_http);
    assert_eq!(p.allow_ports, vec![8443]);
    assert_eq!(p.allow_networks.len(), 2);
    assert!(check_url("http://127.0.0.1:8443/cb", &p).is_ok());
    // Defaults match the guard's own.
    let cfg = crate::config::load_str("", "test").unwrap();
    assert_eq!(
        GuardPolicy::from_config(&cfg.webhooks),
        GuardPolicy::default()
    );
}
