//! Signed webhook callbacks (behaviour §6).
//!
//! - [`guard`]: which callback URLs and addresses are allowed (pure);
//! - [`resolve`]: the DNS resolver and HTTP client that connect only to checked addresses;
//! - [`crate::sign`] (a foundation, shared with signed result links): Standard Webhooks and
//!   `X-Signature` signatures, per-tenant secrets;
//! - [`schedule`]: when the next attempt is due (pure);
//! - [`deliver`]: one delivery attempt and the worker that claims due deliveries;
//! - [`intake`]: taking the callback URL off a request and checking it at submit;
//! - [`events`]: the events a client asks for besides the terminal one (`started`).

pub mod deliver;
pub mod events;
pub mod guard;
pub mod intake;
pub mod resolve;
pub mod schedule;
