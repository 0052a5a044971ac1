//! The string a JSON pointer names in a body, read without building the document.
//!
//! A waiting request polls its task's status URL once a second, and every answer is a JSON
//! body of which the gateway wants one field (`/status`). Parsing it into a
//! `serde_json::Value` allocates every key and value of the body; this walks the body
//! with serde_json's streaming deserializer instead, descending only along the pointer
//! and skipping everything else (`IgnoredAny`), so a poll allocates just the string it
//! returns. The body is still fully validated (a malformed body is an error, as before).
//!
//! Semantics are `serde_json::Value::pointer`'s on the parsed document, which the tests
//! check side by side: RFC 6901 tokens (`~1` → `/`, `~0` → `~`), array indices without a
//! sign or leading zeros, and for a key given twice the **last** one (a `Value` map keeps
//! the last insert).

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// What the pointer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A JSON string.
    Str(String),
    /// Something that is not a string (number, object, …).
    Other,
    /// Nothing: the path does not exist in the body.
    Missing,
}

/// Reads what `pointer` (RFC 6901 text, `""` for the whole body) names in `body`.
pub fn at(body: &[u8], pointer: &str) -> Result<Found, serde_json::Error> {
    // Borrowed tokens: a poll reads this once per answer, and a token needs a new string
    // only when it holds an escape (`~`), which status pointers (`/status`) never do.
    let tokens: Vec<Cow<'_, str>> = if pointer.is_empty() {
        Vec::new()
    } else if let Some(rest) = pointer.strip_prefix('/') {
        rest.split('/').map(unescape).collect()
    } else {
        // `Value::pointer` names nothing for a pointer without the leading `/`; the body
        // must still be JSON.
        serde_json::from_slice::<IgnoredAny>(body)?;
        return Ok(Found::Missing);
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = At(&tokens).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// An RFC 6901 token with `~1` → `/` and `~0` → `~` (in that order, so `~01` is `~1`).
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// The rest of the path below the value being read.
struct At<'p, 't>(&'p [Cow<'t, str>]);

impl<'de> DeserializeSeed<'de> for At<'_, '_> {
    type Value = Found;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(self)
    }
}

impl At<'_, '_> {
    fn scalar(&self) -> Found {
        if self.0.is_empty() {
            Found::Other
        } else {
            Found::Missing
        }
    }
}

impl<'de> Visitor<'de> for At<'_, '_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Found, E> {
        Ok(if self.0.is_empty() {
            Found::Str(v.to_owned())
        } else {
            Found::Missing
        })
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Found, E> {
        Ok(self.scalar())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let Some((head, rest)) = self.0.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Found::Other);
        };
        let mut found = Found::Missing;
        while let Some(hit) = map.next_key_seed(KeyIs(head))? {
            if hit {
                // A later duplicate wins, as in a parsed `Value`.
                found = map.next_value_seed(At(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let Some((head, rest)) = self.0.split_first() else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Found::Other);
        };
        let index = array_index(head);
        let (mut i, mut found) = (0usize, Found::Missing);
        loop {
            if Some(i) == index {
                match seq.next_element_seed(At(rest))? {
                    Some(f) => found = f,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i = i
                .checked_add(1)
                .ok_or_else(|| A::Error::custom("array too long"))?;
        }
        Ok(found)
    }
}

/// An RFC 6901 array index as `serde_json` reads one: digits, no sign, no leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Whether an object key equals `.0`, compared without allocating.
struct KeyIs<'h>(&'h str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Value::pointer` says about the same body and pointer.
    fn by_value(body: &str, pointer: &str) -> Option<Found> {
        let doc: serde_json::Value = serde_json::from_str(body).ok()?;
        Some(match doc.pointer(pointer) {
            Some(serde_json::Value::String(s)) => Found::Str(s.clone()),
            Some(_) => Found::Other,
            None => Found::Missing,
        })
    }

    #[test]
    fn agrees_with_value_pointer() {
        let bodies = [
            r#"{"status":"running"}"#,
            r#"{"status":"a","status":"b"}"#,
            r#"{"status":"a","status":1}"#,
            r#"{"status":1,"status":"b"}"#,
            r#"{"data":{"state":"done","n":[1,2,{"x":"y"}]},"status":null}"#,
            r#"{"a/b":{"c~d":"esc"}}"#,
            r#"["zero","one",{"two":"2"}]"#,
            r#""bare""#,
            r#"  {"s" : "spaced" }  "#,
            r#"{"s":"\u00e9\n\"q\""}"#,
            r#"{"s":"x"} trailing"#,
            r#"{"s":"x""#,
            r#"{"s":[1,2,3,{"deep":[[["v"]]]}]}"#,
            "",
            "nul",
        ];
        let pointers = [
            "",
            "/status",
            "/data/state",
            "/data/n/2/x",
            "/data/n/02",
            "/data/n/+1",
            "/data/n/9",
            "/a~1b/c~0d",
            "/0",
            "/2/two",
            "/s",
            "/s/3/deep/0/0/0",
            "status",
            "/status/0",
            "/missing",
        ];
        for body in bodies {
            for pointer in pointers {
                let ours = at(body.as_bytes(), pointer).ok();
                assert_eq!(ours, by_value(body, pointer), "{body:?} at {pointer:?}");
            }
        }
    }
}
