//! Micro-benchmarks of the per-request `Prefer` work: parsing the header lines and
//! resolving the execution mode. Run with `cargo bench --bench prefer`.
//!
//! Two inputs: the typical `respond-async, wait=10`, and a 3-line header with parameters,
//! quoted strings and a duplicate, which exercises every branch of the grammar.

// `criterion_group!` defines an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use prefer_gateway::mode::{resolve, WaitLimits};
use prefer_gateway::prefer::Preferences;

const TYPICAL: &[&[u8]] = &[b"respond-async, wait=10"];

const THREE_LINES: &[&[u8]] = &[
    b"return=minimal; charset=\"utf-8\", handling=lenient",
    b"respond-async, foo=\"a, b; \\\"c\\\"\"; x=1;y",
    b"Wait=30; unit=s, wait=5, odd = \"caf\xc3\xa9\"",
];

fn parse(c: &mut Criterion) {
    for (name, lines) in [("typical", TYPICAL), ("three_lines", THREE_LINES)] {
        c.bench_function(&format!("parse/{name}"), |b| {
            b.iter(|| Preferences::parse(black_box(lines).iter().copied()))
        });
    }
}

fn resolve_mode(c: &mut Criterion) {
    for (name, lines) in [("typical", TYPICAL), ("three_lines", THREE_LINES)] {
        let prefs = Preferences::parse(lines.iter().copied());
        c.bench_function(&format!("resolve/{name}"), |b| {
            b.iter(|| resolve(black_box(&prefs), black_box(None), WaitLimits::default()))
        });
    }
}

criterion_group!(benches, parse, resolve_mode);
criterion_main!(benches);
