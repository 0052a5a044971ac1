//! The route table: every configured route, typed and ready to serve, built once per
//! config (start and each reload) and swapped whole.
//!
//! - [`router`]: matchit path patterns + methods → route; `404` / `405` + `Allow`;
//! - [`table`]: the [`table::Table`] of typed [`table::Route`]s.

pub mod router;
pub mod table;
