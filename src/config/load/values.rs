//! String → typed value parsers for single config values (durations, URLs, paths, …).
//!
//! Each parser is a plain `fn(&str) -> Result<T, String>`: no serde, no spans. The serde glue
//! in [`super::raw`] runs them inside the value's own deserialisation, so toml attaches the
//! value's span and `serde_path_to_error` the key path to whatever message they return. Keeping
//! them free of serde keeps the rules readable in one place and unit-testable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use http::{HeaderName, Method};
use ipnet::IpNet;
use url::Url;

use crate::config::{ByteSize, IdSource, JsonPointer, ModeKind, RouteKind, StoreConfig};

/// Methods a route may list. Extension methods are refused so a typo (`POTS`) is an error
/// rather than a route that never matches; CONNECT and TRACE make no sense behind a gateway.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// A humantime duration: `"1s"`, `"250ms"`, `"24h"`.
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. \"1s\", \"250ms\", \"24h\""))
}

/// A duration that must be greater than zero (intervals and timeouts).
pub(super) fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err(format!("{s:?} must be greater than zero")),
        d => Ok(d),
    }
}

/// A byte size: `"10MiB"`, `"512KiB"`, `"1048576"`.
pub(super) fn size(s: &str) -> Result<ByteSize, String> {
    ByteSize::from_str(s)
}

/// A listen address `IP:PORT` (`"127.0.0.1:8080"`, `"[::1]:8080"`). Host names are refused:
/// a listener binds an address, and resolving at load time would hide which one.
pub(super) fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(s.trim()).map_err(|_| {
        format!("invalid socket address {s:?}; write IP:PORT, e.g. \"127.0.0.1:8080\"")
    })
}

/// An HTTP header name (case-insensitive; stored lower-case).
pub(super) fn header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_str(s.trim()).map_err(|_| format!("invalid header name {s:?}"))
}

/// An HTTP method, upper-cased; one of [`METHODS`].
pub(super) fn method(s: &str) -> Result<Method, String> {
    let upper = s.trim().to_ascii_uppercase();
    if !METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "unknown HTTP method {s:?}; expected one of {}",
            METHODS.join(", ")
        ));
    }
    Method::from_bytes(upper.as_bytes()).map_err(|e| format!("invalid HTTP method {s:?} ({e})"))
}

/// An RFC 3339 date-time in UTC (`"2026-06-01T00:00:00Z"`), or a bare date (`"2026-06-01"`,
/// meaning midnight UTC).
pub(super) fn date(s: &str) -> Result<SystemTime, String> {
    let t = s.trim();
    let full = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    };
    humantime::parse_rfc3339_weak(&full).map_err(|e| {
        format!("invalid date {s:?} ({e}); write an RFC 3339 UTC date-time like \"2026-06-01T00:00:00Z\"")
    })
}

/// A network in CIDR notation (`"127.0.0.0/8"`, `"fd00::/8"`); a bare address is a /32 or
/// /128. Host bits are cleared (`10.1.2.3/8` → `10.0.0.0/8`).
pub(super) fn cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    IpNet::from_str(t)
        .map(|n| n.trunc())
        .or_else(|_| IpAddr::from_str(t).map(IpNet::from))
        .map_err(|_| format!("invalid network {s:?}; write CIDR notation, e.g. \"127.0.0.0/8\""))
}

/// Any RFC 6901 JSON pointer, including `""` (the whole document).
pub(super) fn pointer(s: &str) -> Result<JsonPointer, String> {
    JsonPointer::from_str(s)
}

/// A JSON pointer that names a field (`/mode`), not the whole body: the gateway reads or
/// removes that field, which makes no sense for the root.
pub(super) fn field_pointer(s: &str) -> Result<JsonPointer, String> {
    if s.is_empty() {
        return Err("the JSON pointer must name a field, e.g. \"/mode\"".into());
    }
    pointer(s)
}

/// Where a task's operation id is: a JSON pointer or `header:NAME`.
pub(super) fn id_source(s: &str) -> Result<IdSource, String> {
    IdSource::from_str(s)
}

/// `"task" | "sync" | "proxy"`.
pub(super) fn route_kind(s: &str) -> Result<RouteKind, String> {
    match s {
        "task" => Ok(RouteKind::Task),
        "sync" => Ok(RouteKind::Sync),
        "proxy" => Ok(RouteKind::Proxy),
        _ => Err(format!(
            "unknown route kind {s:?}; expected \"task\", \"sync\" or \"proxy\""
        )),
    }
}

/// `routes[].mode.kind`: `"enum"` (`sync|async|auto`) or `"bool"` (`true|false`).
pub(super) fn mode_kind(s: &str) -> Result<ModeKind, String> {
    match s {
        "enum" => Ok(ModeKind::Enum),
        "bool" => Ok(ModeKind::Bool),
        _ => Err(format!(
            "unknown mode kind {s:?}; expected \"enum\" (sync|async|auto) or \"bool\" (true|false)"
        )),
    }
}

/// A route name: non-empty ASCII letters, digits, `-`, `_`, `.` (it ends up in logs and
/// metric labels).
pub(super) fn route_name(s: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.is_empty() || !s.chars().all(ok) {
        return Err(format!(
            "invalid route name {s:?}; use letters, digits, '-', '_' and '.' only"
        ));
    }
    Ok(s.to_owned())
}

/// The most `{` a route path may hold (escaped `{{` count too): matchit 0.8 *panics* past 26
/// parameters (found by fuzz/config_load), and each parameter opens with a `{`.
pub const MAX_ROUTE_BRACES: usize = 16;

/// A route path pattern: starts with `/`, no query or fragment, at most [`MAX_ROUTE_BRACES`]
/// `{`, and valid for matchit 0.8 (checked by inserting it into an empty router).
pub(super) fn route_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("route path {s:?} must start with '/'"));
    }
    if s.matches('{').count() > MAX_ROUTE_BRACES {
        return Err(format!(
            "route path {s:?} has more than {MAX_ROUTE_BRACES} '{{' (parameters)"
        ));
    }
    if s.contains(['?', '#']) || s.contains(char::is_whitespace) {
        return Err(format!(
            "route path {s:?} must not contain '?', '#' or whitespace"
        ));
    }
    matchit::Router::<()>::new()
        .insert(s, ())
        .map_err(|e| format!("invalid route path {s:?}: {e}"))?;
    Ok(s.to_owned())
}

/// An upstream base URL: absolute `http://host[:port][/prefix]`, no userinfo, query or
/// fragment.
pub(super) fn upstream(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("invalid upstream URL {s:?} ({e})"))?;
    match url.scheme() {
        "http" => {}
        "https" => return Err("https upstreams are not supported yet".into()),
        other => {
            return Err(format!(
                "upstream {s:?} must be an http:// URL (scheme is {other:?})"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("upstream {s:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("upstream {s:?} must not contain user:password@"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("upstream {s:?} must not have a query or fragment"));
    }
    // The URL standard allows host characters an HTTP authority does not (`{`, `}`, `"`,
    // ...), so `Url::parse` accepts upstreams the proxy cannot address; start-up
    // (`upstream::forward::Upstream::from_url`) would then fail after the config had loaded
    // (found by fuzz/config_load). Refuse them here with the same two checks — an
    // `http::uri::Authority` and a `Host` header value — without importing the upstream
    // layer (config is a foundation).
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let valid = http::uri::Authority::try_from(authority.as_str()).is_ok()
        && http::HeaderValue::from_str(&authority).is_ok();
    if !valid {
        return Err(format!("upstream {s:?} is not a valid HTTP address"));
    }
    Ok(url)
}

/// `[server].public_url`: the absolute `http`/`https` base every URL the gateway hands
/// out starts with — no credentials, query or fragment; a path prefix is kept, without its
/// trailing `/`.
pub(super) fn public_url(s: &str) -> Result<String, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("invalid public_url {s:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "public_url {s:?} must be an http:// or https:// URL"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("public_url {s:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("public_url {s:?} must not contain user:password@"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "public_url {s:?} must not have a query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// An admission endpoint: an absolute `http` or `https` URL without credentials (the
/// endpoint is the operator's own service; secrets belong in headers it checks, not URLs
/// that end up in logs).
pub(super) fn admission_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("invalid URL {s:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must be an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?} must not contain user:password@"));
    }
    Ok(url)
}

/// A documentation link (`Link: <…>; rel="deprecation"`): absolute http(s) URL.
pub(super) fn link(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("invalid URL {s:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("link {s:?} must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// The name of the query parameter that carries the deprecated `mode`.
pub(super) fn query_name(s: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '&' | '=' | '#' | '?');
    if s.is_empty() || s.contains(bad) {
        return Err(format!("invalid query parameter name {s:?}"));
    }
    Ok(s.to_owned())
}

/// A task status URL template: contains `{id}`; a path starting with `/` (relative to the
/// upstream) or an absolute `http://` URL.
pub(super) fn status_url(s: &str) -> Result<String, String> {
    if !s.contains("{id}") {
        return Err(format!("status_url {s:?} must contain \"{{id}}\""));
    }
    if s.contains(char::is_whitespace) {
        return Err(format!("status_url {s:?} must not contain whitespace"));
    }
    if s.starts_with('/') && !s.starts_with("//") {
        return Ok(s.to_owned());
    }
    let probe = s.replace("{id}", "id");
    match Url::parse(&probe) {
        Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(s.to_owned())
        }
        Ok(u) if u.scheme() == "https" => Err("https status URLs are not supported yet".into()),
        _ => Err(format!(
            "status_url {s:?} must be a path starting with '/' or an absolute http:// URL"
        )),
    }
}

/// `[jobs].path`: a literal path prefix such as `/jobs` (leading `/`, no trailing `/`).
pub(super) fn jobs_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.ends_with('/') {
        return Err(format!(
            "jobs path {s:?} must start with '/' and not end with '/'"
        ));
    }
    let bad = |c: char| c.is_whitespace() || matches!(c, '{' | '}' | '?' | '#' | '*');
    if s.contains(bad) {
        return Err(format!(
            "jobs path {s:?} must be a literal path (no '{{', '}}', '*', '?', '#')"
        ));
    }
    Ok(s.to_owned())
}

/// `[jobs].store`: `"memory"`, `"sqlite:PATH"`, `"redis://…"` or `"rediss://…"`.
pub(super) fn store(s: &str) -> Result<StoreConfig, String> {
    if s == "memory" {
        return Ok(StoreConfig::Memory);
    }
    if let Some(path) = s.strip_prefix("sqlite:") {
        if path.is_empty() {
            return Err("sqlite store needs a path: \"sqlite:data/jobs.db\"".into());
        }
        return Ok(StoreConfig::Sqlite(PathBuf::from(path)));
    }
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        let url = Url::parse(s).map_err(|e| format!("invalid redis URL {s:?} ({e})"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("redis URL {s:?} has no host"));
        }
        return Ok(StoreConfig::Redis(url));
    }
    Err(format!(
        "unknown job store {s:?}; expected \"memory\", \"sqlite:PATH\" or \"redis://HOST:PORT/DB\""
    ))
}

/// A state value in `succeeded` / `failed`.
pub(super) fn state(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("state values must not be empty".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration("24h").unwrap(), Duration::from_secs(86_400));
        assert!(positive_duration("0s").is_err());
        assert_eq!(size("10MiB").unwrap(), ByteSize(10 * 1024 * 1024));
        assert!(size("ten").is_err());
    }

    #[test]
    fn urls() {
        assert!(upstream("http://127.0.0.1:9000/prefix").is_ok());
        assert_eq!(
            upstream("https://x").unwrap_err(),
            "https upstreams are not supported yet"
        );
        assert!(upstream("http://u:p@x").is_err());
        assert!(upstream("http://x/?q=1").is_err());
        assert!(upstream("127.0.0.1:9000").is_err());
        // fuzz/regressions/config_load/upstream-host-brace: a host the URL standard allows
        // but an HTTP authority does not.
        assert!(upstream("http://127.0.0.1}:9000/").is_err());
        assert!(upstream("http://exa{mple/").is_err());
        assert!(status_url("http://h:1/t/{id}").is_ok());
        assert!(status_url("//h/t/{id}").is_err());
        assert!(status_url("/t/id").is_err());
    }

    #[test]
    fn misc() {
        assert_eq!(method("patch").unwrap(), Method::PATCH);
        assert!(method("POTS").is_err());
        assert_eq!(cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::1").unwrap().to_string(), "::1/128");
        assert!(date("2026-06-01").is_ok());
        assert!(date("June").is_err());
        assert!(route_path("/a/{x}/{*rest}").is_ok());
        assert!(route_path("/a/{*rest}/b").is_err());
        assert!(route_path("/a/{x").is_err());
        // fuzz/regressions/config_load/too-many-route-params: matchit panicked past 26.
        let params = |n: usize| (0..n).map(|i| format!("/{{p{i}}}")).collect::<String>();
        assert!(route_path(&params(MAX_ROUTE_BRACES)).is_ok());
        assert!(route_path(&params(MAX_ROUTE_BRACES + 1)).is_err());
        assert!(route_path(&params(27)).is_err());
        assert!(jobs_path("/").is_err());
        assert!(matches!(
            store("rediss://h:6380/0").unwrap(),
            StoreConfig::Redis(_)
        ));
        assert!(store("postgres://h").is_err());
    }
}
