//! The HTTP/1.1 line-level attacks: bare LF and bare CR, obs-fold, bad chunk sizes and
//! oversized chunk extensions (the head is fine, so on the proxy route it may already be
//! on its way up when the body turns bad), absolute-form and odd spaces in the request line.

use super::h1::{refused, refused_or_framed_by_te, te_attack};
use super::{attack, setup, SMUGGLED};

// === line endings and obs-fold ===

#[tokio::test]
async fn bare_lf_line_endings() {
    // RFC 9112 §2.2: a recipient MAY take a bare LF as a line end. Either refused, or one
    // request, re-framed with CRLF by the gateway's client (the raw upstream only parses
    // CRLF), with exactly its 5 body bytes.
    let (up, gw) = setup().await;
    let payload = format!(
        "POST /p/a HTTP/1.1\nHost: x\nContent-Length: 5\nConnection: close\n\nhello{SMUGGLED}"
    );
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_closed();
    assert_eq!(out.responses, 1, "{}", out.text());
    match out.status {
        Some(400) => up.assert_not_smuggled(0),
        Some(200) => {
            up.assert_not_smuggled(1);
            let reqs = up.requests();
            assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
            assert_eq!(reqs[0].body, b"hello", "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
}

#[tokio::test]
async fn bare_lf_hiding_transfer_encoding_in_a_header_value() {
    // A front that only splits on CRLF sees one `X-Note` header; one that accepts bare LF
    // sees `Transfer-Encoding: chunked`. Whichever the gateway sees, it frames once.
    refused_or_framed_by_te(&te_attack(
        "Content-Length: 6\r\nX-Note: a\nTransfer-Encoding: chunked\r\n",
    ))
    .await;
}

#[tokio::test]
async fn bare_cr_in_a_header() {
    refused(
        &te_attack("Content-Length: 6\r\nX-Note: a\rTransfer-Encoding: chunked\r\n"),
        0,
    )
    .await;
}

#[tokio::test]
async fn obs_fold_in_another_header() {
    refused(
        "GET /p/a HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\nConnection: close\r\n\r\n",
        0,
    )
    .await;
}

// === chunk sizes and extensions ===

/// A chunked POST to `path` whose first chunk-size line is `size_line`, then [`SMUGGLED`].
/// The head is fine, so on the proxy route it may already be on its way up; the upstream
/// must never get a *complete* request (the body is cut, the connection dropped).
async fn bad_chunk(path: &str, extra: &str, size_line: &str) {
    let (up, gw) = setup().await;
    let payload = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Transfer-Encoding: chunked\r\n\r\n{size_line}\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
    );
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_refused(400);
    up.assert_not_smuggled(0);
}

#[tokio::test]
async fn chunk_size_not_hex() {
    bad_chunk("/p/a", "", "zz").await;
}

#[tokio::test]
async fn chunk_size_negative() {
    bad_chunk("/p/a", "", "-5").await;
}

#[tokio::test]
async fn chunk_size_overflowing_u64() {
    bad_chunk("/p/a", "", "ffffffffffffffffff").await;
}

#[tokio::test]
async fn chunk_extension_oversized() {
    bad_chunk("/p/a", "", &format!("5;ext={}", "a".repeat(64 * 1024))).await;
}

#[tokio::test]
async fn chunk_size_not_hex_on_sync_route() {
    bad_chunk("/sync", "Prefer: respond-async\r\n", "zz").await;
}

#[tokio::test]
async fn chunk_size_overflowing_u64_on_sync_route() {
    bad_chunk("/sync", "Prefer: respond-async\r\n", "ffffffffffffffffff").await;
}

// === the request line ===

#[tokio::test]
async fn request_line_absolute_form() {
    // RFC 9112 §3.2.2: a server MUST accept absolute-form. The gateway routes by its path
    // and sends origin-form to its own upstream with the upstream's Host: `evil` never
    // becomes the upstream request's target.
    let (up, gw) = setup().await;
    let payload = "GET http://evil/p/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let out = attack(&gw, payload.as_bytes()).await;
    assert_eq!(out.status, Some(200), "{}", out.text());
    out.assert_closed();
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
    assert_eq!(reqs[0].line, "GET /p/a HTTP/1.1", "{}", up.all_bytes());
    assert_eq!(
        reqs[0].header_all("host"),
        [up.addr.to_string()],
        "{}",
        up.all_bytes()
    );
}

#[tokio::test]
async fn request_line_double_spaces() {
    refused(
        "GET  /p/a  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        0,
    )
    .await;
}

#[tokio::test]
async fn request_line_tabs() {
    refused(
        "GET\t/p/a\tHTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        0,
    )
    .await;
}

#[tokio::test]
async fn request_line_trailing_space() {
    refused(
        "GET /p/a HTTP/1.1 \r\nHost: x\r\nConnection: close\r\n\r\n",
        0,
    )
    .await;
}
