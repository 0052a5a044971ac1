//! Serde seeds that read a string value and run a parser on it, alone or as list entries.
//!
//! The seeds exist so a parser's error is raised *inside* the value's deserialisation: toml
//! then attaches that value's span (for a list, the entry's span) and `serde_path_to_error`
//! its key path, e.g. `routes[0].methods[1]`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// Reads one string and parses it; `what` is the "expected …" text for a non-string value.
pub(super) struct Parse<T> {
    pub what: &'static str,
    pub parse: fn(&str) -> Result<T, String>,
    /// Also accept a TOML date-time literal (dates only).
    pub datetime: bool,
}

impl<T> Clone for Parse<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Parse<T> {}

/// A [`Parse`] for plain strings.
pub(super) fn p<T>(what: &'static str, parse: fn(&str) -> Result<T, String>) -> Parse<T> {
    Parse {
        what,
        parse,
        datetime: false,
    }
}

impl<'de, T> DeserializeSeed<'de> for Parse<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T> Visitor<'de> for Parse<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.parse)(s).map_err(E::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        // toml hands a date-time literal over as a one-entry map under this private key.
        const TOML_DATETIME: &str = "$__toml_private_datetime";
        if self.datetime && map.next_key::<String>()?.as_deref() == Some(TOML_DATETIME) {
            let text: String = map.next_value()?;
            return self.visit_str(&text);
        }
        Err(de::Error::invalid_type(de::Unexpected::Map, &self))
    }
}

/// A list of parsed strings; with `unique`, a repeated entry is an error at that entry.
pub(super) struct List<T> {
    pub item: Parse<T>,
    pub unique: bool,
}

/// One list entry, checked against the entries before it.
struct Item<'a, T> {
    item: Parse<T>,
    seen: &'a [T],
    unique: bool,
}

impl<'de, T: PartialEq + fmt::Debug> DeserializeSeed<'de> for Item<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

/// Parses *and* checks for duplicates inside `visit_str`, so that both errors are raised
/// within the entry's own deserialisation and carry the entry's span, not the list's.
impl<'de, T: PartialEq + fmt::Debug> Visitor<'de> for Item<'_, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.item.what)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let value = (self.item.parse)(s).map_err(E::custom)?;
        if self.unique && self.seen.contains(&value) {
            return Err(E::custom(format!("duplicate entry {value:?}")));
        }
        Ok(value)
    }
}

impl<'de, T: PartialEq + fmt::Debug> Visitor<'de> for List<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list, each entry {}", self.item.what)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(value) = seq.next_element_seed(Item {
            item: self.item,
            seen: &out,
            unique: self.unique,
        })? {
            out.push(value);
        }
        Ok(out)
    }
}

/// A list that must have at least one entry (the error points at the whole list).
pub(super) fn non_empty<'de, D, T>(d: D, item: Parse<T>, unique: bool) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: PartialEq + fmt::Debug,
{
    let list = d.deserialize_seq(List { item, unique })?;
    if list.is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(list)
}

/// A parsed value together with its span, for later cross-checks.
pub(super) fn spanned<'de, D, T>(
    d: D,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Spanned<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Spanned::<String>::deserialize(d)?;
    let value = parse(raw.get_ref()).map_err(de::Error::custom)?;
    Ok(Spanned::new(raw.span(), value))
}
