//! Unit tests of the SQLite store's SQL that need no async runtime: query plans.

use super::*;

/// `depths` reads only the two partial indexes of unfinished jobs (covering: no row
/// with its bodies is touched), never the whole table.
#[test]
fn depths_read_the_partial_indexes() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrations::migrate(&mut conn).unwrap();
    let mut plan = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {DEPTHS}"))
        .unwrap();
    let steps: Vec<String> = plan
        .query_map([], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let scans: Vec<&String> = steps.iter().filter(|s| s.contains("jobs")).collect();
    assert_eq!(scans.len(), 2, "{steps:?}");
    assert!(
        scans[0].contains("COVERING INDEX jobs_pending"),
        "{steps:?}"
    );
    assert!(
        scans[1].contains("COVERING INDEX jobs_running"),
        "{steps:?}"
    );
}
