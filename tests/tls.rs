//! The optional TLS listener, black-box: `[server].tls = { cert, key }` serves HTTPS with
//! ALPN `h2` and `http/1.1`; a stalled handshake is closed after the header timeout; a
//! cleartext client gets no answer but does not disturb others; `check` refuses a pair that
//! does not load; SIGHUP picks up a renewed certificate at the same path.
//!
//! The certificates are throw-away test fixtures (tests/fixtures/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::process::GatewayProcess;
use support::wire::{read_until_closed, Ended};
use support::{reply, Gateway, Seen, Upstream};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config(cert: &Path, key: &Path, server_extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\ntls = {{ cert = {:?}, key = {:?} }}\n\n\
         [[routes]]\nname = \"hello\"\nkind = \"proxy\"\nmethods = [\"GET\"]\npath = \"/hello\"\n\
         upstream = \"{{up}}\"\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// A client trusting only `ca` (no system roots), with or without HTTP/2.
fn tls_client(ca: &str, http1_only: bool) -> reqwest::Client {
    let pem = std::fs::read(fixture(ca)).unwrap();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

async fn hello_upstream() -> Upstream {
    Upstream::start(|_s: Seen| async { reply(200, r#"{"hello":"world"}"#, &[]) }).await
}

#[tokio::test]
async fn serves_https_with_alpn_h2_and_http11() {
    let up = hello_upstream().await;
    let cfg = config(&fixture("tls-cert.pem"), &fixture("tls-key.pem"), "");
    let gw = Gateway::start(&cfg, &up.url()).await;
    let url = format!("https://localhost:{}/hello", gw.addr.port());

    let h2 = tls_client("tls-ca.pem", false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2, "ALPN chose h2");
    assert_eq!(h2.status(), 200);
    assert_eq!(h2.text().await.unwrap(), r#"{"hello":"world"}"#);

    let h1 = tls_client("tls-ca.pem", true)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        h1.version(),
        reqwest::Version::HTTP_11,
        "ALPN chose http/1.1"
    );
    assert_eq!(h1.status(), 200);

    // Errors made by the gateway are problems over TLS too.
    let missing = tls_client("tls-ca.pem", false)
        .get(url.replace("/hello", "/nope"))
        .send()
        .await
        .unwrap();
    support::wire::assert_problem(missing, 404, "no-route").await;

    // A client that does not trust the CA refuses the connection (the certificate is real).
    let stranger = tls_client("tls2-ca.pem", false).get(&url).send().await;
    assert!(stranger.is_err(), "an untrusted certificate must fail");
    gw.shutdown().await;
}

#[tokio::test]
async fn stalled_handshakes_and_cleartext_clients_are_closed_while_others_are_served() {
    let up = hello_upstream().await;
    let cfg = config(
        &fixture("tls-cert.pem"),
        &fixture("tls-key.pem"),
        "header_read_timeout = \"1s\"",
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    // Opens a socket and never says hello.
    let mut stalled = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // Speaks cleartext HTTP/1.1 to the TLS port: not a ClientHello, the handshake fails.
    let plain = support::client()
        .get(format!("http://{}/hello", gw.addr))
        .send()
        .await;
    assert!(plain.is_err(), "cleartext must not be answered: {plain:?}");
    let url = format!("https://localhost:{}/hello", gw.addr.port());
    let ok = tls_client("tls-ca.pem", false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "others are served meanwhile");
    let started = Instant::now();
    let (_, ended) = read_until_closed(&mut stalled, Duration::from_secs(30)).await;
    assert_eq!(ended, Ended::Closed, "the stalled handshake is closed");
    assert!(started.elapsed() < Duration::from_secs(20));
    gw.shutdown().await;
}

#[test]
fn check_refuses_a_pair_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    // Certificate of one CA's leaf, key of the other's: parses, but is not a pair.
    let text = config(&fixture("tls-cert.pem"), &fixture("tls2-key.pem"), "")
        .replace("{up}", "http://127.0.0.1:9");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prefer-gateway"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.tls"), "{stderr}");
    assert!(stderr.contains("do not make a usable pair"), "{stderr}");
}

#[tokio::test]
async fn sighup_picks_up_a_renewed_certificate() {
    let up = hello_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixture("tls-cert.pem"), &cert).unwrap();
    std::fs::copy(fixture("tls-key.pem"), &key).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&cert, &key, "").replace("{up}", &up.url())).unwrap();
    let gw = GatewayProcess::start(&path);
    let url = format!("https://localhost:{}/hello", gw.addr.port());
    let before = tls_client("tls-ca.pem", false).get(&url).send().await;
    assert_eq!(before.unwrap().status(), 200);

    // Renewal: new files at the same paths, then SIGHUP.
    std::fs::copy(fixture("tls2-cert.pem"), &cert).unwrap();
    std::fs::copy(fixture("tls2-key.pem"), &key).unwrap();
    let (end, lines) = gw.hangup().await;
    assert!(end.contains("config reloaded"), "{end}");
    assert!(
        !lines.iter().any(|l| l.contains("after a restart")),
        "{lines:?}"
    );
    let renewed = tls_client("tls2-ca.pem", false).get(&url).send().await;
    assert_eq!(
        renewed.unwrap().status(),
        200,
        "new connections get the new certificate"
    );
    let old = tls_client("tls-ca.pem", false).get(&url).send().await;
    assert!(old.is_err(), "the old certificate is no longer served");
}
