//! The raw upstream the fault cases are built on: a TCP listener whose connections a
//! closure drives byte by byte (so it can hang, close or reset where hyper would not), the
//! request reader it uses, and the small writes it answers with.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A raw TCP upstream: each accepted connection is handed to `f`. Counts connections
/// accepted and still open (a connection is open until `f` returns, which the handlers
/// here do when the gateway closes it). Every connection task ends when it is dropped.
pub struct RawUpstream {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Decrements the open-connection count when the connection's task ends (or is aborted).
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RawUpstream {
    pub async fn start<F, Fut>(f: F) -> RawUpstream
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (acc, opn) = (Arc::clone(&accepted), Arc::clone(&open));
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection task.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    a = listener.accept() => if let Ok((s, _)) = a {
                        acc.fetch_add(1, Ordering::SeqCst);
                        opn.fetch_add(1, Ordering::SeqCst);
                        let guard = OpenGuard(Arc::clone(&opn));
                        let conn = f(s);
                        conns.spawn(async move {
                            let _guard = guard;
                            conn.await;
                        });
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        RawUpstream {
            addr,
            accepted,
            open,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request read off a raw upstream connection.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (head and `Content-Length` or chunked body) from `s`, keeping bytes
/// of a next request in `buf`. `None` when the peer closed or sent something unreadable.
pub async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Req> {
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        fill(s, buf).await?;
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = text.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let method = words.next()?.to_owned();
    let target = words.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut req = Req {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let eol = loop {
                if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
                    break eol;
                }
                fill(s, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..eol + 2);
            while buf.len() < size + 2 {
                fill(s, buf).await?;
            }
            req.body.extend(buf.drain(..size));
            buf.drain(..2);
            if size == 0 {
                return Some(req);
            }
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        fill(s, buf).await?;
    }
    req.body = buf.drain(..len).collect();
    Some(req)
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// A keep-alive response with a JSON body.
pub fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes `bytes`; false when the gateway has gone.
pub async fn send(s: &mut TcpStream, bytes: &[u8]) -> bool {
    s.write_all(bytes).await.is_ok()
}

/// Holds the connection without answering until the gateway closes it (or `cap` passes):
/// an upstream that accepted the work and never answers.
pub async fn hold(s: &mut TcpStream, cap: Duration) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(cap, async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Closes with a `RST` (SO_LINGER 0), as a server does that closes with unread data.
pub fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    drop(s);
}
