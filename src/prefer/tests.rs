//! Unit tests for `prefer`: the grammar, first-occurrence rules, `wait`, `strip`, `applied`.
//! The whole file is test-only: its parent declares it as `#[cfg(test)] mod tests;`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::header::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::grammar::is_tchar;
use super::*;

fn p(lines: &[&str]) -> Preferences {
    Preferences::parse(lines.iter().map(|l| l.as_bytes()))
}

fn names(prefs: &Preferences) -> Vec<&str> {
    prefs.iter().map(|p| p.name.as_str()).collect()
}

fn value<'a>(prefs: &'a Preferences, name: &str) -> Option<&'a str> {
    prefs.get(name)?.value.as_deref()
}

fn headers(lines: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append(PREFER, HeaderValue::from_bytes(l).unwrap());
    }
    h
}

fn prefer_lines(h: &HeaderMap) -> Vec<&[u8]> {
    h.get_all(&PREFER).iter().map(|v| v.as_bytes()).collect()
}

#[test]
fn typical_header() {
    let prefs = p(&["respond-async, wait=10"]);
    assert_eq!(names(&prefs), ["respond-async", "wait"]);
    assert!(prefs.respond_async());
    assert_eq!(prefs.wait(), Some(10));
    assert!(!prefs.is_empty());
}

#[test]
fn empty_and_absent() {
    for lines in [&[][..], &[""], &["  ,, ,\t,"]] {
        let prefs = p(lines);
        assert!(prefs.is_empty());
        assert!(!prefs.respond_async());
        assert_eq!(prefs.wait(), None);
    }
    assert!(Preferences::from_headers(&HeaderMap::new()).is_empty());
}

#[test]
fn several_lines_in_order_first_occurrence_wins() {
    let prefs = p(&[
        "return=minimal",
        "wait=5, RETURN=representation",
        "Wait=9, foo",
    ]);
    assert_eq!(names(&prefs), ["return", "wait", "foo"]);
    assert_eq!(value(&prefs, "return"), Some("minimal"));
    assert_eq!(prefs.wait(), Some(5));
    let h = headers(&[b"wait=3", b"respond-async", b"wait=4"]);
    let prefs = Preferences::from_headers(&h);
    assert_eq!(prefs.wait(), Some(3));
    assert!(prefs.respond_async());
}

#[test]
fn commas_inside_quotes_do_not_split() {
    let prefs = p(&[r#"foo="a, b", bar="x\", y", wait=2"#]);
    assert_eq!(names(&prefs), ["foo", "bar", "wait"]);
    assert_eq!(value(&prefs, "foo"), Some("a, b"));
    assert_eq!(value(&prefs, "bar"), Some(r#"x", y"#));
    assert_eq!(prefs.wait(), Some(2));
}

#[test]
fn empty_values_equal_bare_names() {
    for line in ["foo", "foo=", r#"foo="""#, "foo =", "foo= \"\""] {
        let prefs = p(&[line]);
        assert_eq!(prefs.get("foo").map(|p| &p.value), Some(&None), "{line}");
    }
    assert!(p(&[r#"respond-async="""#]).respond_async());
    assert!(p(&["respond-async="]).respond_async());
}

#[test]
fn bws_around_equals_and_ows_around_elements() {
    let prefs = p(&[" \twait \t= \t7 \t, return =\"minimal\" ; a = 1 ;b"]);
    assert_eq!(prefs.wait(), Some(7));
    let ret = prefs.get("return").unwrap();
    assert_eq!(ret.value.as_deref(), Some("minimal"));
    assert_eq!(ret.params.len(), 2);
    assert_eq!(ret.param("A").unwrap().value.as_deref(), Some("1"));
    assert_eq!(ret.param("b").unwrap().value, None);
}

#[test]
fn names_case_insensitive_values_case_sensitive() {
    let prefs = p(&["Return=Minimal; Foo=BaR, RESPOND-ASYNC, WAIT=1"]);
    let ret = prefs.get("rEtUrN").unwrap();
    assert_eq!(ret.name, "return");
    assert_eq!(ret.value.as_deref(), Some("Minimal"));
    assert_eq!(ret.params[0].name, "foo");
    assert_eq!(ret.params[0].value.as_deref(), Some("BaR"));
    assert!(prefs.respond_async());
    assert_eq!(prefs.wait(), Some(1));
}

#[test]
fn params_after_semicolon_kept() {
    let prefs = p(&[r#"handling=lenient; a="x;y" ;; b ; c=3; , wait=4;q"#]);
    let h = prefs.get("handling").unwrap();
    let got: Vec<(&str, Option<&str>)> = h
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(got, [("a", Some("x;y")), ("b", None), ("c", Some("3"))]);
    // Unknown parameters on `wait` and `respond-async` are ignored, not fatal.
    assert_eq!(prefs.wait(), Some(4));
    assert!(p(&["respond-async; x=1"]).respond_async());
}

#[test]
fn malformed_elements_skipped_rest_counts() {
    let cases: &[(&str, &[&str])] = &[
        ("wait=5 5, wait=7", &["wait"]),
        ("=5, foo", &["foo"]),
        ("wait==5, foo", &["foo"]),
        ("foo bar, baz", &["baz"]),
        ("a=b=c, d", &["d"]),
        ("a;=1, d", &["d"]),
        ("a;p q, d", &["d"]),
        ("a=\"x\"y, d", &["d"]),
        ("a=(b), d", &["d"]),
        ("@x, d", &["d"]),
        ("a=\"x\\", &[]),
    ];
    for (line, want) in cases {
        assert_eq!(names(&p(&[line])), *want, "{line}");
    }
    assert_eq!(p(&["wait=5 5, wait=7"]).wait(), Some(7));
}

#[test]
fn unterminated_quote_swallows_rest_of_line_only() {
    let prefs = p(&[r#"wait="5, respond-async, return=minimal"#, "wait=8"]);
    assert_eq!(names(&prefs), ["wait"]);
    assert_eq!(prefs.wait(), Some(8));
    assert!(!prefs.respond_async());
}

#[test]
fn first_valid_occurrence_counts_even_if_value_is_not_a_number() {
    assert_eq!(p(&["wait=abc, wait=5"]).wait(), None);
    assert_eq!(p(&["wait=abc", "wait=5"]).wait(), None);
    assert!(!p(&["respond-async=yes, respond-async"]).respond_async());
}

#[test]
fn wait_values() {
    let cases: &[(&str, Option<u64>)] = &[
        ("wait=0", Some(0)),
        ("wait=007", Some(7)),
        ("wait=\"5\"", Some(5)),
        ("wait=600", Some(600)),
        ("wait=18446744073709551615", Some(u64::MAX)),
        ("wait=18446744073709551616", Some(u64::MAX)),
        ("wait=99999999999999999999999999999999", Some(u64::MAX)),
        ("wait=-1", None),
        ("wait=+5", None),
        ("wait=5.5", None),
        ("wait=1e3", None),
        ("wait=abc", None),
        ("wait=", None),
        ("wait", None),
        ("wait=\"\"", None),
        ("wait=\" 5\"", None),
        ("wait=\"5 \"", None),
        ("wait=\"٣\"", None),
        ("wait=0x10", None),
    ];
    for (line, want) in cases {
        assert_eq!(p(&[line]).wait(), *want, "{line}");
    }
}

#[test]
fn quoted_pairs_and_obs_text() {
    let prefs =
        Preferences::parse([&b"foo=\"a\\\"b\\\\c\\\xe9\", bar=\"caf\xc3\xa9\", x=\"\xff\""[..]]);
    assert_eq!(value(&prefs, "foo"), Some("a\"b\\c\u{fffd}"));
    assert_eq!(value(&prefs, "bar"), Some("café"));
    assert_eq!(value(&prefs, "x"), Some("\u{fffd}"));
}

#[test]
fn bytes_outside_visible_ascii_make_elements_malformed_not_panic() {
    let line: &[u8] = b"a\xff=1, b=\x01, c=\"\x00\", d=\"x\\\x7f\", \x00, wait=3, e\x7f";
    let prefs = Preferences::parse([line]);
    assert_eq!(names(&prefs), ["wait"]);
    assert_eq!(prefs.wait(), Some(3));
}

#[test]
fn many_distinct_preferences_dedup_past_the_linear_threshold() {
    let mut line = (0..100)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str(",p3=x,p99=y,wait=2,wait=3,respond-async");
    let prefs = p(&[&line]);
    assert_eq!(prefs.iter().count(), 102);
    assert_eq!(value(&prefs, "p3"), None);
    assert_eq!(prefs.wait(), Some(2));
    assert!(prefs.respond_async());
    assert_eq!((&prefs).into_iter().count(), 102);
}

#[test]
fn strip_removes_owned_elements_keeps_others_exactly() {
    let mut h = headers(&[
        b"respond-async, return=minimal ;  a=\"x, y\"",
        b"Wait=5",
        b"foo,  wait=1; q,bar=\"\\\"\"",
        b"return=minimal ,,  foo",
    ]);
    strip(&mut h, &["respond-async", "wait"]);
    assert_eq!(
        prefer_lines(&h),
        [
            &b"return=minimal ;  a=\"x, y\""[..],
            b"foo, bar=\"\\\"\"",
            b"return=minimal ,,  foo",
        ]
    );
}

#[test]
fn strip_edge_cases() {
    // Malformed elements named `wait` go too; nameless junk stays.
    let mut h = headers(&[b"wait=5 5, =x, WAIT=\"7", b"respond-async=1"]);
    strip(&mut h, &["wait", "respond-async"]);
    assert_eq!(prefer_lines(&h), [&b"=x"[..]]);
    // Names with a shared prefix are not confused.
    let mut h = headers(&[b"waiting=1, wait"]);
    strip(&mut h, &["wait"]);
    assert_eq!(prefer_lines(&h), [&b"waiting=1"[..]]);
    // Everything removed: no Prefer header left; no Prefer at all: no-op.
    let mut h = headers(&[b"wait=1", b" , respond-async "]);
    strip(&mut h, &["wait", "respond-async"]);
    assert!(h.get(&PREFER).is_none());
    let mut h = HeaderMap::new();
    strip(&mut h, &["wait"]);
    assert!(h.is_empty());
    // A line with no element loses nothing and stays, beside one that goes whole.
    let mut h = headers(&[b"respond-async", b""]);
    strip(&mut h, &["wait", "respond-async"]);
    assert_eq!(prefer_lines(&h), [&b""[..]]);
    // Nothing named: the lines are left exactly as they were.
    let mut h = headers(&[b"return=minimal", b"foo ,bar"]);
    strip(&mut h, &["wait", "respond-async"]);
    assert_eq!(prefer_lines(&h), [&b"return=minimal"[..], b"foo ,bar"]);
    // Sensitivity survives a rewrite.
    let mut v = HeaderValue::from_static("wait=1, a");
    v.set_sensitive(true);
    let mut h = HeaderMap::new();
    h.insert(PREFER, v);
    strip(&mut h, &["wait"]);
    assert!(h.get(&PREFER).unwrap().is_sensitive());
}

#[test]
fn applied_renders() {
    assert_eq!(applied(true, None), "respond-async");
    assert_eq!(applied(true, Some(5)), "respond-async, wait=5");
    assert_eq!(applied(false, Some(600)), "respond-async, wait=600");
    assert_eq!(
        applied(true, Some(u64::MAX)),
        "respond-async, wait=18446744073709551615"
    );
    assert_eq!(PREFERENCE_APPLIED.as_str(), "preference-applied");
}

fn valid_lines(raw: Vec<Vec<u8>>) -> Vec<HeaderValue> {
    raw.iter()
        .filter_map(|l| HeaderValue::from_bytes(l).ok())
        .collect()
}

/// Bytes biased towards the characters the grammar cares about.
fn grammar_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => proptest::sample::select(b"wait=respond-async;,\" \t\\5ab".to_vec()),
        1 => any::<u8>(),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        raw in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..4)
    ) {
        let prefs = Preferences::parse(raw.iter().map(Vec::as_slice));
        let _ = (prefs.wait(), prefs.respond_async(), prefs.is_empty());
        let mut h = HeaderMap::new();
        for v in valid_lines(raw) {
            h.append(PREFER, v);
        }
        let _ = Preferences::from_headers(&h);
        strip(&mut h, &["wait", "respond-async"]);
    }

    /// Stripping removes exactly the named preferences and changes nothing else.
    #[test]
    fn strip_keeps_every_other_preference(
        raw in proptest::collection::vec(proptest::collection::vec(grammar_byte(), 0..64), 0..4)
    ) {
        let mut h = HeaderMap::new();
        for v in valid_lines(raw) {
            h.append(PREFER, v);
        }
        let before = Preferences::from_headers(&h);
        strip(&mut h, &["wait", "respond-async"]);
        let after = Preferences::from_headers(&h);
        let expected: Vec<&Preference> = before
            .iter()
            .filter(|p| p.name != "wait" && p.name != "respond-async")
            .collect();
        prop_assert_eq!(after.iter().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn tchar_is_exactly_rfc_9110() {
    let spec: Vec<u8> = b"!#$%&'*+-.^_`|~"
        .iter()
        .copied()
        .chain(b'0'..=b'9')
        .chain(b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .collect();
    for b in 0..=255u8 {
        assert_eq!(is_tchar(b), spec.contains(&b), "{b:#x}");
    }
}
