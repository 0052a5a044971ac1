//! A route's `async_requires`: body fields an asynchronous request must hold. Pure.
//!
//! Some APIs only accept certain options asynchronously — the seed's "`async: true`
//! requires `response_mode: "urls"`; with `"bytes"` it is a `422`". A route lists such
//! rules as JSON pointer → required value; [`unmet`] finds the first one (in file order) a
//! request body breaks, and the caller answers `422` before any job is created or anything
//! is forwarded. Only ASYNC and WAIT requests are checked ([`super::Mode::is_asynchronous`]);
//! a synchronous request gets whatever the upstream does with the field.
//!
//! Decisions:
//!
//! - **The body as the client sent it** is checked, before the gateway takes its own
//!   fields (`mode`, callback) out, so a rule means what the client wrote.
//! - **A missing field, a different value, or a body that is not a JSON object** all break
//!   a rule: the route promises its upstream the field, so "absent" is not "allowed".
//! - **JSON equality:** strings, booleans and numbers compare as JSON values, with one
//!   number type — `1` and `1.0` are equal, `"1"` and `1` are not.

use serde_json::Value;

use crate::config::AsyncRule;

/// The first rule `doc` does not meet, or `None` when it meets them all. `doc` is the
/// parsed request body; `None` when the body is not JSON at all.
pub fn unmet<'r>(rules: &'r [AsyncRule], doc: Option<&Value>) -> Option<&'r AsyncRule> {
    let object = doc.filter(|d| d.is_object());
    rules.iter().find(|rule| {
        let held = object.and_then(|d| rule.field.get(d));
        !held.is_some_and(|v| json_eq(v, &rule.expected))
    })
}

/// JSON equality, with numbers compared by value whatever their representation.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // serde_json keeps integers and floats apart (`1 != 1.0`); JSON itself does not.
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.as_f64() == y.as_f64()
        }
        _ => a == b,
    }
}
