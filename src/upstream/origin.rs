//! Who is on the other end of a client connection, as this hop saw it — and the header
//! text every request on the connection repeats (`X-Forwarded-For`, `X-Forwarded-Port`,
//! this hop's `Forwarded` element), rendered once when the connection is accepted so the
//! hot path only clones it (see [`super::forward`] for the header rules).

use std::net::IpAddr;

use http::header::HeaderValue;

/// The client side of a request as this hop saw it: who connected, over what, to which
/// port. Made once per connection by the server, with the header text every request on
/// the connection repeats already rendered (the hot path then only clones it).
#[derive(Debug, Clone)]
pub struct Origin {
    /// The peer's address.
    pub ip: IpAddr,
    /// Whether the connection was TLS.
    pub https: bool,
    /// The gateway's own address on this connection (what the client connected to).
    pub local: std::net::SocketAddr,
    /// The listener's port, as header text (`X-Forwarded-Port`).
    pub(crate) port: HeaderValue,
    /// The peer's address as `X-Forwarded-For` text.
    pub(crate) ip_text: HeaderValue,
    /// `for=…` of this hop's `Forwarded` element.
    forwarded_for: Vec<u8>,
    /// This hop's whole `Forwarded` element when the request names no host.
    forwarded_hostless: HeaderValue,
}

impl Origin {
    /// A connection from `ip` to the gateway's `local` address.
    pub fn new(ip: IpAddr, https: bool, local: std::net::SocketAddr) -> Origin {
        let port = local.port();
        let mut text = Vec::with_capacity(45);
        ip_header_text(ip, &mut text);
        let forwarded_for = if ip.is_ipv6() {
            [&b"for=\"["[..], &text, b"]\""].concat()
        } else {
            [&b"for="[..], &text].concat()
        };
        let proto: &[u8] = if https {
            b";proto=https"
        } else {
            b";proto=http"
        };
        let hostless = [&forwarded_for[..], proto].concat();
        Origin {
            ip,
            https,
            local,
            port: HeaderValue::from(port),
            ip_text: HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("unknown")),
            forwarded_for,
            forwarded_hostless: HeaderValue::from_bytes(&hostless)
                .unwrap_or(HeaderValue::from_static("for=unknown")),
        }
    }

    pub(crate) fn proto(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// This hop's `Forwarded` element for a request to `host`: `for=…;host="…";proto=…`
    /// (see [`super::forward`]'s module doc), built at its exact size.
    pub(crate) fn forwarded(&self, host: Option<&HeaderValue>) -> HeaderValue {
        // A quoted-string may not hold `"` or `\` unescaped; a host with either is left out.
        let Some(h) = host.filter(|h| !h.as_bytes().iter().any(|b| matches!(b, b'"' | b'\\')))
        else {
            return self.forwarded_hostless.clone();
        };
        let proto = self.proto().as_bytes();
        let mut out = Vec::with_capacity(self.forwarded_for.len() + h.len() + proto.len() + 15);
        out.extend_from_slice(&self.forwarded_for);
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\";proto=");
        out.extend_from_slice(proto);
        // Exactly sized, so the buffer becomes the value without a copy.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
            .unwrap_or_else(|_| self.forwarded_hostless.clone())
    }
}

/// `ip` as header text; IPv4 is written by hand (`Display` goes through `core::fmt`).
pub(crate) fn ip_header_text(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => out.extend_from_slice(ip.to_string().as_bytes()),
    }
}
