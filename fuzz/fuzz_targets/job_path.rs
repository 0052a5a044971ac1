//! Fuzzes the job API's path and query parsing: `jobs::api::parse_path` (which resource a
//! path under `[jobs].path` names), `jobs::listing::parse` and `wants_purge` (the listing
//! and purge queries) and the listing cursor (`encode_cursor` / `decode_cursor`).
//!
//! Input: the first line is the `[jobs].path` prefix, the second a request path, the rest a
//! query string (also tried as a cursor).
//!
//! Invariants checked (src/jobs/api.rs and src/jobs/listing.rs module docs):
//!
//! - never panics, on any bytes;
//! - `parse_path` is exact: `List` iff the path is the prefix; otherwise `Status(id)`,
//!   `Result(id)`, `Callback(id)` iff the path is `{prefix}/{id}`, `{prefix}/{id}/result`,
//!   `{prefix}/{id}/callback` with a non-empty `id` without `/` — so rendering the answer
//!   gives the path back, and anything else is `None` (→ 404);
//! - every such path built from the prefix and an id (the fuzzed one, a fresh UUIDv7)
//!   parses back to that id;
//! - `wants_purge` is `Ok(false)` without `purge`, `Ok(b)` for exactly one `purge=true` /
//!   `purge=false`, `Err` otherwise;
//! - `listing::parse` agrees with an independent model of the documented rules: each of
//!   `status`, `route`, `limit`, `cursor` at most once and non-empty, a known status, a
//!   limit of plain digits in 1–100, a cursor of 32 base64url characters; other names
//!   ignored; the defaults otherwise;
//! - a cursor decodes iff it is 32 base64url characters, and then encodes back to itself
//!   (one position, one spelling); `decode(encode(c)) == c` for any time and UUID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prefer_gateway::jobs::api::{parse_path, JobPath};
use prefer_gateway::jobs::listing::{self, decode_cursor, encode_cursor};
use prefer_gateway::store::{Cursor, JobStatus, ListQuery};

const MAX_LIMIT: usize = 100;

fn render(prefix: &str, p: JobPath<'_>) -> String {
    match p {
        JobPath::List => prefix.to_owned(),
        JobPath::Status(id) => format!("{prefix}/{id}"),
        JobPath::Result(id) => format!("{prefix}/{id}/result"),
        JobPath::Callback(id) => format!("{prefix}/{id}/callback"),
    }
}

/// The documented path rules, written without `parse_path`'s code.
fn expected<'a>(prefix: &str, path: &'a str) -> Option<JobPath<'a>> {
    if path == prefix {
        return Some(JobPath::List);
    }
    if path.len() <= prefix.len() + 1
        || !path.starts_with(prefix)
        || path.as_bytes()[prefix.len()] != b'/'
    {
        return None;
    }
    let rest = &path[prefix.len() + 1..];
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        [id] if !id.is_empty() => Some(JobPath::Status(id)),
        [id, "result"] if !id.is_empty() => Some(JobPath::Result(id)),
        [id, "callback"] if !id.is_empty() => Some(JobPath::Callback(id)),
        _ => None,
    }
}

fn check_path(prefix: &str, path: &str) {
    let got = parse_path(prefix, path);
    assert_eq!(
        got,
        expected(prefix, path),
        "prefix {prefix:?} path {path:?}"
    );
    if let Some(p) = got {
        assert_eq!(render(prefix, p), path);
        if let JobPath::Status(id) | JobPath::Result(id) | JobPath::Callback(id) = p {
            assert!(!id.is_empty() && !id.contains('/'));
        }
    }
}

fn check_ids(prefix: &str, id: &str) {
    if id.is_empty() || id.contains('/') {
        return;
    }
    for p in [
        JobPath::Status(id),
        JobPath::Result(id),
        JobPath::Callback(id),
    ] {
        assert_eq!(parse_path(prefix, &render(prefix, p)), Some(p));
    }
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_cursor(s: &str) {
    let got = decode_cursor(s);
    assert_eq!(
        got.is_some(),
        s.len() == 32 && is_base64url(s),
        "cursor {s:?}"
    );
    if let Some(c) = got {
        assert_eq!(encode_cursor(&c).ok().as_deref(), Some(s));
    }
}

fn check_purge(query: &str) {
    let values: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(n, _)| n == "purge")
        .map(|(_, v)| v.into_owned())
        .collect();
    let want = match values.as_slice() {
        [] => Some(false),
        [v] if v == "true" => Some(true),
        [v] if v == "false" => Some(false),
        _ => None,
    };
    assert_eq!(listing::wants_purge(Some(query)).ok(), want, "{query:?}");
}

/// The listing query by the module notes' rules.
fn expected_list(query: &str) -> Option<ListQuery> {
    let mut q = ListQuery::default();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !matches!(name.as_ref(), "status" | "route" | "limit" | "cursor") {
            continue;
        }
        if !seen.insert(name.clone().into_owned()) || value.is_empty() {
            return None;
        }
        match name.as_ref() {
            "status" => q.status = Some(JobStatus::parse(&value)?),
            "route" => q.route = Some(value.into_owned()),
            "limit" => {
                if !value.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let digits = value.trim_start_matches('0');
                if digits.is_empty() || digits.len() > 3 {
                    return None;
                }
                let n: usize = digits.parse().ok()?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return None;
                }
                q.limit = n;
            }
            _ => q.after = Some(decode_cursor(&value)?),
        }
    }
    Some(q)
}

fn same(a: &ListQuery, b: &ListQuery) -> bool {
    a.status == b.status
        && a.route == b.route
        && a.limit == b.limit
        && a.after.as_ref().map(|c| (c.created_at, &c.id))
            == b.after.as_ref().map(|c| (c.created_at, &c.id))
}

fn check_list(query: &str) {
    let got = listing::parse(Some(query)).ok();
    let want = expected_list(query);
    match (&got, &want) {
        (Some(g), Some(w)) => {
            assert!(same(g, w), "{query:?}");
            assert!((1..=MAX_LIMIT).contains(&g.limit));
        }
        (None, None) => {}
        _ => panic!(
            "listing::parse({query:?}): ok {} expected ok {}",
            got.is_some(),
            want.is_some()
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let prefix = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();

    check_path(prefix, path);
    check_path("/jobs", path);
    check_path(prefix, &text);
    if let Some(JobPath::Status(id) | JobPath::Result(id) | JobPath::Callback(id)) =
        parse_path("/jobs", path)
    {
        check_ids(prefix, id);
    }
    check_ids(prefix, &prefer_gateway::store::model::new_id());
    check_ids(prefix, query);

    check_purge(query);
    check_list(query);
    check_cursor(query);
    check_cursor(path);

    // Any time and any UUID round-trip through the wire form.
    if data.len() >= 24 {
        let at = i64::from_be_bytes(data[..8].try_into().unwrap_or_default());
        let id = uuid_from(&data[8..24]);
        let c = Cursor {
            created_at: at,
            id: id.clone(),
        };
        let wire = encode_cursor(&c).ok();
        let back = wire.as_deref().and_then(decode_cursor);
        assert_eq!(back.map(|b| (b.created_at, b.id)), Some((at, id)));
    }
});

/// A UUID's canonical text from 16 bytes (what `Uuid::to_string` prints), so the target
/// needs no `uuid` dependency.
fn uuid_from(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
