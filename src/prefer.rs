//! RFC 7240 `Prefer`: parse request lines into [`Preferences`], strip the ones the gateway
//! owns before forwarding ([`strip`]), render `Preference-Applied` ([`applied`]). No I/O.
//!
//! Grammar (RFC 7240 §2 with RFC 9110 list rules):
//!
//! ```text
//! preference = token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )
//! parameter  = token [ BWS "=" BWS word ]
//! word       = token / quoted-string
//! ```
//!
//! Decisions the contract (behaviour §2) leaves to the implementation:
//!
//! - **Two passes per line.** A line is first split into raw elements at commas outside
//!   quoted strings, then each element is parsed strictly. Splitting first is what lets a
//!   malformed element be skipped while the rest of the line still counts, and it gives
//!   [`strip`] the raw text it must keep byte-for-byte. Any `"` opens a quoted string for
//!   the splitter, so an unterminated quote swallows the rest of its line (that element is
//!   then malformed and skipped) rather than guessing where the client meant it to end.
//! - **First valid occurrence wins** (RFC 7240 §2). A malformed element is no occurrence:
//!   `wait=5 5, wait=7` waits 7; but `wait=abc, wait=7` has a well-formed first `wait`
//!   that is not a number, so [`Preferences::wait`] is `None`.
//! - **Empty values are absent:** `foo=`, `foo=""` and `foo` are equal (`foo=` is outside
//!   the ABNF, but the contract accepts it).
//! - **`respond-async` takes no value** (its ABNF in RFC 7240 §4.1 is the bare name), so
//!   `respond-async=yes` is a well-formed first occurrence that does not ask for async.
//!   Parameters after `;` are allowed on it and on `wait`, and ignored, as for any
//!   unknown parameter.
//! - **`wait` is `1*DIGIT`**, checked on the stored value, so `wait="5"` counts and
//!   `wait=" 5"`, `-1`, `+5`, `5.5`, `1e3` do not. Huge numbers saturate at `u64::MAX`
//!   (the caller caps them).
//! - **Bytes outside visible ASCII never panic**: controls and obs-text outside quotes make
//!   an element malformed; obs-text inside quotes is kept, decoded lossily as UTF-8.
//! - **[`strip`] removes by leading token**, even when the rest of the element is
//!   malformed: the gateway owns `wait`/`respond-async` on task and sync routes, and a
//!   lenient upstream must not act on a `wait=5 5` the gateway ignored. A line from which
//!   nothing is removed is forwarded untouched (spacing and empty elements included).

use std::collections::HashSet;

use http::header::{HeaderMap, HeaderName, HeaderValue};

#[cfg(test)]
mod tests;

/// The `Prefer` request header (RFC 7240 §2); `http` has no constant for it.
pub const PREFER: HeaderName = HeaderName::from_static("prefer");

/// The `Preference-Applied` response header (RFC 7240 §3).
pub const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// One parameter after a `;` in a preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name, ASCII-lowercased.
    pub name: String,
    /// Unquoted value; `None` for a bare name or an empty value.
    pub value: Option<String>,
}

/// One preference: name, optional value, parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    /// Preference name, ASCII-lowercased.
    pub name: String,
    /// Unquoted value (case kept); `None` for a bare name or an empty value.
    pub value: Option<String>,
    /// Parameters after `;`, in order, duplicates kept.
    pub params: Vec<Param>,
}

impl Preference {
    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// The preferences of one request: the first valid occurrence of each name, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    prefs: Vec<Preference>,
}

/// Beyond this many distinct preferences, duplicates are found through a hash set; a
/// linear scan is faster for the usual two or three, but quadratic on a hostile header.
const LINEAR_DEDUP: usize = 16;

impl Preferences {
    /// Parses `Prefer` lines (each item is one header line's raw bytes), in order.
    pub fn parse<'a, I: IntoIterator<Item = &'a [u8]>>(lines: I) -> Preferences {
        let mut prefs: Vec<Preference> = Vec::new();
        let mut seen: Option<HashSet<String>> = None;
        for line in lines {
            for raw in elements(line) {
                let Some(pref) = parse_element(raw) else {
                    continue;
                };
                let dup = match &mut seen {
                    Some(set) => !set.insert(pref.name.clone()),
                    None => prefs.iter().any(|p| p.name == pref.name),
                };
                if dup {
                    continue;
                }
                if seen.is_none() && prefs.len() >= LINEAR_DEDUP {
                    seen = Some(
                        prefs
                            .iter()
                            .chain([&pref])
                            .map(|p| p.name.clone())
                            .collect(),
                    );
                }
                prefs.push(pref);
            }
        }
        Preferences { prefs }
    }

    /// Parses every `Prefer` line of `headers`, in order.
    pub fn from_headers(headers: &HeaderMap) -> Preferences {
        Preferences::parse(headers.get_all(&PREFER).iter().map(HeaderValue::as_bytes))
    }

    /// The preference called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Preference> {
        self.prefs
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// All preferences, first occurrences only, in request order.
    pub fn iter(&self) -> impl Iterator<Item = &Preference> {
        self.prefs.iter()
    }

    /// Whether the request stated no (valid) preference at all.
    pub fn is_empty(&self) -> bool {
        self.prefs.is_empty()
    }

    /// Whether `respond-async` was asked for: present, and without a value.
    pub fn respond_async(&self) -> bool {
        self.get("respond-async").is_some_and(|p| p.value.is_none())
    }

    /// The `wait` value in seconds when the first `wait` is `1*DIGIT` (saturating at
    /// `u64::MAX`; `0` is returned as such); `None` when absent or not a number.
    pub fn wait(&self) -> Option<u64> {
        digits(self.get("wait")?.value.as_deref()?)
    }
}

impl<'a> IntoIterator for &'a Preferences {
    type Item = &'a Preference;
    type IntoIter = std::slice::Iter<'a, Preference>;
    fn into_iter(self) -> Self::IntoIter {
        self.prefs.iter()
    }
}

/// `Preference-Applied` for an async outcome: `respond-async`, or
/// `respond-async, wait=N` (a `wait` implies `respond-async`, behaviour §3).
pub fn applied(respond_async: bool, wait: Option<u64>) -> HeaderValue {
    match (respond_async, wait) {
        (_, Some(n)) => HeaderValue::try_from(format!("respond-async, wait={n}"))
            // Digits and ASCII always make a valid value; the fallback is unreachable.
            .unwrap_or_else(|_| HeaderValue::from_static("respond-async")),
        // `(false, None)`: nothing was applied, and callers only render after applying
        // something; the plain preference is the least wrong value to return.
        (true | false, None) => HeaderValue::from_static("respond-async"),
    }
}

/// Removes every element whose preference name is in `names` (case-insensitive) from every
/// `Prefer` line. Kept elements keep their raw text (trimmed of OWS), re-joined with `", "`;
/// a line left empty is removed; a line that loses nothing is left as it was.
pub fn strip(headers: &mut HeaderMap, names: &[&str]) {
    // The usual request has one `Prefer` line that is all execution preferences
    // (`respond-async`, `wait=N`), or none: those need no copy of the lines and no new value.
    let (mut all_named, mut any_named) = (true, false);
    for line in headers.get_all(&PREFER) {
        let mut empty = true;
        for raw in elements(line.as_bytes()) {
            let hit = named(raw, names);
            all_named &= hit;
            any_named |= hit;
            empty = false;
        }
        // A line with no element loses nothing, so it stays (as below).
        all_named &= !empty;
    }
    if !any_named {
        return;
    }
    if all_named {
        headers.remove(&PREFER);
        return;
    }
    let lines: Vec<HeaderValue> = headers.get_all(&PREFER).iter().cloned().collect();
    if lines.is_empty() {
        return;
    }
    headers.remove(&PREFER);
    for line in lines {
        let bytes = line.as_bytes();
        let all = elements(bytes).count();
        let kept: Vec<&[u8]> = elements(bytes).filter(|raw| !named(raw, names)).collect();
        if kept.len() == all {
            headers.append(PREFER, line);
            continue;
        }
        if kept.is_empty() {
            continue;
        }
        let joined = kept.join(&b", "[..]);
        // Sub-slices of a valid value joined by ", " are valid; a failure drops the line
        // rather than forwarding what the gateway meant to remove.
        if let Ok(mut value) = HeaderValue::from_bytes(&joined) {
            value.set_sensitive(line.is_sensitive());
            headers.append(PREFER, value);
        }
    }
}

mod grammar;
use grammar::{digits, elements, named, parse_element};
