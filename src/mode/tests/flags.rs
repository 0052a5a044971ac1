//! Unit tests for boolean opt-in fields (`mode = { …, kind = "bool" }`): `true`/`false`,
//! precedence of `Prefer`, and what counts as a boolean.

use super::{prefs, s};
use crate::mode::{resolve_flag, InvalidFlag, Mode, WaitLimits};

fn flag(line: &str, value: Option<&str>) -> Result<(Mode, Option<String>, bool), InvalidFlag> {
    let r = resolve_flag(&prefs(line), value, WaitLimits::default())?;
    let applied = r.applied.map(|v| v.to_str().unwrap().to_owned());
    Ok((r.mode, applied, r.legacy_used))
}

#[test]
fn flag_true_is_async_false_and_absent_are_default() {
    assert_eq!(flag("", Some("true")), Ok((Mode::Async, None, true)));
    assert_eq!(flag("", Some("false")), Ok((Mode::Default, None, true)));
    assert_eq!(flag("", None), Ok((Mode::Default, None, false)));
    assert_eq!(
        flag("return=minimal, wait=0", Some("true")).unwrap().0,
        Mode::Async
    );
}

#[test]
fn prefer_wins_over_the_flag_which_still_counts_as_used() {
    let wait = (Mode::Wait(5), s("respond-async, wait=5"), true);
    assert_eq!(flag("wait=5", Some("false")), Ok(wait));
    let ra = (Mode::Async, s("respond-async"), true);
    assert_eq!(flag("respond-async", Some("false")), Ok(ra.clone()));
    // Not interpreted when Prefer decides, so not an error either (as for `mode`).
    assert_eq!(flag("respond-async", Some("\"yes\"")), Ok(ra));
}

#[test]
fn only_exact_true_and_false_are_flags() {
    // Query values as decoded, and JSON values as their JSON text.
    for bad in [
        "", "True", "TRUE", " true", "1", "yes", "\"true\"", "null", "0", "{}",
    ] {
        assert_eq!(
            flag("", Some(bad)),
            Err(InvalidFlag(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(InvalidFlag("1".into()).to_string().contains("boolean"));
    assert!(Mode::Async.is_asynchronous() && Mode::Wait(1).is_asynchronous());
    assert!(!Mode::Default.is_asynchronous());
}
