//! Issue 18, bullet 2 (SQLite): the disk under the job store fills up. The test makes a
//! small file system of its own (a 2 MiB tmpfs, mounted on a temporary directory — the
//! tests run as root, as `.ci/run` does) and puts the SQLite file on it, then submits
//! `respond-async` jobs with 32 KiB bodies until the disk is full.
//!
//! What must hold: submits answer `503` (a problem document) once a job can no longer be
//! written — never a `202` for a job that is not on disk; every job answered `202` before
//! is still there and readable; when space returns (the tmpfs is remounted larger), submits
//! are accepted again and every accepted job — those from before the fill too — finishes
//! `succeeded`; and the file passes SQLite's `integrity_check` afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{client, sync_config, sync_upstream, Gateway};

/// A tmpfs of `size` mounted on a fresh temporary directory; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// One `respond-async` submit with a 32 KiB body; its status and job id (on `202`).
async fn submit(gw: &Gateway, n: usize) -> (u16, Option<String>, String) {
    let filler = "x".repeat(32 * 1024);
    let resp = client()
        .post(gw.url("/v1/render"))
        .header("Prefer", "respond-async")
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"n":{n},"filler":"{filler}"}}"#))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let doc: serde_json::Value = resp.json().await.unwrap_or_default();
    let id = doc["job_id"].as_str().map(str::to_owned);
    (status, id, ctype)
}

/// Waits (long-polling) until job `id` is terminal; its status.
async fn settle(gw: &Gateway, id: &str) -> String {
    for _ in 0..30 {
        let resp = client()
            .get(gw.url(&format!("/jobs/{id}")))
            .header("Prefer", "wait=2")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "job {id} must stay readable");
        let doc: serde_json::Value = resp.json().await.unwrap();
        let status = doc["status"].as_str().unwrap().to_owned();
        if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
            return status;
        }
    }
    "unfinished".into()
}

fn integrity(db: &PathBuf) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("2m");
    let db = disk.path().join("jobs.db");
    let up = sync_upstream(Duration::ZERO).await;
    let cfg = sync_config(&format!("sqlite:{}", db.display()), "", "");
    let gw = Gateway::start(&cfg, &up.url()).await;

    // Fill it: submit until three submits in a row are refused.
    let (mut accepted, mut refused_in_a_row, mut refusals) = (Vec::new(), 0, 0);
    for n in 0..400 {
        let (status, id, ctype) = submit(&gw, n).await;
        match status {
            202 => {
                accepted.push(id.expect("a 202 names its job"));
                refused_in_a_row = 0;
            }
            503 => {
                assert_eq!(ctype, "application/problem+json");
                refusals += 1;
                refused_in_a_row += 1;
                if refused_in_a_row == 3 {
                    break;
                }
            }
            other => panic!("submit {n}: {other} is not an answer the contract names here"),
        }
    }
    assert!(refused_in_a_row == 3, "the 2 MiB disk never filled");
    assert!(
        accepted.len() >= 5,
        "some jobs fit: {} accepted",
        accepted.len()
    );
    let before = accepted.len();

    // Everything accepted is still there while the disk is full.
    for id in &accepted {
        let resp = client()
            .get(gw.url(&format!("/jobs/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "accepted job {id} lost on a full disk");
    }

    // Space returns: submits are accepted again, and every job finishes.
    disk.resize("64m");
    let mut again = 0;
    for n in 1000..1010 {
        let (status, id, _) = submit(&gw, n).await;
        if status == 202 {
            accepted.push(id.unwrap());
            again += 1;
        }
    }
    assert_eq!(again, 10, "submits after space returned");
    for id in &accepted {
        assert_eq!(settle(&gw, id).await, "succeeded", "job {id}");
    }
    eprintln!(
        "disk full: {before} accepted before the fill, {refusals} refused with 503, \
         {again} accepted after; {} finished, 0 lost",
        accepted.len()
    );
    drop(gw);
    assert_eq!(integrity(&db), "ok");
}
