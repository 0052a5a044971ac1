//! Built-in paths reserved at config load: while any route runs jobs, the gateway answers
//! its job API (`jobs.path`) and `/webhook-secret` before the route table, so a route at or
//! under `jobs.path`, or on `/webhook-secret`, is a config error: `check` and `run` exit 2
//! naming the route's `path` key with line and column, and a reload refuses it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{self, process::GatewayProcess};

// === helpers ===

/// Writes `text` to a temp file and runs `prefer-gateway <args> --config FILE`, expecting
/// it to exit by itself within 20 s (a gateway that starts serving is killed and fails the
/// test); returns the exit code and stderr.
fn run_binary(dir: &Path, args: &[&str], text: &str) -> (Option<i32>, String) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefer-gateway"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`prefer-gateway {args:?}` accepted the config and kept running:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

/// 1-based line and column of the value on the last line of `text` that reads
/// `path = "<path>"` (the offending route comes last; `[jobs].path` may read the same) —
/// where a config error about that key must point.
fn value_position(text: &str, path: &str) -> (usize, usize) {
    let wanted = format!("path = \"{path}\"");
    let (i, line) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start() == wanted)
        .last()
        .unwrap_or_else(|| panic!("no {wanted} line"));
    (i + 1, line.find('"').unwrap() + 1)
}

/// `check` and `run` both refuse `text` with exit code 2 and an error at
/// `gateway.toml:LINE:COL: routes[index].path:` (the value of `path = "<path>"`) that
/// mentions `says`.
fn refused_at_load(text: &str, index: usize, path: &str, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (line, col) = value_position(text, path);
    let file = dir.path().join("gateway.toml").display().to_string();
    let at = format!("{file}:{line}:{col}: routes[{index}].path: ");
    for args in [&["check"][..], &["run"][..]] {
        let (code, stderr) = run_binary(dir.path(), args, text);
        assert_eq!(code, Some(2), "{args:?} must refuse the config: {stderr}");
        let err = stderr
            .lines()
            .find(|l| l.starts_with(&file))
            .unwrap_or_else(|| panic!("{args:?}: no config error line in {stderr:?}"));
        assert!(
            err.starts_with(&at),
            "{args:?}: expected {at:?}…, got {err:?}"
        );
        assert!(err.contains(says), "{args:?}: {says:?} not in {err:?}");
    }
}

// === tests ===

/// `GET /webhook-secret` is answered by the gateway before the route table while a route
/// runs jobs; a route there would never be reached, so it is a config error — for `check`,
/// `run` and a reload.
#[tokio::test]
async fn a_route_on_webhook_secret_is_a_config_error() {
    let route = "\n[[routes]]\nname = \"secret\"\nkind = \"proxy\"\nmethods = [\"GET\"]\n\
                 path = \"/webhook-secret\"\nupstream = \"http://127.0.0.1:9\"\n";
    let base = support::sync_config("memory", "", "")
        .replace("{up}", "http://127.0.0.1:9")
        .replace("[jobs]", "[server]\nlisten = \"127.0.0.1:0\"\n\n[jobs]");
    let text = format!("{base}{route}");
    refused_at_load(&text, 1, "/webhook-secret", "/webhook-secret");

    // A running gateway keeps its routes when a reload brings one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, &base).unwrap();
    let gw = GatewayProcess::start(&path);
    std::fs::write(&path, &text).unwrap();
    let (end, _) = gw.hangup().await;
    assert!(end.contains("config reload rejected"), "{end}");
    assert!(end.contains("routes[1].path"), "{end}");
}

/// The job API is mounted whenever a route runs jobs — a task route with a callback, an
/// admission endpoint or `task.callback` too, not only a sync route — so a route at or under `jobs.path` is a
/// config error then.
#[test]
fn a_route_under_the_jobs_path_is_a_config_error_whenever_jobs_run() {
    let task = |extra: &str| {
        format!(
            "[[routes]]\nname = \"edit\"\nkind = \"task\"\nmethods = [\"POST\"]\n\
             path = \"/v1/edit\"\nupstream = \"http://127.0.0.1:9\"\n{extra}\n\n\
             [routes.task]\nid = \"/taskId\"\nstatus_url = \"/v1/tasks/{{id}}\"\n"
        )
    };
    let proxy = |path: &str| {
        format!(
            "\n[[routes]]\nname = \"other\"\nkind = \"proxy\"\nmethods = [\"GET\"]\n\
             path = \"{path}\"\nupstream = \"http://127.0.0.1:9\"\n"
        )
    };
    // A task route watching operations for callbacks: default jobs.path.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[jobs]\nstore = \"memory\"\n\n\
         [webhooks]\nsigning_secret = \"s\"\n\n{}{}",
        task("callback = { json = \"/callback_url\" }"),
        proxy("/jobs/export")
    );
    refused_at_load(&text, 1, "/jobs/export", "jobs.path");
    // A task route with admission, a moved jobs.path, a route on exactly that path.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[jobs]\nstore = \"memory\"\n\
         path = \"/ops/jobs\"\n\n{}{}",
        task("admission = { url = \"http://127.0.0.1:9/admission\" }"),
        proxy("/ops/jobs")
    );
    refused_at_load(&text, 1, "/ops/jobs", "jobs.path");
    // A callback-driven task route (`task.callback`): its upstream's callback URLs live
    // under jobs.path, so a proxy route cannot take them over.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[jobs]\nstore = \"memory\"\n\n{}\
         callback = {{ header = \"X-Callback-Url\" }}\n{}",
        task(""),
        proxy("/jobs/{id}/upstream-callback/{token}")
    );
    refused_at_load(
        &text,
        1,
        "/jobs/{id}/upstream-callback/{token}",
        "jobs.path",
    );
}
