//! The `Prefer` grammar: splitting a line into raw elements (commas outside quoted
//! strings) and parsing one element into a [`Preference`] (RFC 7240 §2, RFC 9110 §5.6).
//! Every function is total: any byte sequence yields a value or `None`, never a panic.

use super::{Param, Preference};

// === parsing ===

/// The raw elements of one line: split at commas outside quoted strings, trimmed of OWS,
/// empty ones skipped.
pub(super) struct Elements<'a> {
    rest: &'a [u8],
}

pub(super) fn elements(line: &[u8]) -> Elements<'_> {
    Elements { rest: line }
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let s = self.rest;
            let mut i = 0;
            let mut quoted = false;
            while i < s.len() {
                match s[i] {
                    b'"' => quoted = !quoted,
                    // Inside quotes a backslash escapes the next byte, `\"` and `\,` too.
                    b'\\' if quoted => i += 1,
                    b',' if !quoted => break,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(s.len());
            self.rest = s.get(end + 1..).unwrap_or_default();
            let element = trim_ows(&s[..end]);
            if !element.is_empty() {
                return Some(element);
            }
        }
        None
    }
}

/// Parses one trimmed element; `None` when it does not match the grammar.
pub(super) fn parse_element(raw: &[u8]) -> Option<Preference> {
    let mut c = Cursor { s: raw, i: 0 };
    let (name, value) = c.name_value()?;
    let mut params = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => break,
            Some(b';') => c.i += 1,
            Some(_) => return None,
        }
        c.skip_ows();
        if matches!(c.peek(), None | Some(b';')) {
            continue; // `;` with no parameter is allowed by the ABNF
        }
        let (name, value) = c.name_value()?;
        params.push(Param { name, value });
    }
    Some(Preference {
        name,
        value,
        params,
    })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `1*tchar`, possibly empty.
    fn token(&mut self) -> &[u8] {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// `token [ BWS "=" BWS word ]`: lowercased name, value (`None` when empty).
    fn name_value(&mut self) -> Option<(String, Option<String>)> {
        let name = self.token();
        if name.is_empty() {
            return None;
        }
        let name = ascii_string(name, true);
        let before = self.i;
        self.skip_ows();
        if !self.eat(b'=') {
            self.i = before; // the OWS belongs to whatever follows
            return Some((name, None));
        }
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            ascii_string(self.token(), false)
        };
        Some((name, Some(value).filter(|v| !v.is_empty())))
    }

    /// A quoted-string starting at the cursor, unescaped; `None` when unterminated or
    /// holding a control byte.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                // Valid UTF-8 (the usual case) is moved, not copied; obs-text goes lossy.
                b'"' => {
                    return Some(
                        String::from_utf8(out)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    )
                }
                b'\\' => {
                    let escaped = self
                        .peek()
                        .filter(|&e| is_qtext(e) || e == b'"' || e == b'\\')?;
                    self.i += 1;
                    out.push(escaped);
                }
                _ if is_qtext(b) => out.push(b),
                _ => return None,
            }
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(super) fn is_tchar(b: u8) -> bool {
    // `#$%&'` and `^_`a..z` are contiguous ranges; one `matches!` compiles to a table.
    matches!(b, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z'
        | b'^'..=b'z' | b'|' | b'~')
}

/// `qdtext` (RFC 9110 §5.6.4): HTAB, SP, visible ASCII except `"` and `\`, obs-text.
fn is_qtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// Token bytes (always ASCII) as a `String`, optionally lowercased.
fn ascii_string(bytes: &[u8], lower: bool) -> String {
    // ASCII is UTF-8, so this is one copy and never actually lossy.
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if lower {
        s.make_ascii_lowercase();
    }
    s
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether a raw element's leading token (its preference name, even when the rest is
/// malformed) is one of `names`.
pub(super) fn named(raw: &[u8], names: &[&str]) -> bool {
    let end = raw.iter().position(|&b| !is_tchar(b)).unwrap_or(raw.len());
    let token = &raw[..end];
    !token.is_empty()
        && names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(token))
}

/// `1*DIGIT` as a saturating `u64`.
pub(super) fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}
