//! `X-Forwarded-Proto` was always `http`, also behind the TLS listener. A request reaches
//! the upstream with `X-Forwarded-Proto` (`https` over the TLS listener, else `http`),
//! `X-Forwarded-Port` (the listener's port) and an RFC 7239 `Forwarded` element
//! `for=…;host=…;proto=…` appended to the client's chain — on a proxy route, a task submit
//! and a sync job's upstream call (whose headers are stored at submit).

use std::path::{Path, PathBuf};

use super::any_upstream;
use super::support::{client, Gateway, Seen, Upstream};

// === helpers ===

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An HTTPS client trusting only the test CA.
fn tls_client(http1_only: bool) -> reqwest::Client {
    let pem = std::fs::read(fixture("tls-ca.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// One route of each kind on `{up}`: proxy `GET /hello`, sync `POST /v1/render`, task
/// `POST /v1/edit`; `server` goes into `[server]`.
fn three_kinds_config(server: &str) -> String {
    format!(
        r#"
[server]
{server}

[defaults]
poll_interval = "50ms"

[jobs]
store = "memory"

[[routes]]
name = "hello"
kind = "proxy"
methods = ["GET"]
path = "/hello"
upstream = "{{up}}"

[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "{{up}}"

[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "{{up}}"

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{{id}}"
"#
    )
}

/// RFC 7239 §4 `Forwarded`, strictly: elements split on `,`, pairs on `;`, each pair
/// `token=value` with the value a token or a quoted-string. Names are lower-cased, values
/// unquoted. Panics (naming the header) on anything else.
fn parse_forwarded(header: &str) -> Vec<Vec<(String, String)>> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut elements = vec![Vec::new()];
    let mut chars = header.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| tchar(*c))).collect();
        assert!(
            !name.is_empty(),
            "Forwarded: a pair without a name in {header:?}"
        );
        assert_eq!(
            chars.next(),
            Some('='),
            "Forwarded: no '=' after {name} in {header:?}"
        );
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => v.push(chars.next().expect("escape at the end")),
                    Some(c) => v.push(c),
                    None => panic!("Forwarded: unterminated quoted-string in {header:?}"),
                }
            }
            v
        } else {
            let v: String = std::iter::from_fn(|| chars.next_if(|c| tchar(*c))).collect();
            assert!(
                !v.is_empty(),
                "Forwarded: {name}= has no value, or one that must be quoted, in {header:?}"
            );
            v
        };
        elements
            .last_mut()
            .unwrap()
            .push((name.to_ascii_lowercase(), value));
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        match chars.next() {
            None => return elements,
            Some(';') => {}
            Some(',') => elements.push(Vec::new()),
            Some(c) => panic!("Forwarded: unexpected {c:?} in {header:?}"),
        }
    }
}

/// All lines of `name` joined with `, ` (a list header may arrive on several lines).
fn joined(h: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = h
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The upstream request `what` saw `proto` (`http`/`https`) and `port` the way RFC 7239 and
/// the `X-Forwarded-*` convention say, with `host` as the client's host; returns the parsed
/// `Forwarded` chain.
fn assert_forwarded(
    seen: &Seen,
    what: &str,
    proto: &str,
    port: u16,
    host: &str,
) -> Vec<Vec<(String, String)>> {
    let h = &seen.headers;
    let get = |n: &str| joined(h, n);
    assert_eq!(
        get("x-forwarded-proto").as_deref(),
        Some(proto),
        "{what}: X-Forwarded-Proto (headers {h:?})"
    );
    assert_eq!(
        get("x-forwarded-port"),
        Some(port.to_string()),
        "{what}: X-Forwarded-Port (headers {h:?})"
    );
    let fwd = get("forwarded").unwrap_or_else(|| panic!("{what}: no Forwarded (headers {h:?})"));
    let chain = parse_forwarded(&fwd);
    let ours = chain.last().unwrap();
    let pair = |k: &str| ours.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(pair("for"), Some("127.0.0.1"), "{what}: for= in {fwd:?}");
    assert_eq!(pair("proto"), Some(proto), "{what}: proto= in {fwd:?}");
    assert_eq!(pair("host"), Some(host), "{what}: host= in {fwd:?}");
    chain
}

/// The one request the upstream saw with this method and path.
fn seen_one(up: &Upstream, method: &str, path: &str) -> Seen {
    let all = up.seen();
    let mut hits = all
        .iter()
        .filter(|s| s.method == method && s.uri.split('?').next() == Some(path));
    let first = hits
        .next()
        .unwrap_or_else(|| panic!("the upstream never saw {method} {path}"))
        .clone();
    assert!(hits.next().is_none(), "{method} {path} arrived twice");
    first
}

/// The client's own `Forwarded` element, sent on the proxy request: it must be kept.
const EARLIER_HOP: &str = "for=192.0.2.60;proto=http;by=203.0.113.43";

/// Drives one request of each route kind through `gw` with `c` and checks what the
/// upstream saw: proxy `GET /hello` (with [`EARLIER_HOP`]), task submit, sync job.
async fn forwarded_on_every_kind(c: &reqwest::Client, base: &str, up: &Upstream, proto: &str) {
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let host = base.split("://").nth(1).unwrap();
    let hello = c
        .get(format!("{base}/hello"))
        .header("forwarded", EARLIER_HOP)
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    let edit = c
        .post(format!("{base}/v1/edit"))
        .header("prefer", "respond-async")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status(), 202, "task submit");
    let render = c
        .post(format!("{base}/v1/render"))
        .header("prefer", "wait=10")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(render.status(), 200, "the job ran within its wait");

    let chain = assert_forwarded(&seen_one(up, "GET", "/hello"), "proxy", proto, port, host);
    assert_eq!(
        chain.len(),
        2,
        "the client's element is kept, ours appended: {chain:?}"
    );
    assert_eq!(
        chain[0],
        parse_forwarded(EARLIER_HOP)[0],
        "the earlier hop's element is forwarded unchanged"
    );
    let chain = assert_forwarded(&seen_one(up, "POST", "/v1/edit"), "task", proto, port, host);
    assert_eq!(chain.len(), 1, "task: {chain:?}");
    let chain = assert_forwarded(
        &seen_one(up, "POST", "/v1/render"),
        "sync job",
        proto,
        port,
        host,
    );
    assert_eq!(chain.len(), 1, "sync job: {chain:?}");
}

// === tests ===

/// Over the TLS listener, every proxied kind tells the upstream the client spoke `https`
/// on the gateway's port — also the job, whose headers were stored at submit.
#[tokio::test]
async fn headers_say_https_behind_the_tls_listener() {
    let up = any_upstream().await;
    let tls = format!(
        "tls = {{ cert = {:?}, key = {:?} }}",
        fixture("tls-cert.pem").display().to_string(),
        fixture("tls-key.pem").display().to_string()
    );
    let gw = Gateway::start(&three_kinds_config(&tls), &up.url()).await;
    let base = format!("https://localhost:{}", gw.addr.port());
    forwarded_on_every_kind(&tls_client(false), &base, &up, "https").await;
    // HTTP/1.1 over TLS likewise (the requests above chose h2 by ALPN).
    let h1 = tls_client(true)
        .get(format!("{base}/hello"))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-port", "80")
        .send()
        .await
        .unwrap();
    assert_eq!(h1.status(), 200);
    let last = up.seen().pop().unwrap();
    let host = format!("localhost:{}", gw.addr.port());
    assert_forwarded(&last, "proxy over HTTP/1.1", "https", gw.addr.port(), &host);
    gw.shutdown().await;
}

/// Over cleartext the same headers say `http` and the listener's port; a client cannot
/// spoof either.
#[tokio::test]
async fn headers_say_http_and_the_port_over_cleartext() {
    let up = any_upstream().await;
    let gw = Gateway::start(&three_kinds_config(""), &up.url()).await;
    let base = format!("http://{}", gw.addr);
    forwarded_on_every_kind(&client(), &base, &up, "http").await;
    let spoofed = client()
        .get(gw.url("/hello"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "443")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 200);
    let last = up.seen().pop().unwrap();
    let host = gw.addr.to_string();
    assert_forwarded(&last, "spoofed", "http", gw.addr.port(), &host);
    gw.shutdown().await;
}
