//! The HTTP/1.1 body-framing attacks: CL.TE, TE.CL, TE.TE with disguised
//! `Transfer-Encoding`, odd `Content-Length` values — on the `proxy` route (the body
//! streamed up) and, where buffering changes the path, the `sync` route. Line-level attacks
//! are in `lines.rs`; [`refused`] and [`te_attack`] are shared with it.

use super::support::wire::{assert_problem_doc, RawResponse};
use super::{attack, setup, until_requests, Outcome, RawUpstream, SMUGGLED};

/// Sends `payload`; asserts a single `400`, a closed connection, and that nothing (or at
/// most `max_up` requests, none smuggled) reached the upstream.
pub async fn refused(payload: &str, max_up: usize) -> Outcome {
    let (up, gw) = setup().await;
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_refused(400);
    up.assert_not_smuggled(max_up);
    out
}

/// For requests carrying both a (disguised) `Transfer-Encoding` and `Content-Length`:
/// RFC 9112 §6.1 lets a server refuse them (`400`) or frame by `Transfer-Encoding` alone,
/// and either way close the connection. The body is the empty chunked body `0\r\n\r\n`,
/// so framing by `Content-Length` would have left [`SMUGGLED`] in the buffer as a request.
pub async fn refused_or_framed_by_te(payload: &str) -> (Outcome, RawUpstream) {
    let (up, gw) = setup().await;
    let out = attack(&gw, payload.as_bytes()).await;
    assert_eq!(out.responses, 1, "one answer only:\n{}", out.text());
    out.assert_closed();
    match out.status {
        Some(400) => up.assert_not_smuggled(0),
        Some(200) => {
            up.assert_not_smuggled(1);
            let reqs = up.requests();
            assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
            assert!(reqs[0].body.is_empty(), "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
    (out, up)
}

/// A POST to the proxy route with `headers` (CRLF-terminated lines), the empty chunked
/// body and [`SMUGGLED`] behind it.
pub fn te_attack(headers: &str) -> String {
    format!("POST /p/a HTTP/1.1\r\nHost: x\r\n{headers}\r\n0\r\n\r\n{SMUGGLED}")
}

// === CL.TE / TE.CL ===

#[tokio::test]
async fn cl_te() {
    // A CL-framing front would forward 6 bytes of body and leave the smuggled request.
    refused_or_framed_by_te(&te_attack(
        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
    ))
    .await;
}

#[tokio::test]
async fn te_cl() {
    // The smuggled request inside a chunk: a CL-framing back end would read 4 bytes of
    // body (`26\r\n`) and take the rest as a request.
    let (up, gw) = setup().await;
    let chunk = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    let payload = format!(
        "POST /p/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunk}"
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
            // The chunk's bytes went up as the body they are, re-framed.
            assert_eq!(reqs[0].body, SMUGGLED.as_bytes(), "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
}

#[tokio::test]
async fn cl_te_on_sync_route() {
    // The sync route buffers the body and runs it as a job: still one job, one upstream
    // call, the smuggled request never parsed.
    let (up, gw) = setup().await;
    let payload = format!(
        "POST /sync HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
    );
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_closed();
    assert_eq!(out.responses, 1, "{}", out.text());
    match out.status {
        Some(400) => up.assert_not_smuggled(0),
        Some(202) => {
            until_requests(&up, 1).await;
            up.assert_not_smuggled(1);
            assert_eq!(up.requests().len(), 1, "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
}

#[tokio::test]
async fn te_cl_on_sync_route() {
    let (up, gw) = setup().await;
    let chunk = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    let payload = format!(
        "POST /sync HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunk}"
    );
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_closed();
    assert_eq!(out.responses, 1, "{}", out.text());
    match out.status {
        Some(400) => up.assert_not_smuggled(0),
        Some(202) => {
            until_requests(&up, 1).await;
            up.assert_not_smuggled(1);
            let reqs = up.requests();
            assert_eq!(reqs.len(), 1, "{}", up.all_bytes());
            assert_eq!(reqs[0].body, SMUGGLED.as_bytes(), "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
}

// === TE.TE: a disguised Transfer-Encoding beside Content-Length ===

#[tokio::test]
async fn te_te_chunked_with_trailing_space() {
    // Trailing OWS is not part of a field value (RFC 9110 §5.5): this *is* `chunked`.
    refused_or_framed_by_te(&te_attack(
        "Content-Length: 6\r\nTransfer-Encoding: chunked \r\n",
    ))
    .await;
}

#[tokio::test]
async fn te_te_chunked_with_tab() {
    refused_or_framed_by_te(&te_attack(
        "Content-Length: 6\r\nTransfer-Encoding:\tchunked\t\r\n",
    ))
    .await;
}

#[tokio::test]
async fn te_te_xchunked() {
    // Not chunked, so the body length cannot be determined (RFC 9112 §6.3 item 4): 400.
    refused(
        &te_attack("Content-Length: 6\r\nTransfer-Encoding: xchunked\r\n"),
        0,
    )
    .await;
}

#[tokio::test]
async fn te_te_listed_twice_chunked_not_last() {
    // `chunked, identity` across two lines: chunked is not the final coding → 400.
    refused(
        &te_attack(
            "Content-Length: 6\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        ),
        0,
    )
    .await;
}

#[tokio::test]
async fn te_te_listed_twice_chunked_last() {
    // `identity, chunked`: hyper would frame it as chunked (the last coding); the gateway
    // refuses any coding but one `chunked` (`pipeline::request::odd_transfer_coding`).
    refused(
        &te_attack(
            "Content-Length: 6\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
        ),
        0,
    )
    .await;
}

#[tokio::test]
async fn te_te_chunked_twice() {
    // RFC 9112 §6.1: chunked is applied at most once.
    refused(
        &te_attack("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        0,
    )
    .await;
}

#[tokio::test]
async fn te_te_gzip_then_chunked() {
    // `gzip, chunked` is well framed (chunked is last), but the gateway's client re-frames
    // the body and `Transfer-Encoding` is hop-by-hop: forwarding it would hand the upstream
    // gzip bytes with nothing saying so. Refused before anything goes up, as a problem.
    let out = refused(&te_attack("Transfer-Encoding: gzip, chunked\r\n"), 0).await;
    let resp = RawResponse::parse(&out.raw).unwrap();
    assert_eq!(resp.header("connection"), Some("close"), "{}", out.text());
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_problem_doc(&doc, 400, "bad-request-body");
}

#[tokio::test]
async fn te_te_in_obs_fold_continuation() {
    // obs-fold in a request: RFC 9112 §5.2 lets a server reject it (400) or unfold it.
    refused(
        &te_attack("Content-Length: 6\r\nTransfer-Encoding: identity\r\n chunked\r\n"),
        0,
    )
    .await;
}

#[tokio::test]
async fn te_te_hidden_behind_obs_fold_of_another_header() {
    refused(
        &te_attack("Content-Length: 6\r\nX-Padding: a\r\n Transfer-Encoding: chunked\r\n"),
        0,
    )
    .await;
}

// === Content-Length values ===

/// A POST to the proxy route with one `Content-Length` line `value`, body `hello`, and
/// the smuggled request behind.
fn cl_attack(cl_lines: &str) -> String {
    format!("POST /p/a HTTP/1.1\r\nHost: x\r\n{cl_lines}\r\nhello{SMUGGLED}")
}

#[tokio::test]
async fn content_length_with_plus_sign() {
    refused(&cl_attack("Content-Length: +5\r\n"), 0).await;
}

#[tokio::test]
async fn content_length_with_minus_sign() {
    refused(&cl_attack("Content-Length: -5\r\n"), 0).await;
}

#[tokio::test]
async fn content_length_with_space_inside() {
    refused(&cl_attack("Content-Length: 5 0\r\n"), 0).await;
}

#[tokio::test]
async fn content_length_two_different_values() {
    refused(&cl_attack("Content-Length: 5\r\nContent-Length: 6\r\n"), 0).await;
}

#[tokio::test]
async fn content_length_two_different_values_in_one_line() {
    refused(&cl_attack("Content-Length: 5, 6\r\n"), 0).await;
}

#[tokio::test]
async fn content_length_with_leading_zeros() {
    // `0005` is 1*DIGIT (RFC 9110 §8.6), so it is 5: framed as 5 bytes, and what follows
    // is the client's second (pipelined) request — both reach the upstream, each framed
    // exactly once.
    let (up, gw) = setup().await;
    let payload = "POST /p/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0005\r\n\r\nhello\
                   GET /p/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let out = attack(&gw, payload.as_bytes()).await;
    assert_eq!(out.status, Some(200), "{}", out.text());
    assert_eq!(out.responses, 2, "{}", out.text());
    out.assert_closed();
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{}", up.all_bytes());
    assert!(reqs[0].line.starts_with("POST /p/a "), "{}", up.all_bytes());
    assert_eq!(reqs[0].body, b"hello", "{}", up.all_bytes());
    assert!(
        reqs[1].line.starts_with("GET /p/second "),
        "{}",
        up.all_bytes()
    );
    assert!(reqs[1].body.is_empty(), "{}", up.all_bytes());
    up.assert_not_smuggled(2);
}

#[tokio::test]
async fn content_length_two_equal_values() {
    // RFC 9110 §8.6 lets a recipient take equal repeated values as one: framed as 5,
    // and exactly one Content-Length goes up. Refusing is fine too.
    let (up, gw) = setup().await;
    let payload = "POST /p/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\
                   Connection: close\r\n\r\nhello";
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
async fn content_length_two_equal_values_in_one_line() {
    let (up, gw) = setup().await;
    let payload = "POST /p/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\
                   Connection: close\r\n\r\nhello";
    let out = attack(&gw, payload.as_bytes()).await;
    out.assert_closed();
    match out.status {
        Some(400) => up.assert_not_smuggled(0),
        Some(200) => {
            up.assert_not_smuggled(1);
            assert_eq!(up.requests()[0].body, b"hello", "{}", up.all_bytes());
        }
        other => panic!("{other:?}:\n{}", out.text()),
    }
}
