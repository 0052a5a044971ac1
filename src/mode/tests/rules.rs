//! Unit tests for `mode::rules`: which bodies meet a route's `async_requires`.

use serde_json::{json, Value};

use crate::config::AsyncRule;
use crate::mode::rules::{json_eq, unmet};

fn rule(field: &str, expected: Value) -> AsyncRule {
    AsyncRule {
        field: field.parse().unwrap(),
        expected,
    }
}

fn first_unmet(rules: &[AsyncRule], body: &str) -> Option<String> {
    let doc: Option<Value> = serde_json::from_str(body).ok();
    unmet(rules, doc.as_ref()).map(|r| r.field.to_string())
}

#[test]
fn the_seed_rule_response_mode_urls() {
    let rules = [rule("/response_mode", json!("urls"))];
    assert_eq!(
        first_unmet(&rules, r#"{"response_mode":"urls","x":1}"#),
        None
    );
    let broken = Some("/response_mode".to_owned());
    for body in [
        r#"{"response_mode":"bytes"}"#,
        r#"{"response_mode":"URLS"}"#,
        r#"{"response_mode":null}"#,
        r#"{"other":"urls"}"#,
        r#"{}"#,
        r#"["urls"]"#,
        r#""urls""#,
        "not json",
        "",
    ] {
        assert_eq!(first_unmet(&rules, body), broken, "{body}");
    }
}

#[test]
fn first_broken_rule_in_order_nested_pointers_and_types() {
    let rules = [
        rule("/a", json!(true)),
        rule("/opts/n", json!(2)),
        rule("/opts/f", json!(0.5)),
    ];
    let ok = r#"{"a":true,"opts":{"n":2.0,"f":0.5}}"#;
    assert_eq!(first_unmet(&rules, ok), None);
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(first_unmet(&rules, r#"{"a":"true","opts":{}}"#), some("/a"));
    assert_eq!(
        first_unmet(&rules, r#"{"a":true,"opts":{"n":"2","f":0.5}}"#),
        some("/opts/n")
    );
    assert_eq!(
        first_unmet(&rules, r#"{"a":true,"opts":{"n":2,"f":1}}"#),
        some("/opts/f")
    );
    assert_eq!(unmet(&[], None), None);
}

#[test]
fn json_equality_has_one_number_type() {
    assert!(json_eq(&json!(1), &json!(1.0)));
    assert!(json_eq(&json!(-3), &json!(-3)));
    assert!(!json_eq(&json!(1), &json!(1.5)));
    assert!(!json_eq(&json!(1), &json!("1")));
    assert!(!json_eq(&json!(false), &json!(0)));
    assert!(json_eq(&json!("urls"), &json!("urls")));
}
