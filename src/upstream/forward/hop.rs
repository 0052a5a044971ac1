//! Hop-by-hop headers (RFC 9110 §7.6.1): which they are, and removing them — with every
//! header `Connection` names — in one scan over the names (the forwarding hot path).

use http::header::{self, HeaderMap, HeaderName};

/// How many names [`HOP_BY_HOP`] lists (`Upgrade` is handled beside them).
const HOPS: usize = 8;
static HOP_BY_HOP: [HeaderName; HOPS] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Where `name` sits in [`HOP_BY_HOP`] (`HOPS` for `Upgrade`, `HOPS + 1` for `Expect`).
/// One `match` on the (lower-case) name: the compiler switches on its length first, so a
/// common header costs one length test or one short compare, not nine name comparisons.
fn hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => HOPS,
        "expect" => HOPS + 1,
        _ => return None,
    })
}

/// Removes hop-by-hop headers, including every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, false);
}

/// [`strip_hop_by_hop`], and `Expect` too when `expect` (requests: the gateway answers
/// `100-continue` itself) — found in the same scan, so a request without one costs no
/// lookup for it.
pub(super) fn strip(headers: &mut HeaderMap, expect: bool) {
    // Hot path: most messages carry no hop-by-hop header but `Connection`/`Keep-Alive`, so
    // one scan over the names decides which removals are needed (each `remove` hashes).
    let mut present = [false; HOPS + 2];
    let mut any = false;
    for name in headers.keys() {
        if let Some(i) = hop_index(name) {
            present[i] = true;
            any |= i <= HOPS;
        }
    }
    if expect && present[HOPS + 1] {
        headers.remove(header::EXPECT);
    }
    if !any {
        return;
    }
    if present[0] {
        // Every `Connection` line counts: a header it names on any line is hop-by-hop.
        // `close` and `keep-alive` (nearly every `Connection` there is) name no header, so
        // they are passed over before any name is parsed or anything is collected.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case(b"close")
                    && !t.eq_ignore_ascii_case(b"keep-alive")
            })
            .filter_map(|t| HeaderName::from_bytes(t).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present[i] {
            headers.remove(name);
        }
    }
    if present[HOPS] {
        headers.remove(header::UPGRADE);
    }
}
