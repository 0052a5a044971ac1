//! `routes[].callback_events`: where a client names the events it wants besides the
//! terminal one; only with `callback`, never on a proxy route.

use prefer_gateway::config::FieldSource;

use super::{fails, load, route, says};

#[test]
fn loads_beside_callback() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    let cfg = load(&[
        &r,
        "callback = { json = \"/callback_url\" }",
        "callback_events = { header = \"Callback-Events\" }",
        "[webhooks]",
        "signing_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
    ])
    .unwrap();
    assert!(matches!(
        cfg.routes[0].callback_events,
        Some(FieldSource::Header(ref h)) if h == "callback-events"
    ));
    assert!(load(&[&r]).unwrap().routes[0].callback_events.is_none());
}

#[test]
fn needs_callback_and_is_not_for_proxy_routes() {
    let r = route("a", "sync", r#"["POST"]"#, "/a");
    says(
        &fails(
            &[&r, "callback_events = { json = \"/events\" }"],
            "7:19 routes[0].callback_events",
        ),
        "`callback_events` needs `callback`",
    );
    let p = route("a", "proxy", r#"["GET"]"#, "/a");
    says(
        &fails(
            &[&p, "callback_events = { json = \"/events\" }"],
            "7:19 routes[0].callback_events",
        ),
        "does not apply to kind = \"proxy\"",
    );
}
