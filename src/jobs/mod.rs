//! Gateway jobs: `respond-async` and `wait` for synchronous upstreams (behaviour §5).
//!
//! - [`model`]: the job and its states; [`store`]: the `JobStore` trait;
//! - [`memory`] and [`sqlite`]: the in-process and the embedded durable store; [`redis`]:
//!   the store shared by several replicas;
//! - [`engine`]: store + dispatcher + waiters; [`run`]: one job's upstream call;
//! - [`claims`]: the claim loop of durable deliveries (callbacks, admission notices);
//! - [`submit`]: `sync` route requests; [`api`]: `GET`/`DELETE` under `[jobs].path`;
//! - [`document`]: status document, `202` handle, result replay;
//! - [`signed_url`]: signed result URLs (`download_url`), signing and verifying (pure);
//! - [`idempotency`]: `Idempotency-Key` parsing and request fingerprints.

pub mod api;
pub mod claims;
pub mod document;
pub mod engine;
pub mod idempotency;
pub mod memory;
pub mod model;
pub mod redis;
pub mod run;
pub mod signed_url;
pub mod sqlite;
pub mod store;
pub mod submit;

pub use engine::Engine;
pub use model::{Admission, Delivery, DeliveryKind, Job, JobStatus, NewAdmission, NewJob, Outcome};
pub use store::{Canceled, Created, JobStore, Lookup, Recovery, Redeliver, StoreError};
