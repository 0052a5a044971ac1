//! A real client in CI (issue 14): azure-core's stock `LROPoller` + `LROBasePolling`, from
//! PyPI, drives gateway jobs end to end. The gateway and its upstreams run here on loopback;
//! `tests/clients/azure_lro.py` is the client (its docstring lists the scenarios: success
//! returns the upstream's body, a failing upstream raises, a `DELETE` while polling ends
//! canceled, `Prefer: wait` that finishes in time needs no polling).
//!
//! The virtualenv comes from [`support::python::venv`]; a machine that cannot install
//! azure-core fails this test with pip's output (never a skip).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{python, reply, Gateway, Seen, Upstream};

/// How long the slow upstream holds a request (the client cancels long before).
const SLOW: Duration = Duration::from_secs(10);
/// The whole client run, all scenarios (about 5 s when healthy).
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// Three `sync` routes on one upstream, jobs in memory.
const CONFIG: &str = r#"
[jobs]
store = "memory"

[[routes]]
name = "ok"
kind = "sync"
methods = ["POST"]
path = "/v1/ok"
upstream = "{up}"

[[routes]]
name = "fail"
kind = "sync"
methods = ["POST"]
path = "/v1/fail"
upstream = "{up}"

[[routes]]
name = "slow"
kind = "sync"
methods = ["POST"]
path = "/v1/slow"
upstream = "{up}"
"#;

/// `/v1/ok` echoes the JSON body as `{"echo": …}` at once, `/v1/fail` answers 500,
/// `/v1/slow` answers after [`SLOW`].
async fn upstream() -> Upstream {
    Upstream::start(|s: Seen| async move {
        let path = s.uri.split('?').next().unwrap_or("").to_owned();
        match path.as_str() {
            "/v1/ok" => {
                let body = String::from_utf8_lossy(&s.body).into_owned();
                reply(200, &format!(r#"{{"echo":{body}}}"#), &[])
            }
            "/v1/fail" => reply(500, r#"{"error":"upstream broke"}"#, &[]),
            "/v1/slow" => {
                tokio::time::sleep(SLOW).await;
                reply(200, r#"{"slow":true}"#, &[])
            }
            _ => reply(404, r#"{"error":"no such path"}"#, &[]),
        }
    })
    .await
}

/// Runs `python script args…` with a time limit; returns (success, stdout, stderr).
fn run_client(python: &std::path::Path, args: &[String]) -> (bool, String, String) {
    let script = python::root().join("tests/clients/azure_lro.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_core_lro_poller_drives_gateway_jobs() {
    let python = tokio::task::spawn_blocking(|| python::venv(&["tests/clients/requirements.txt"]))
        .await
        .unwrap();
    let up = upstream().await;
    let gw = Gateway::start(CONFIG, &up.url()).await;
    let args = vec![gw.url("")];
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || run_client(&python, &args))
        .await
        .unwrap();
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        ok,
        "azure-core could not drive the gateway:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // One line per scenario, all passed.
    for scenario in ["success", "failure", "cancel", "wait"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok   {scenario} "))),
            "no passing line for {scenario}:\n{stdout}"
        );
    }
    gw.shutdown().await;
}
