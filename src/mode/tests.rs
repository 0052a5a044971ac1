//! Unit tests for `mode`: the behaviour §3 table, limits, precedence, legacy sources,
//! boolean opt-ins, deprecation headers and `Vary` merging; `async_requires` in [`rules`].
//! The whole file is test-only: its parent declares it as `#[cfg(test)] mod tests;`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod flags;
mod rules;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderValue, LINK, VARY};

use super::*;
use crate::config::{JsonPointer, ModeConfig, ModeKind, ModeSource};

fn prefs(line: &str) -> Preferences {
    Preferences::parse([line.as_bytes()])
}

fn run(line: &str, legacy: Option<&str>) -> Result<Resolution, InvalidMode> {
    resolve(&prefs(line), legacy, WaitLimits::default())
}

fn ok(line: &str, legacy: Option<&str>) -> (Mode, Option<String>, bool) {
    let r = run(line, legacy).unwrap();
    let applied = r.applied.map(|v| v.to_str().unwrap().to_owned());
    (r.mode, applied, r.legacy_used)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

// === the behaviour §3 table, one test per row ===

#[test]
fn row_nothing_is_default() {
    assert_eq!(ok("", None), (Mode::Default, None, false));
    assert_eq!(ok("return=minimal", None), (Mode::Default, None, false));
}

#[test]
fn row_respond_async_is_async() {
    let want = (Mode::Async, s("respond-async"), false);
    assert_eq!(ok("respond-async", None), want);
}

#[test]
fn row_wait_n_is_wait() {
    let want = (Mode::Wait(5), s("respond-async, wait=5"), false);
    assert_eq!(ok("wait=5", None), want);
    assert_eq!(ok("respond-async, wait=5", None), want);
    assert_eq!(ok("wait=5, respond-async", None), want);
    assert_eq!(
        ok("wait=1", None),
        (Mode::Wait(1), s("respond-async, wait=1"), false)
    );
}

#[test]
fn row_wait_above_cap_is_capped_and_applied_says_so() {
    let want = (Mode::Wait(600), s("respond-async, wait=600"), false);
    assert_eq!(ok("wait=601", None), want);
    assert_eq!(ok("wait=99999999999999999999999", None), want);
}

#[test]
fn row_wait_zero_alone_is_default() {
    assert_eq!(ok("wait=0", None), (Mode::Default, None, false));
}

#[test]
fn row_respond_async_wait_zero_is_async() {
    let want = (Mode::Async, s("respond-async"), false);
    assert_eq!(ok("respond-async, wait=0", None), want);
}

#[test]
fn row_legacy_async() {
    assert_eq!(ok("", Some("async")), (Mode::Async, None, true));
}

#[test]
fn row_legacy_sync_waits_60() {
    assert_eq!(ok("", Some("sync")), (Mode::Wait(60), None, true));
}

#[test]
fn row_legacy_auto_is_default() {
    assert_eq!(ok("", Some("auto")), (Mode::Default, None, true));
}

// === limits ===

#[test]
fn custom_cap_and_floor() {
    let cap30 = WaitLimits {
        min_secs: 1,
        max_secs: 30,
    };
    let r = resolve(&prefs("wait=100"), None, cap30).unwrap();
    assert_eq!(r.mode, Mode::Wait(30));
    assert_eq!(r.applied.unwrap(), "respond-async, wait=30");
    // Legacy sync is capped too.
    let r = resolve(&prefs(""), Some("sync"), cap30).unwrap();
    assert_eq!(r.mode, Mode::Wait(30));

    let floor5 = WaitLimits {
        min_secs: 5,
        max_secs: 600,
    };
    let r = resolve(&prefs("wait=3"), None, floor5).unwrap();
    assert_eq!((r.mode, r.applied), (Mode::Default, None));
    let r = resolve(&prefs("wait=5"), None, floor5).unwrap();
    assert_eq!(r.mode, Mode::Wait(5));
    let r = resolve(&prefs("respond-async, wait=3"), None, floor5).unwrap();
    assert_eq!(r.mode, Mode::Async);
}

#[test]
fn limits_from_durations() {
    assert_eq!(
        WaitLimits::default(),
        WaitLimits::from_durations(Duration::from_secs(1), Duration::from_secs(600))
    );
    let l = WaitLimits::from_durations(Duration::from_millis(1500), Duration::from_millis(30_900));
    assert_eq!((l.min_secs, l.max_secs), (2, 30));
}

#[test]
fn invalid_wait_values_are_ignored() {
    for line in [
        "wait=-1",
        "wait=5.5",
        "wait=1e3",
        "wait=abc",
        "wait=abc, wait=5",
    ] {
        assert_eq!(ok(line, None), (Mode::Default, None, false), "{line}");
    }
    assert_eq!(ok("wait=5 5, wait=7", None).0, Mode::Wait(7));
}

// === precedence ===

#[test]
fn prefer_wins_over_legacy_but_legacy_is_still_used() {
    assert_eq!(
        ok("respond-async", Some("sync")),
        (Mode::Async, s("respond-async"), true)
    );
    assert_eq!(
        ok("wait=10", Some("async")),
        (Mode::Wait(10), s("respond-async, wait=10"), true)
    );
    // An invalid `mode` is no error when Prefer decides.
    assert_eq!(ok("respond-async", Some("bogus")).0, Mode::Async);
    assert_eq!(ok("wait=3", Some("")).0, Mode::Wait(3));
}

#[test]
fn legacy_consulted_when_prefer_has_no_execution_preference() {
    assert_eq!(ok("wait=0", Some("async")), (Mode::Async, None, true));
    assert_eq!(ok("return=minimal", Some("sync")).0, Mode::Wait(60));
    assert_eq!(ok("respond-async=no", Some("async")).0, Mode::Async);
}

#[test]
fn legacy_values_trimmed_case_insensitive_else_invalid() {
    assert_eq!(ok("", Some("  ASync\t")).0, Mode::Async);
    assert_eq!(ok("", Some("Sync")).0, Mode::Wait(60));
    assert_eq!(ok("", Some("AUTO")).0, Mode::Default);
    for bad in ["", " ", "asynchronous", "a sync", "1", "async,sync"] {
        assert_eq!(
            run("", Some(bad)),
            Err(InvalidMode(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(InvalidMode("x".into()).to_string().contains("\"x\""));
}

// === legacy sources ===

#[test]
fn query_encoded_value() {
    assert_eq!(
        legacy_from_query(Some("mode=a%73ync"), "mode"),
        (s("async"), None)
    );
    assert_eq!(
        legacy_from_query(Some("mode=+sync+"), "mode").0,
        s(" sync ")
    );
    assert_eq!(
        legacy_from_query(Some("m%6Fde=auto&x"), "mode"),
        (s("auto"), s("x"))
    );
}

#[test]
fn query_multiple_pairs_first_wins_all_removed_others_raw() {
    let q = "a=%20b+c&mode=sync&z&mode=async&b=%2F&&modes=x";
    assert_eq!(
        legacy_from_query(Some(q), "mode"),
        (s("sync"), s("a=%20b+c&z&b=%2F&modes=x"))
    );
    assert_eq!(
        legacy_from_query(Some("mode&b=1"), "mode"),
        (s(""), s("b=1"))
    );
}

#[test]
fn query_only_param_or_absent() {
    assert_eq!(
        legacy_from_query(Some("mode=async"), "mode"),
        (s("async"), None)
    );
    assert_eq!(
        legacy_from_query(Some("mode=async&"), "mode"),
        (s("async"), None)
    );
    assert_eq!(legacy_from_query(None, "mode"), (None, None));
    assert_eq!(legacy_from_query(Some(""), "mode"), (None, None));
    // Nothing removed: the query is returned byte-for-byte, odd separators included.
    assert_eq!(
        legacy_from_query(Some("a=1&&Mode=x"), "mode"),
        (None, s("a=1&&Mode=x"))
    );
}

fn ptr(p: &str) -> JsonPointer {
    p.parse().unwrap()
}

#[test]
fn json_nested_pointer_removed_order_kept() {
    let body = br#"{"z": 1, "opts": {"b": true, "mode": "async", "a": [1, 2]}, "y": "s"}"#;
    match legacy_from_json(body, &ptr("/opts/mode")) {
        JsonMode::Found { value, body } => {
            assert_eq!(value, "async");
            assert_eq!(&body[..], br#"{"z":1,"opts":{"b":true,"a":[1,2]},"y":"s"}"#);
        }
        other => panic!("{other:?}"),
    }
    match legacy_from_json(br#"{"mode":" Sync ","b":2,"a":1}"#, &ptr("/mode")) {
        JsonMode::Found { value, body } => {
            assert_eq!(value, " Sync ");
            assert_eq!(&body[..], br#"{"b":2,"a":1}"#);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn json_not_json_absent_not_a_string() {
    let p = ptr("/opts/mode");
    for body in [&b""[..], b"mode=async", b"{\"opts\":", b"\xff"] {
        assert_eq!(legacy_from_json(body, &p), JsonMode::NotJson);
    }
    assert_eq!(legacy_from_json(br#"{"opts":{}}"#, &p), JsonMode::Absent);
    assert_eq!(
        legacy_from_json(br#"{"mode":"async"}"#, &p),
        JsonMode::Absent
    );
    assert_eq!(legacy_from_json(b"[1]", &p), JsonMode::Absent);
    for v in ["1", "null", "true", "{}", "[\"async\"]"] {
        let body = format!(r#"{{"opts":{{"mode":{v}}}}}"#);
        assert_eq!(
            legacy_from_json(body.as_bytes(), &p),
            JsonMode::NotAString,
            "{v}"
        );
    }
}

// === response headers ===

fn cfg(deprecation: Option<u64>, sunset: Option<u64>, link: Option<&str>) -> ModeConfig {
    ModeConfig {
        source: ModeSource::Query("mode".into()),
        kind: ModeKind::Enum,
        deprecation: deprecation.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        sunset: sunset.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        link: link.map(|l| l.parse().unwrap()),
    }
}

#[test]
fn deprecation_with_everything_configured() {
    // 2026-06-01T00:00:00Z and 2027-01-01T00:00:00Z.
    let c = cfg(
        Some(1_780_272_000),
        Some(1_798_761_600),
        Some("https://docs.example.com/prefer"),
    );
    let mut h = HeaderMap::new();
    h.append(LINK, HeaderValue::from_static("</next>; rel=\"next\""));
    deprecation_headers(&c, &mut h);
    assert_eq!(h.get(DEPRECATION).unwrap(), "@1780272000");
    assert_eq!(h.get(SUNSET).unwrap(), "Fri, 01 Jan 2027 00:00:00 GMT");
    let links: Vec<_> = h.get_all(LINK).iter().collect();
    assert_eq!(
        links,
        [
            "</next>; rel=\"next\"",
            "<https://docs.example.com/prefer>; rel=\"deprecation\"; type=\"text/html\""
        ]
    );
}

#[test]
fn deprecation_minimal_and_edge_dates() {
    let mut h = HeaderMap::new();
    h.insert(DEPRECATION, HeaderValue::from_static("@1"));
    deprecation_headers(&cfg(None, None, None), &mut h);
    assert_eq!(h.get(DEPRECATION).unwrap(), "@0");
    assert!(h.get(SUNSET).is_none() && h.get(LINK).is_none());
    assert_eq!(h.len(), 1);

    let mut c = cfg(None, None, None);
    c.deprecation = UNIX_EPOCH.checked_sub(Duration::from_millis(86_400_500));
    c.sunset = UNIX_EPOCH.checked_sub(Duration::from_secs(1));
    let mut h = HeaderMap::new();
    deprecation_headers(&c, &mut h);
    assert_eq!(h.get(DEPRECATION).unwrap(), "@-86401");
    assert!(h.get(SUNSET).is_none());

    c.sunset = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(253_402_300_800));
    deprecation_headers(&c, &mut h);
    assert!(h.get(SUNSET).is_none());
}

fn vary(lines: &[&'static str]) -> Vec<String> {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append(VARY, HeaderValue::from_static(l));
    }
    add_vary_prefer(&mut h);
    h.get_all(VARY)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[test]
fn vary_merging() {
    assert_eq!(vary(&[]), ["Prefer"]);
    assert_eq!(vary(&["Accept-Encoding"]), ["Accept-Encoding, Prefer"]);
    assert_eq!(
        vary(&["Accept-Encoding, Origin", " Accept "]),
        ["Accept-Encoding, Origin, Accept, Prefer"]
    );
    assert_eq!(vary(&["Origin", "prefer"]), ["Origin", "prefer"]);
    assert_eq!(vary(&["Origin,PREFER"]), ["Origin,PREFER"]);
    assert_eq!(vary(&["*"]), ["*"]);
    assert_eq!(vary(&["Origin, *"]), ["Origin, *"]);
    assert_eq!(vary(&[""]), ["Prefer"]);
    assert_eq!(vary(&["Preferred"]), ["Preferred, Prefer"]);
}

/// fuzz/mode_resolve: the whole-second floor of an enormous `min_wait` must not overflow.
#[test]
fn wait_limits_floor_does_not_overflow() {
    let huge = std::time::Duration::new(u64::MAX, 1);
    let l = WaitLimits::from_durations(huge, huge);
    assert_eq!((l.min_secs, l.max_secs), (u64::MAX, u64::MAX));
}
