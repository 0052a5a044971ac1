//! Small config value types with their own parsing rules: sizes, JSON pointers, id sources.
//!
//! Each type validates on construction (`FromStr`), so a value that exists is valid.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

/// A byte count written as `"10MiB"`, `"512KiB"`, `"1048576"` (bare numbers are bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty size".into());
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(ByteSize(n));
        }
        bytesize::ByteSize::from_str(t)
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|e| format!("invalid size {s:?} ({e}); write e.g. \"10MiB\""))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize::b(self.0).to_string_as(true))
    }
}

/// An RFC 6901 JSON pointer (`""` or `/a/b~1c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer(String);

impl JsonPointer {
    /// The pointer text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value the pointer names, if present.
    pub fn get<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.pointer(&self.0)
    }

    /// Removes and returns the value the pointer names (object member or array element).
    pub fn remove(&self, v: &mut Value) -> Option<Value> {
        let (parent, last) = match self.0.rfind('/') {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => return None,
        };
        let key = last.replace("~1", "/").replace("~0", "~");
        match v.pointer_mut(parent)? {
            Value::Object(map) => map.shift_remove(&key),
            Value::Array(items) => {
                let i: usize = key.parse().ok()?;
                (i < items.len()).then(|| items.remove(i))
            }
            _ => None,
        }
    }
}

impl JsonPointer {
    /// Sets the value the pointer names, creating absent object members on the way (an
    /// existing member is replaced). `false`, and `v` unchanged at that point, when the way
    /// leads through something that is not an object (or an array index that exists), or
    /// the pointer is the whole document (`""`).
    pub fn set(&self, v: &mut Value, value: Value) -> bool {
        let Some(rest) = self.0.strip_prefix('/') else {
            return false;
        };
        let tokens: Vec<String> = rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let Some((last, parents)) = tokens.split_last() else {
            return false;
        };
        let mut at = v;
        for t in parents {
            at = match at {
                Value::Object(map) => map
                    .entry(t.clone())
                    .or_insert_with(|| Value::Object(serde_json::Map::new())),
                Value::Array(items) => match t.parse::<usize>().ok().and_then(|i| items.get_mut(i))
                {
                    Some(item) => item,
                    None => return false,
                },
                _ => return false,
            };
        }
        match at {
            Value::Object(map) => {
                map.insert(last.clone(), value);
                true
            }
            Value::Array(items) => {
                match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => {
                        *item = value;
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }
}

impl FromStr for JsonPointer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.is_empty() && !s.starts_with('/') {
            return Err(format!(
                "invalid JSON pointer {s:?}: must be empty or start with '/'"
            ));
        }
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0') | Some('1')) {
                return Err(format!(
                    "invalid JSON pointer {s:?}: '~' must be followed by '0' or '1'"
                ));
            }
        }
        Ok(JsonPointer(s.to_owned()))
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a task's operation id is found in the submit's `202`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// A JSON pointer into the 202 body, e.g. `/taskId`.
    Pointer(JsonPointer),
    /// `header:NAME`, e.g. `header:Location` (the last path segment of a URL is the id).
    Header(http::HeaderName),
}

impl FromStr for IdSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("header:") {
            Some(name) => http::HeaderName::from_str(name.trim())
                .map(IdSource::Header)
                .map_err(|_| format!("invalid header name in {s:?}")),
            None => s.parse().map(IdSource::Pointer),
        }
    }
}

impl fmt::Display for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSource::Pointer(p) => write!(f, "{p}"),
            IdSource::Header(h) => write!(f, "header:{h}"),
        }
    }
}

/// The route's bounds on `wait=N`, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitLimits {
    /// `wait` below this is ignored (default 1).
    pub min_secs: u64,
    /// `wait` above this is capped to it (default 600).
    pub max_secs: u64,
}

impl Default for WaitLimits {
    fn default() -> Self {
        WaitLimits {
            min_secs: 1,
            max_secs: 600,
        }
    }
}

impl WaitLimits {
    /// From the config's `min_wait`/`max_wait`: the floor rounds up and the cap rounds
    /// down, so a whole-second wait never crosses either bound.
    pub fn from_durations(min_wait: Duration, max_wait: Duration) -> Self {
        let min_secs = min_wait
            .as_secs()
            .saturating_add(u64::from(min_wait.subsec_nanos() > 0));
        WaitLimits {
            min_secs,
            max_secs: max_wait.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JsonPointer;
    use serde_json::json;

    #[test]
    fn set_creates_replaces_and_refuses() {
        let p: JsonPointer = "/hook/url".parse().unwrap();
        let mut v = json!({"a": 1});
        assert!(p.set(&mut v, json!("u")));
        assert_eq!(v, json!({"a": 1, "hook": {"url": "u"}}));
        assert!(p.set(&mut v, json!("w")));
        assert_eq!(v["hook"]["url"], "w");
        let mut not_obj = json!({"hook": 3});
        assert!(!p.set(&mut not_obj, json!("u")));
        let mut arr = json!([1]);
        assert!(!p.set(&mut arr, json!("u")));
        let esc: JsonPointer = "/a~1b".parse().unwrap();
        let mut v = json!({});
        assert!(esc.set(&mut v, json!(1)));
        assert_eq!(v, json!({"a/b": 1}));
        let root: JsonPointer = "".parse().unwrap();
        assert!(!root.set(&mut json!({}), json!(1)));
    }
}
