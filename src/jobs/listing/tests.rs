//! The listing query and the cursor's wire form.

#![allow(clippy::unwrap_used)]

use super::*;

fn refused(query: &str) -> String {
    match parse(Some(query)) {
        Err(Problem::InvalidQuery(why)) => why,
        other => panic!("{query}: expected invalid-query, got {other:?}"),
    }
}

#[test]
fn a_query_is_read_whole_or_refused() {
    assert_eq!(parse(None).unwrap(), ListQuery::default());
    assert_eq!(parse(Some("other=1&x")).unwrap(), ListQuery::default());
    let cursor = Cursor {
        created_at: 1_700_000_000_123,
        id: "0190b6a4-6c3e-7d51-9a2b-3c4d5e6f7a8b".into(),
    };
    let wire = encode_cursor(&cursor).unwrap();
    let q = parse(Some(&format!(
        "status=failed&route=r%20%2F1&limit=100&cursor={wire}"
    )))
    .unwrap();
    assert_eq!(
        q,
        ListQuery {
            status: Some(JobStatus::Failed),
            route: Some("r /1".into()),
            limit: 100,
            after: Some(cursor),
        }
    );
    for (query, says) in [
        ("status=done", "status must be one of"),
        ("status=", "status must not be empty"),
        ("route=", "route must not be empty"),
        ("limit=0", "limit must be an integer from 1 to 100"),
        ("limit=101", "from 1 to 100"),
        ("limit=+5", "from 1 to 100"),
        ("limit=5.0", "from 1 to 100"),
        ("limit=99999999999999999999999", "from 1 to 100"),
        ("limit=5&limit=6", "limit is given more than once"),
        ("cursor=abc", "cursor is not one this gateway hands out"),
        (
            "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D",
            "cursor is not one",
        ),
    ] {
        assert!(refused(query).contains(says), "{query}: {}", refused(query));
    }
}

#[test]
fn every_cursor_shape_the_document_allows_is_a_position() {
    let c = Cursor {
        created_at: 1_700_000_000_000,
        id: uuid::Uuid::now_v7().to_string(),
    };
    let wire = encode_cursor(&c).unwrap();
    assert_eq!(wire.len(), CURSOR_LEN);
    assert!(wire
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(decode_cursor(&wire), Some(c));
    // Any 32 characters of the alphabet decode (the OpenAPI pattern promises it).
    for s in [
        "________________________________",
        "-AzZ09-_abcdefghijklmnopqrstuvwx",
    ] {
        let c = decode_cursor(s).unwrap();
        assert_eq!(decode_cursor(&encode_cursor(&c).unwrap()), Some(c));
    }
    assert_eq!(decode_cursor(&wire[..31]), None);
    assert_eq!(decode_cursor(&format!("{}=", &wire[..31])), None);
    let not_uuid = Cursor {
        created_at: 1,
        id: "j1".into(),
    };
    assert!(encode_cursor(&not_uuid).is_err());
}

#[test]
fn purge_is_true_false_or_refused() {
    assert!(!wants_purge(None).unwrap());
    assert!(!wants_purge(Some("x=1")).unwrap());
    assert!(wants_purge(Some("purge=true")).unwrap());
    assert!(!wants_purge(Some("purge=false")).unwrap());
    for bad in ["purge=1", "purge=", "purge=TRUE", "purge=true&purge=true"] {
        assert!(
            matches!(wants_purge(Some(bad)), Err(Problem::InvalidQuery(_))),
            "{bad}"
        );
    }
}

#[test]
fn the_next_url_carries_the_filters_and_limit() {
    let q = ListQuery {
        status: Some(JobStatus::Pending),
        route: Some("a b&c".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        next_url("https://api.example.com/jobs", &q, "CUR"),
        "https://api.example.com/jobs?status=pending&route=a+b%26c&limit=20&cursor=CUR"
    );
}
