//! A Python virtualenv for tests that drive the gateway with real client libraries from
//! PyPI (azure-core's LRO poller; later schemathesis).
//!
//! [`venv`] runs `tests/clients/venv.sh`, the same script `.ci/run` calls up front: it
//! creates `target/py-venv` once, installs each pinned requirements file once (a copy of the
//! file in the venv marks it installed) and serialises concurrent callers on a lock file. A
//! machine that cannot create the venv or install a package fails the test with pip's
//! output: these tests never skip.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

/// The repository root (where `tests/` and `target/py-venv` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Ensures `target/py-venv` has every requirements file in `requirements` (paths relative
/// to the repository root) installed; returns the venv's `python`. Blocking: call it from
/// `spawn_blocking` or before the runtime serves anything.
pub fn venv(requirements: &[&str]) -> PathBuf {
    let root = root();
    for req in requirements {
        assert!(root.join(req).is_file(), "no requirements file {req}");
    }
    let out = Command::new("bash")
        .arg(root.join("tests/clients/venv.sh"))
        .args(requirements)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/clients/venv.sh: {e}"));
    assert!(
        out.status.success(),
        "setting up the Python virtualenv target/py-venv failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let python = root.join("target/py-venv/bin/python");
    assert!(python.exists(), "{} missing after setup", python.display());
    python
}
