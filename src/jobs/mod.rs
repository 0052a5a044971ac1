//! Gateway jobs: `respond-async` and `wait` for synchronous upstreams (behaviour §5).
//!
//! The job model and its stores are one layer down ([`crate::store`]); this is what a
//! `sync` route does with them:
//!
//! - [`engine`]: store + dispatcher + waiters; [`run`]: one job's upstream call;
//!   [`pace`]: run-time estimates, queue position and `Retry-After` for status reads;
//! - [`submit`]: `sync` route requests; [`api`]: `GET`/`DELETE` under `[jobs].path`;
//!   [`events`]: the live status stream (Server-Sent Events) of `GET {id}`;
//!   [`listing`]: the list at `[jobs].path` and purging a job;
//! - [`task_cancel`]: the upstream cancel call for a canceled watch of a `task` route.

pub mod api;
pub mod engine;
pub mod events;
pub mod listing;
pub mod pace;
mod retry;
pub mod run;
pub mod submit;
pub mod task_cancel;

pub use engine::Engine;
