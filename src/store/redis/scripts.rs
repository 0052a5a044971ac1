//! The Lua scripts of the [`RedisStore`](super::RedisStore), one per operation that two
//! replicas could race.
//!
//! Each script is `lua/prelude.lua` (key layout and the shared steps: `lookup`, `finish`,
//! the delivery index) followed by the operation's own file, so the shared steps are
//! written once yet every script stays self-contained on the server. Redis runs a script
//! atomically: nothing else executes between its first read and its last write, which is
//! what makes create-if-absent, claim, and cancel-vs-complete safe across replicas.
//!
//! Replies are arrays of byte strings led by a tag (`{'found', field, value, ...}`) or
//! integers; the helpers at the end take them apart, refusing any other shape.
//!
//! Scripts are sent as `EVALSHA`; [`redis::Script`] falls back to loading the source when
//! the server answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`), so nothing needs to
//! be preloaded. Every script takes its arguments in `ARGV` (the key prefix first) and
//! derives its keys itself; see `redis.rs` for why.

use redis::{Script, Value};

use super::codec::num;
use crate::store::StoreError;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// The compiled (hashed) scripts, built once per store.
pub(super) struct Scripts {
    pub create: Script,
    pub get: Script,
    pub get_unscoped: Script,
    pub claim: Script,
    pub renew: Script,
    pub note_attempt: Script,
    pub complete: Script,
    pub cancel: Script,
    pub stale: Script,
    pub recover: Script,
    pub sweep: Script,
    pub claim_delivery: Script,
    pub record_attempt: Script,
    pub redeliver: Script,
    pub depths: Script,
    pub list: Script,
    pub purge: Script,
}

/// The prelude followed by one operation's body.
fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            create: with_prelude(include_str!("lua/create.lua")),
            get: with_prelude(include_str!("lua/get.lua")),
            get_unscoped: with_prelude(include_str!("lua/get_unscoped.lua")),
            claim: with_prelude(include_str!("lua/claim.lua")),
            renew: with_prelude(include_str!("lua/renew.lua")),
            note_attempt: with_prelude(include_str!("lua/note_attempt.lua")),
            complete: with_prelude(include_str!("lua/complete.lua")),
            cancel: with_prelude(include_str!("lua/cancel.lua")),
            stale: with_prelude(include_str!("lua/stale.lua")),
            recover: with_prelude(include_str!("lua/recover.lua")),
            sweep: with_prelude(include_str!("lua/sweep.lua")),
            claim_delivery: with_prelude(include_str!("lua/claim_delivery.lua")),
            record_attempt: with_prelude(include_str!("lua/record_attempt.lua")),
            redeliver: with_prelude(include_str!("lua/redeliver.lua")),
            depths: with_prelude(include_str!("lua/depths.lua")),
            list: with_prelude(include_str!("lua/list.lua")),
            purge: with_prelude(include_str!("lua/purge.lua")),
        }
    }
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripts").finish_non_exhaustive()
    }
}

// === Replies ===

/// One item of a script's array reply as bytes (Lua strings arrive as bulk strings,
/// numbers as integers).
pub(super) fn item(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(n) => Ok(num(n)),
        other => Err(StoreError::new(format!(
            "unexpected item in a script reply: {other:?}"
        ))),
    }
}

/// An array reply as a list of byte strings.
pub(super) fn items(value: Value) -> Result<Vec<Vec<u8>>, StoreError> {
    match value {
        Value::Array(values) => values.into_iter().map(item).collect(),
        other => Err(StoreError::new(format!(
            "expected an array from the script, got {other:?}"
        ))),
    }
}

/// A `{tag, field, value, ...}` reply: the tag, and the rest.
pub(super) fn tagged(value: Value) -> Result<(String, Vec<Vec<u8>>), StoreError> {
    let mut items = items(value)?.into_iter();
    let tag = items
        .next()
        .and_then(|t| String::from_utf8(t).ok())
        .ok_or_else(|| StoreError::new("script reply without a tag"))?;
    Ok((tag, items.collect()))
}

/// An integer reply.
pub(super) fn integer(value: Value) -> Result<i64, StoreError> {
    match value {
        Value::Int(n) => Ok(n),
        other => Err(StoreError::new(format!(
            "expected an integer from the script, got {other:?}"
        ))),
    }
}

/// A reply tag no branch expected: the scripts and this code disagree.
pub(super) fn unexpected(op: &str, tag: &str) -> StoreError {
    StoreError::new(format!("{op}: unexpected script reply {tag:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_taken_apart_or_refused() {
        let reply = Value::Array(vec![
            Value::BulkString(b"found".to_vec()),
            Value::Int(7),
            Value::SimpleString("x".into()),
        ]);
        let (tag, rest) = tagged(reply).unwrap();
        assert_eq!(
            (tag.as_str(), rest),
            ("found", vec![b"7".to_vec(), b"x".to_vec()])
        );
        assert!(tagged(Value::Array(Vec::new())).is_err());
        assert!(tagged(Value::Int(1)).is_err());
        assert!(items(Value::Array(vec![Value::Nil])).is_err());
        assert_eq!(integer(Value::Int(3)).unwrap(), 3);
        assert!(integer(Value::Okay).is_err());
    }
}
