//! The upstream side: everything that talks to a route's backend.
//!
//! - [`client`]: the pooled HTTP/1.1 client and its resolve-once DNS table;
//! - [`forward`]: one request forwarded (URI rewrite, hop-by-hop hygiene, `X-Forwarded-*`,
//!   `Forwarded`, `Via`, the upstream timeout);
//! - [`operation`]: an async-first upstream's operation id and status URL;
//! - [`origin`]: the client side of a connection and its per-connection header text;
//! - [`poller`]: polling a status URL until the operation is terminal — shared by task
//!   routes (a waiting client) and jobs (a durable watch).
//!
//! Imports only foundations (body, config, metrics); nothing here knows about jobs.

pub mod client;
pub mod forward;
pub mod operation;
pub mod origin;
pub mod poller;
pub mod scan;
