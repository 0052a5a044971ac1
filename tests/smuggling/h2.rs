//! The same attacks over HTTP/2 (h2c, prior knowledge): a `content-length` that disagrees
//! with the DATA frames (RFC 9113 §8.1.1: malformed → stream error), and connection-specific
//! header fields (§8.2.2: malformed). The `h2` crate's client refuses to *send* the
//! latter, so those requests are written as raw frames (HPACK literals, no Huffman).

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::Gateway;
use super::{setup, RawUpstream, PATIENCE};

/// Sends `POST {path}` with `content-length: {declared}` and one DATA frame `body` (END_STREAM);
/// returns the status, or `None` when the stream was reset.
async fn post_h2(gw: &Gateway, path: &str, declared: Option<usize>, body: &str) -> Option<u16> {
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    let mut req = http::Request::post(gw.url(path)).header("prefer", "respond-async");
    if let Some(n) = declared {
        req = req.header("content-length", n);
    }
    let (resp, mut stream) = h2.send_request(req.body(()).unwrap(), false).unwrap();
    let _ = stream.send_data(Bytes::from(body.to_owned()), true);
    match tokio::time::timeout(PATIENCE, resp)
        .await
        .expect("an answer")
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let mut body = r.into_body();
            while let Some(Ok(_)) = body.data().await {}
            Some(status)
        }
        Err(_) => None,
    }
}

/// After a mismatched request: nothing complete reached the upstream for `path`, and a
/// normal request afterwards arrives as exactly itself (a half-written body left on a
/// pooled upstream connection would swallow its bytes).
async fn upstream_saw_no_mismatched_body(gw: &Gateway, up: &RawUpstream, bad: &str, next: &str) {
    let status = post_h2(gw, next, Some(5), "world").await;
    assert!(
        matches!(status, Some(200 | 202)),
        "the follow-up: {status:?}\n{}",
        up.all_bytes()
    );
    super::until_requests(up, 1).await;
    let reqs = up.requests();
    assert!(
        reqs.iter().all(|r| !r.line.contains(bad)),
        "a mismatched request reached the upstream whole:\n{}",
        up.all_bytes()
    );
    assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
    assert_eq!(reqs[0].body, b"world", "{}", up.all_bytes());
    up.assert_not_smuggled(1);
}

#[tokio::test]
async fn h2_content_length_longer_than_data() {
    let (up, gw) = setup().await;
    let status = post_h2(&gw, "/p/bad", Some(10), "hello").await;
    eprintln!("gateway: {status:?} (None = stream reset)");
    assert!(matches!(status, None | Some(400)), "{status:?}");
    upstream_saw_no_mismatched_body(&gw, &up, "/p/bad", "/p/next").await;
}

#[tokio::test]
async fn h2_content_length_shorter_than_data() {
    let (up, gw) = setup().await;
    let status = post_h2(&gw, "/p/bad", Some(3), "hello").await;
    eprintln!("gateway: {status:?} (None = stream reset)");
    assert!(matches!(status, None | Some(400)), "{status:?}");
    upstream_saw_no_mismatched_body(&gw, &up, "/p/bad", "/p/next").await;
}

#[tokio::test]
async fn h2_content_length_longer_than_data_on_sync_route() {
    let (up, gw) = setup().await;
    let status = post_h2(&gw, "/sync", Some(10), "hello").await;
    eprintln!("gateway: {status:?} (None = stream reset)");
    assert!(matches!(status, None | Some(400)), "{status:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(up.requests().is_empty(), "{}", up.all_bytes());
}

#[tokio::test]
async fn h2_content_length_shorter_than_data_on_sync_route() {
    let (up, gw) = setup().await;
    let status = post_h2(&gw, "/sync", Some(3), "hello").await;
    eprintln!("gateway: {status:?} (None = stream reset)");
    assert!(matches!(status, None | Some(400)), "{status:?}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(up.requests().is_empty(), "{}", up.all_bytes());
}

// === connection-specific header fields, as raw frames ===

/// One HPACK string literal (no Huffman; short strings only).
fn hpack_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 127);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// How the gateway answered stream 1.
#[derive(Debug, PartialEq, Eq)]
enum H2Answer {
    /// RST_STREAM with this error code.
    Reset(u32),
    /// GOAWAY with this error code.
    GoAway(u32),
    /// A HEADERS frame (a response): its raw HPACK block.
    Response(Vec<u8>),
    /// The connection closed with nothing for stream 1.
    Closed,
}

/// Sends `GET /p/a` on stream 1 with `extra` header fields, END_STREAM; returns how the
/// gateway answered it.
async fn raw_h2_get(gw: &Gateway, extra: &[(&str, &str)]) -> H2Answer {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.push(0x04); // :path, literal without indexing, indexed name 4
    hpack_str(&mut block, "/p/a");
    block.push(0x01); // :authority
    hpack_str(&mut block, "x");
    for (k, v) in extra {
        block.push(0x00); // literal without indexing, new name
        hpack_str(&mut block, k);
        hpack_str(&mut block, v);
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    out.extend(frame(0x1, 0x5, 1, &block)); // HEADERS, END_STREAM | END_HEADERS
    s.write_all(&out).await.unwrap();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let code = |at: usize| {
                u32::from_be_bytes([
                    payload[at],
                    payload[at + 1],
                    payload[at + 2],
                    payload[at + 3],
                ])
            };
            match (kind, stream) {
                (0x4, 0) if flags & 1 == 0 => {
                    s.write_all(&frame(0x4, 1, 0, &[])).await.unwrap(); // SETTINGS ACK
                }
                (0x3, 1) => return H2Answer::Reset(code(0)),
                (0x7, 0) => return H2Answer::GoAway(code(4)),
                (0x1, 1) => return H2Answer::Response(payload),
                _ => {}
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => panic!("no answer for stream 1 within {PATIENCE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return H2Answer::Closed,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// PROTOCOL_ERROR (RFC 9113 §7).
const PROTOCOL_ERROR: u32 = 1;

/// A request carrying `name: value` is malformed (RFC 9113 §8.2.2): the stream is reset
/// with PROTOCOL_ERROR and nothing reaches the upstream. A control request without it is
/// answered, so the raw framing itself is sound.
async fn connection_specific(name: &str, value: &str) {
    let (up, gw) = setup().await;
    let control = raw_h2_get(&gw, &[("x-fine", "yes")]).await;
    assert!(
        matches!(control, H2Answer::Response(_)),
        "control: {control:?}"
    );
    assert_eq!(up.requests().len(), 1, "{}", up.all_bytes());
    let answer = raw_h2_get(&gw, &[(name, value)]).await;
    eprintln!("[{name}] gateway: {answer:?}");
    assert!(
        matches!(
            answer,
            H2Answer::Reset(PROTOCOL_ERROR) | H2Answer::GoAway(PROTOCOL_ERROR)
        ),
        "{name}: {value} → {answer:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
}

#[tokio::test]
async fn h2_connection_header() {
    connection_specific("connection", "keep-alive").await;
}

#[tokio::test]
async fn h2_transfer_encoding_header() {
    connection_specific("transfer-encoding", "chunked").await;
}

#[tokio::test]
async fn h2_keep_alive_header() {
    connection_specific("keep-alive", "timeout=5").await;
}

#[tokio::test]
async fn h2_proxy_connection_header() {
    connection_specific("proxy-connection", "keep-alive").await;
}

#[tokio::test]
async fn h2_upgrade_header() {
    connection_specific("upgrade", "websocket").await;
}

#[tokio::test]
async fn h2_te_other_than_trailers() {
    connection_specific("te", "gzip").await;
}
