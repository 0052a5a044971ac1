//! The pure parts of the live status stream: `Accept` negotiation, `Last-Event-ID`, and
//! event ids that rise with every transition of the job model.

use super::*;

fn accept(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::ACCEPT, HeaderValue::from_str(v).unwrap());
    h
}

#[test]
fn only_an_explicit_event_stream_range_asks_for_a_stream() {
    assert!(wanted(&accept("text/event-stream")));
    assert!(wanted(&accept("application/json, Text/Event-Stream;q=0.5")));
    assert!(wanted(&accept("text/event-stream; charset=utf-8")));
    assert!(!wanted(&accept("text/event-stream;q=0")));
    assert!(!wanted(&accept("text/event-stream; q=0.000")));
    assert!(wanted(&accept("text/event-stream;q=0.001")));
    assert!(!wanted(&accept("*/*")));
    assert!(!wanted(&accept("text/*")));
    assert!(!wanted(&accept("application/json")));
    assert!(!wanted(&HeaderMap::new()));
}

#[test]
fn last_event_id_is_a_decimal_number_or_nothing() {
    let mut h = HeaderMap::new();
    assert_eq!(last_event_id(&h), 0);
    h.insert("last-event-id", HeaderValue::from_static(" 3 "));
    assert_eq!(last_event_id(&h), 3);
    h.insert("last-event-id", HeaderValue::from_static("abc"));
    assert_eq!(last_event_id(&h), 0);
    h.insert("last-event-id", HeaderValue::from_static("-1"));
    assert_eq!(last_event_id(&h), 0);
}

/// Every transition the job model allows (see `store::model`): claim (pending → running,
/// one more attempt), re-queue after an interrupted run (running → pending), completion or
/// lease-expiry failure (running → finished), and cancel (pending or running → finished).
#[test]
fn every_transition_raises_the_event_id() {
    use JobStatus::{Canceled, Failed, Pending, Running, Succeeded};
    for attempts in 0..5u32 {
        let pending = id_of(Pending, attempts);
        assert!(id_of(Running, attempts + 1) > pending, "claim");
        for end in [Succeeded, Failed, Canceled] {
            assert!(id_of(end, attempts) > pending, "cancel while pending");
        }
        if attempts == 0 {
            continue;
        }
        let running = id_of(Running, attempts);
        assert!(id_of(Pending, attempts) > running, "re-queued");
        for end in [Succeeded, Failed, Canceled] {
            assert!(id_of(end, attempts) > running, "finished");
        }
    }
    // One run: 1, 2, 4 — what the README and the OpenAPI document show.
    assert_eq!(
        [id_of(Pending, 0), id_of(Running, 1), id_of(Succeeded, 1)],
        [1, 2, 4]
    );
}
