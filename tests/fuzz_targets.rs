//! The fuzz targets still compile against the gateway's API.
//!
//! `fuzz/` is its own workspace (cargo-fuzz needs nightly-only flags to *run*, see
//! fuzz/README.md), so nothing in the main build touches it, and a change to a type a target
//! builds (a new `Job` field, say) used to break the target silently until the next fuzzing
//! run. `cargo check` of its binaries needs neither nightly nor the sanitizer flags, so CI
//! runs it here: a target that no longer compiles fails `cargo test`.

use std::path::Path;
use std::process::Command;

#[test]
fn every_fuzz_target_compiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--quiet", "--locked", "--bins", "--manifest-path"])
        .arg(root.join("fuzz/Cargo.toml"))
        // Its own directory: no lock contention with the build running this test, and
        // the fuzz workspace's dependency versions never mix with the main build's.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-check"),
        )
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "a fuzz target no longer compiles (fix it beside the API change):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
