//! Errors inside the gateway: what went wrong, whose fault it is, and whether trying again
//! is safe — the shape pingora's `Error` has, because that is exactly what a gateway needs
//! to choose between `400`, `502`, `504` and a retry.
//!
//! An [`Error`] is never shown to a client as it is: the edge turns it into a
//! [`crate::problem::Problem`] (`impl From<Error> for Problem`), and the job runner into
//! a job's `error {code, message}` ([`Error::job_code`]). Inside, code matches on
//! [`ErrorKind`] instead of reading text back out of a rendered response.
//!
//! Where the errors live: forwarding and upstream calls ([`crate::upstream`]) fail with an
//! [`Error`], the store with its `StoreError`. The modules that *judge a client's request*
//! — reading its intent, its callback, its body, asking its admission endpoint — answer
//! with the `Problem` the client is owed, because that verdict is their whole output; they
//! run only inside the shared request step, which is the edge of the pipeline.

use std::time::Duration;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client's request (a body cut off or too slow, a target that cannot be sent).
    Client,
    /// The upstream (unreachable, too slow, broke the contract).
    Upstream,
    /// The job store.
    Store,
    /// The gateway itself.
    Internal,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request target cannot be made into an upstream URI.
    BadTarget,
    /// The client's body, streamed upstream, stopped for longer than this.
    BodyIdle(Duration),
    /// The client's body ended before its declared length, or was malformed.
    BodyCut,
    /// No connection to the upstream could be made: the request never reached it.
    Connect,
    /// The upstream did not answer (its head) in time.
    Timeout,
    /// The connection failed after the request was (maybe) sent.
    UpstreamBroken,
    /// The upstream answered something the route's contract does not allow.
    Contract,
    /// The job store failed or did not answer.
    Store,
}

/// An internal error: its kind and a human-readable detail (never a secret or a URL's
/// query: both may be logged and stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// What to tell a person.
    pub detail: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: detail.into(),
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self.kind {
            ErrorKind::BadTarget | ErrorKind::BodyIdle(_) | ErrorKind::BodyCut => Fault::Client,
            ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::UpstreamBroken
            | ErrorKind::Contract => Fault::Upstream,
            ErrorKind::Store => Fault::Store,
        }
    }

    /// Whether sending the same request again cannot do the work twice: only when it
    /// never reached the upstream.
    pub fn retry_safe(&self) -> bool {
        self.kind == ErrorKind::Connect
    }

    /// The job `error.code` a run that ended with this error records.
    pub fn job_code(&self) -> &'static str {
        match self.kind {
            ErrorKind::Timeout => "upstream_timeout",
            ErrorKind::BadTarget | ErrorKind::BodyIdle(_) | ErrorKind::BodyCut => "bad_request",
            ErrorKind::Contract => "upstream_contract",
            ErrorKind::Connect | ErrorKind::UpstreamBroken | ErrorKind::Store => {
                "upstream_unreachable"
            }
        }
    }
}

/// What a `reqwest` call's failure was, without its URL (reqwest's own message names the
/// URL, whose query may carry a receiver's token, and this text is logged and stored).
pub fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    }
    .to_owned();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_request_that_never_left_is_safe_to_retry() {
        let connect = Error::new(ErrorKind::Connect, "refused");
        assert!(connect.retry_safe());
        assert_eq!(connect.fault(), Fault::Upstream);
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::UpstreamBroken,
            ErrorKind::BodyCut,
        ] {
            assert!(!Error::new(kind, "x").retry_safe());
        }
        let idle = Error::new(ErrorKind::BodyIdle(Duration::from_secs(1)), "idle");
        assert_eq!(idle.fault(), Fault::Client);
        assert_eq!(
            Error::new(ErrorKind::Timeout, "slow").job_code(),
            "upstream_timeout"
        );
    }
}
