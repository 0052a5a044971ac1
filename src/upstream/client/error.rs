//! What an upstream request's failure says: never reached, broken mid-exchange, or a URI
//! the client cannot send. The message is the innermost cause (hyper's wrappers say only
//! "connection error"), which is what a `502`'s detail and the logs need.

/// Why an upstream request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No TCP connection could be made.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection failed while sending or receiving.
    #[error("{}", root_cause(.0))]
    Http(#[from] hyper::Error),
    /// The request URI cannot be sent (not `http://`, no host).
    #[error("{0}")]
    Uri(String),
}

impl ClientError {
    /// Whether the upstream was never reached.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect(_))
    }
}

pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
