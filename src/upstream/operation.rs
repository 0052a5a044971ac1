//! Reading an async-first upstream's contract: the operation id in a `202`, the status URL.
//!
//! Decisions the contract leaves open:
//! - an id read by JSON pointer may be a JSON string or a number (`{"taskId": 42}`);
//! - an id read from a header (`header:Location`) is the header value itself, or — when the
//!   value is a URL or a path (`/v1/tasks/abc?x=1`) — its last non-empty path segment;
//! - the id is percent-encoded as one path segment when it is put into the status URL, so an
//!   id can never change the path the gateway polls.

use bytes::Bytes;
use http::{HeaderMap, Uri};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::Value;

use crate::config::IdSource;
use crate::upstream::forward::Upstream;

/// RFC 3986 path-segment encoding: everything but unreserved and sub-delims is escaped.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The operation id from a `202`'s headers or body.
pub fn extract_id(src: &IdSource, headers: &HeaderMap, body: &Bytes) -> Result<String, String> {
    let id = match src {
        IdSource::Pointer(p) => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| format!("the 202 body is not JSON ({e}); cannot read id at {p}"))?;
            match p.get(&doc) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => return Err(format!("the 202 body's {p} is not a string")),
                None => return Err(format!("the 202 body has no {p}")),
            }
        }
        IdSource::Header(name) => {
            let raw = headers
                .get(name)
                .ok_or_else(|| format!("the 202 has no {name} header"))?
                .to_str()
                .map_err(|_| format!("the 202's {name} header is not visible ASCII"))?
                .trim();
            id_from_header(raw)
        }
    };
    if id.is_empty() {
        return Err("the operation id is empty".into());
    }
    Ok(id)
}

fn id_from_header(raw: &str) -> String {
    if !raw.contains('/') {
        return raw.to_owned();
    }
    let path = raw.split(['?', '#']).next().unwrap_or(raw);
    let path = match path.find("://") {
        Some(i) => path[i + 3..].find('/').map_or("", |j| &path[i + 3 + j..]),
        None => path,
    };
    let seg = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

/// A status URL template (`/v1/tasks/{id}` or `http://host/tasks/{id}`).
#[derive(Debug, Clone)]
pub struct StatusUrl {
    template: String,
    /// `(host, port)` of an absolute template, read once when the route table is built.
    host: Option<(String, u16)>,
}

impl StatusUrl {
    /// From a validated template containing `{id}`.
    pub fn new(template: &str) -> Self {
        let host = url::Url::parse(template).ok().and_then(|abs| {
            let h = abs.host_str()?.trim_matches(['[', ']']).to_owned();
            Some((h, abs.port_or_known_default()?))
        });
        StatusUrl {
            template: template.to_owned(),
            host,
        }
    }

    /// The host to resolve before traffic, when the template is an absolute URL.
    pub fn host_port(&self) -> Option<(String, u16)> {
        self.host.clone()
    }

    /// The URI to poll for `id`.
    pub fn uri(&self, upstream: &Upstream, id: &str) -> Result<Uri, String> {
        let encoded = utf8_percent_encode(id, SEGMENT).to_string();
        let filled = self.template.replace("{id}", &encoded);
        if filled.starts_with('/') {
            upstream
                .uri(&filled)
                .map_err(|_| format!("bad status URL {filled:?}"))
        } else {
            filled
                .parse::<Uri>()
                .map_err(|e| format!("bad status URL {filled:?}: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn id_by_pointer_string_or_number() {
        let src: IdSource = "/taskId".parse().unwrap();
        let h = HeaderMap::new();
        assert_eq!(
            extract_id(&src, &h, &Bytes::from(r#"{"taskId":"t-1"}"#)).unwrap(),
            "t-1"
        );
        assert_eq!(
            extract_id(&src, &h, &Bytes::from(r#"{"taskId":42}"#)).unwrap(),
            "42"
        );
        assert!(extract_id(&src, &h, &Bytes::from(r#"{"id":"x"}"#)).is_err());
        assert!(extract_id(&src, &h, &Bytes::from("not json")).is_err());
        assert!(extract_id(&src, &h, &Bytes::from(r#"{"taskId":""}"#)).is_err());
        assert!(extract_id(&src, &h, &Bytes::from(r#"{"taskId":[1]}"#)).is_err());
    }

    #[test]
    fn id_by_header_value_or_last_segment() {
        let src: IdSource = "header:Location".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("location", HeaderValue::from_static("/v1/tasks/abc?x=1"));
        assert_eq!(extract_id(&src, &h, &Bytes::new()).unwrap(), "abc");
        h.insert(
            "location",
            HeaderValue::from_static("http://up:9/v1/tasks/a%20b/"),
        );
        assert_eq!(extract_id(&src, &h, &Bytes::new()).unwrap(), "a b");
        h.insert("location", HeaderValue::from_static("plain-id"));
        assert_eq!(extract_id(&src, &h, &Bytes::new()).unwrap(), "plain-id");
        assert!(extract_id(&src, &HeaderMap::new(), &Bytes::new()).is_err());
    }

    #[test]
    fn status_url_encodes_the_id_as_one_segment() {
        let up = Upstream::from_url(&url::Url::parse("http://127.0.0.1:9000").unwrap()).unwrap();
        let s = StatusUrl::new("/v1/tasks/{id}");
        assert_eq!(
            s.uri(&up, "a/../b c").unwrap().to_string(),
            "http://127.0.0.1:9000/v1/tasks/a%2F..%2Fb%20c"
        );
        let abs = StatusUrl::new("http://other:7/s/{id}?full=1");
        assert_eq!(
            abs.uri(&up, "9").unwrap().to_string(),
            "http://other:7/s/9?full=1"
        );
    }
}
