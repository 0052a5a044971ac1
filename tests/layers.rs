//! The layering rule of `ARCHITECTURE.md`, checked on the source: every top-level concept
//! (a file or folder directly under `src/`) sits in one layer and may refer only to its own
//! layer and the ones below; and no two concepts refer to each other, directly or round a
//! longer loop (an import cycle may live inside one concept, never span two).
//!
//! It reads `crate::name` references in code (comments and doc lines are skipped), which is
//! how every module here names another concept. `cargo modules dependencies --acyclic`
//! checks the same at module granularity (see bench/README.md, "Layers").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each concept, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "body",
            "clock",
            "config",
            "drain",
            "error",
            "idempotency",
            "intent",
            "limits",
            "metrics",
            "mode",
            "prefer",
            "problem",
            "request_id",
            "sign",
            "signal",
            "signed_url",
            "tenant",
        ],
    ),
    ("store", &["store"]),
    ("upstream", &["upstream"]),
    ("routes", &["routes"]),
    ("workers", &["admission", "webhook"]),
    ("handlers", &["prepare", "proxy", "task", "jobs"]),
    ("pipeline", &["pipeline", "server"]),
    ("app", &["demo"]),
];

fn layer_of(concept: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&concept))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The concept a file belongs to: `src/store/memory/running.rs` → `store`.
fn concept_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Every `crate::name` a file's code refers to.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
        // `use crate::{a, b}` names several at once.
        if let Some(i) = code.find("crate::{") {
            let inner = code[i + "crate::{".len()..]
                .split('}')
                .next()
                .unwrap_or_default();
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Concept → the other concepts it refers to.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some(from) = concept_of(&src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let edges = g.entry(from.clone()).or_default();
        for to in references(&text) {
            if to != from && layer_of(&to).is_some() {
                edges.insert(to);
            }
        }
    }
    g
}

#[test]
fn every_concept_has_a_layer() {
    let unplaced: Vec<String> = graph()
        .into_keys()
        .filter(|c| layer_of(c).is_none())
        .collect();
    assert!(unplaced.is_empty(), "place these in LAYERS: {unplaced:?}");
}

#[test]
fn nothing_imports_from_a_layer_above_it() {
    let mut upward = Vec::new();
    for (from, tos) in graph() {
        let Some(lf) = layer_of(&from) else { continue };
        for to in tos {
            if let Some(lt) = layer_of(&to).filter(|lt| *lt > lf) {
                upward.push(format!(
                    "{from} ({}) → {to} ({})",
                    LAYERS[lf].0, LAYERS[lt].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle_spans_two_concepts() {
    let g = graph();
    // A concept that can reach itself through another one is on a cycle.
    let mut cycles = Vec::new();
    for start in g.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = g[start].iter().collect();
        while let Some(c) = stack.pop() {
            if c == start {
                cycles.push(start.clone());
                break;
            }
            if seen.insert(c.clone()) {
                stack.extend(g.get(c).into_iter().flatten());
            }
        }
    }
    assert!(cycles.is_empty(), "concepts on an import cycle: {cycles:?}");
}

/// `unsafe` is denied crate-wide and allowed in one place: the binary's call into
/// mimalloc's C API (`src/main/tidy.rs`, see its module doc). A second one must be argued
/// for the same way, so it fails here first.
#[test]
fn unsafe_code_is_allowed_in_one_function_only() {
    let mut files = Vec::new();
    rust_files(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    let mut allows = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if line.contains("allow(unsafe_code)") {
                allows.push(format!("{}:{}", f.display(), i + 1));
            }
        }
    }
    assert_eq!(allows.len(), 1, "allow(unsafe_code) at: {allows:?}");
    assert!(allows[0].contains("src/main/tidy.rs"), "{allows:?}");
}
