//! The real `prefer-gateway` binary: `check` (valid config → route table, exit 0; bad value
//! → key, line and column, exit 2; missing file → exit 2), `run` (logs the bound address,
//! serves, exits 0 on SIGTERM), `--log-format json`, and a smoke test of `demo` that runs
//! every curl line it prints and checks the status and headers its comment announces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{reply, Seen, Upstream};

const BIN: &str = env!("CARGO_BIN_EXE_prefer-gateway");
const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs the binary to completion (`check`), from the crate directory.
fn run_to_end(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(CRATE_DIR)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config file on disk for the lifetime of the value.
fn config_file(body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(body.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

// === a long-running child ===

/// Each line a pipe delivers, as it arrives.
fn line_reader(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            if tx.send(line).is_err() {
                return;
            }
            buf.clear();
        }
    });
    rx
}

/// The binary running in the background with both output streams read line by line.
struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(CRATE_DIR)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = line_reader(child.stdout.take().unwrap());
        let stderr = line_reader(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// Lines from `rx` up to and including the first that satisfies `done`.
    fn lines_until(
        rx: &mpsc::Receiver<String>,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let stop = done(&line);
                    lines.push(line);
                    if stop {
                        return lines;
                    }
                }
                Err(e) => panic!("no expected line ({e:?}); got so far: {lines:#?}"),
            }
        }
    }

    /// Every line left on `rx` until the pipe closes (after the process exited).
    fn rest(rx: &mpsc::Receiver<String>) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines
    }

    /// Sends a signal with the system `kill` (no libc in the tests).
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the exit, failing (not hanging) after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Removes ANSI colour sequences (`ESC [ … letter`) from a log line.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// === check ===

#[test]
fn check_accepts_the_example_config_and_lists_its_routes() {
    let out = run_to_end(&["check", "--config", "config/gateway.example.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (name, path) in [
        ("edit", "/v1/edit"),
        ("task-status", "/v1/tasks/{id}"),
        ("render", "/v1/render"),
    ] {
        assert!(
            stdout.lines().any(|l| l.contains(name) && l.contains(path)),
            "route {name} {path} not listed:\n{stdout}"
        );
    }
}

#[test]
fn check_names_the_key_line_and_column_of_a_bad_value_and_exits_2() {
    let file = config_file(
        "[defaults]\nmax_wait = \"600s\"\npoll_interval = \"fast\"\n\n\
         [[routes]]\nname = \"r\"\nkind = \"proxy\"\nmethods = [\"GET\"]\npath = \"/x\"\n\
         upstream = \"http://127.0.0.1:9\"\n",
    );
    let path = file.path().to_str().unwrap();
    let out = run_to_end(&["check", "--config", path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("poll_interval"),
        "the key is named:\n{stderr}"
    );
    let line_col = stderr.match_indices(":3:").any(|(i, _)| {
        stderr[i + 3..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    });
    assert!(line_col, "line 3 and a column (`:3:COL`):\n{stderr}");

    let out = run_to_end(&["run", "--config", path]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "run refuses it too:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn check_of_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = run_to_end(&["check", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", text(&out.stderr));
    assert!(!out.stderr.is_empty(), "says why");
}

// === run ===

fn run_config(upstream: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"

[jobs]
store = "memory"

[[routes]]
name = "all"
kind = "proxy"
methods = ["GET"]
path = "/{{*rest}}"
upstream = "{upstream}"
"#
    )
}

fn get(rt: &tokio::runtime::Runtime, url: String) -> (u16, String) {
    rt.block_on(async move {
        let resp = support::client().get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

fn ok_upstream(rt: &tokio::runtime::Runtime) -> Upstream {
    rt.block_on(Upstream::start(|_s: Seen| async {
        reply(200, r#"{"ok":true}"#, &[])
    }))
}

#[test]
fn run_logs_the_bound_address_serves_and_exits_0_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = ok_upstream(&rt);
    let file = config_file(&run_config(&up.url()));
    let mut gw = Proc::spawn(&["run", "--config", file.path().to_str().unwrap()]);

    let lines = Proc::lines_until(&gw.stderr, Duration::from_secs(30), |l| {
        strip_ansi(l).contains("listening")
    });
    let listening = strip_ansi(lines.last().unwrap());
    let addr: SocketAddr = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .unwrap_or_else(|| panic!("no addr= in {listening:?}"))
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let (status, body) = get(&rt, format!("http://{addr}/hello"));
    assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
    assert_eq!(up.count("/hello"), 1);

    // Transparent huge pages are off for the gateway's process (see `no_huge_pages` in
    // main.rs): the kernel reports it in the process's status (Linux 6.x spells the line
    // `THP_enabled:`; older kernels have no line, and nothing to check).
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }

    gw.signal("TERM");
    let status = gw.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{:#?}",
        Proc::rest(&gw.stderr)
    );
}

#[test]
fn log_format_json_makes_every_log_line_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = ok_upstream(&rt);
    let file = config_file(&run_config(&up.url()));
    let mut gw = Proc::spawn(&[
        "--log-format",
        "json",
        "run",
        "--config",
        file.path().to_str().unwrap(),
    ]);

    let mut lines = Proc::lines_until(&gw.stderr, Duration::from_secs(30), |l| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|v| v["fields"]["message"] == "listening")
    });
    let listening: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let addr: SocketAddr = listening["fields"]["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(get(&rt, format!("http://{addr}/json")).0, 200);

    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(15)).code(), Some(0));
    lines.extend(Proc::rest(&gw.stderr));
    assert!(
        lines.len() >= 2,
        "startup and shutdown are logged: {lines:#?}"
    );
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v["level"].is_string(), "no level in {line}");
        assert!(v["fields"].is_object(), "no fields in {line}");
    }
}

// === demo ===

/// One curl line of the demo tour and what its comment promises.
#[derive(Debug, Clone)]
struct TourStep {
    comment: String,
    curl: String,
    status: u16,
    preference_applied: Option<String>,
    deprecation: bool,
}

impl TourStep {
    fn new(comment: &str, curl: &str) -> TourStep {
        let promise = comment.rsplit('→').next().unwrap_or("");
        let status = promise
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 3)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no status after → in {comment:?}"));
        let preference_applied = comment
            .split_once("Preference-Applied: ")
            .map(|(_, v)| v.trim().to_owned());
        TourStep {
            comment: comment.to_owned(),
            curl: curl.to_owned(),
            status,
            preference_applied,
            deprecation: comment.contains("Deprecation"),
        }
    }

    /// Reads a task's own status, so it must run after the submits that create tasks.
    fn polls(&self) -> bool {
        !self.curl.contains("-X POST")
    }

    fn check(&self, output: &str) {
        let ctx = format!(
            "# {}\n{}\n{self:?}\ncurl printed:\n{output}",
            self.comment, self.curl
        );
        let head = output.split("\r\n\r\n").next().unwrap_or("");
        let status_line = head.lines().next().unwrap_or("");
        assert!(
            status_line.starts_with(&format!("HTTP/1.1 {}", self.status)),
            "{ctx}"
        );
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if let Some(expected) = &self.preference_applied {
            assert_eq!(
                header("preference-applied").as_deref(),
                Some(expected.as_str()),
                "{ctx}"
            );
        }
        if self.deprecation {
            assert!(header("deprecation").is_some(), "{ctx}");
        }
    }
}

fn tour(stdout_lines: &[String]) -> Vec<TourStep> {
    let mut steps = Vec::new();
    let mut comment: Option<&str> = None;
    for line in stdout_lines {
        if let Some(c) = line.strip_prefix("# ") {
            comment = Some(c);
        } else if line.starts_with("curl ") {
            let c = comment
                .take()
                .unwrap_or_else(|| panic!("no comment above {line}"));
            steps.push(TourStep::new(c, line));
        }
    }
    steps
}

/// Runs each step's curl line with `sh -c`, all at once; output per step, in order.
fn run_all(steps: &[TourStep], deadline: Instant) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    for (i, step) in steps.iter().enumerate() {
        let tx = tx.clone();
        // --max-time keeps a hung step from outliving the test.
        let line = format!("{} --max-time 85", step.curl);
        std::thread::spawn(move || {
            let out = Command::new("sh").arg("-c").arg(&line).output();
            let _ = tx.send((i, out));
        });
    }
    drop(tx);
    let mut outputs = vec![String::new(); steps.len()];
    for _ in steps {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, out) = rx
            .recv_timeout(left)
            .expect("the demo curl lines took over 90 s");
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "{:#?}\ncurl failed: {}",
            steps[i],
            text(&out.stderr)
        );
        outputs[i] = text(&out.stdout);
    }
    outputs
}

#[test]
fn demo_prints_curl_lines_that_each_answer_what_their_comment_says() {
    let mut demo = Proc::spawn(&["demo", "--listen", "127.0.0.1:0"]);
    let printed = Proc::lines_until(&demo.stdout, Duration::from_secs(30), |l| {
        l == "Ctrl-C stops everything."
    });
    let steps = tour(&printed);
    assert!(
        steps.len() >= 10,
        "the tour has every row of the table: {printed:#?}"
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let (submits, polls): (Vec<TourStep>, Vec<TourStep>) =
        steps.into_iter().partition(|s| !s.polls());
    for (step, out) in submits.iter().zip(run_all(&submits, deadline)) {
        step.check(&out);
    }
    for (step, out) in polls.iter().zip(run_all(&polls, deadline)) {
        step.check(&out);
    }
    // The callback line's delivery shows up in the demo's own output, signature checked.
    let delivered = Proc::lines_until(&demo.stdout, Duration::from_secs(30), |l| {
        l.starts_with("callback received:") && l.contains("status=succeeded")
    });
    let line = delivered.last().unwrap();
    assert!(line.ends_with("signature valid"), "{line}");
    assert!(line.contains("status=succeeded"), "{line}");
    // The webhook-events line asked for `started` too: it arrives, signed, as well.
    let mut seen = delivered.clone();
    if !seen.iter().any(|l| l.contains("event=job.started")) {
        seen.extend(Proc::lines_until(
            &demo.stdout,
            Duration::from_secs(30),
            |l| l.contains("event=job.started"),
        ));
    }
    let started = seen
        .iter()
        .find(|l| l.contains("event=job.started"))
        .unwrap();
    assert!(started.ends_with("signature valid"), "{started}");

    // Admission: the balance service admits three paid jobs, refuses the fourth with its
    // own 402, and hears a settle for each job that succeeded.
    let shell = |prefix: &str, needle: &str| {
        let line = printed
            .iter()
            .find(|l| l.starts_with(prefix) && l.contains(needle))
            .unwrap_or_else(|| panic!("no {prefix}… line with {needle}: {printed:#?}"));
        text(
            &Command::new("sh")
                .arg("-c")
                .arg(line)
                .output()
                .unwrap()
                .stdout,
        )
    };
    // The deadline line: Cancel-After 1 on a 3 s job ends it canceled, deadline_exceeded.
    let canceled = shell("url=", "Cancel-After");
    assert!(canceled.starts_with("HTTP/1.1 200"), "{canceled}");
    assert!(canceled.contains("\"status\":\"canceled\""), "{canceled}");
    assert!(canceled.contains("deadline_exceeded"), "{canceled}");
    assert_eq!(
        shell("for i in", "/v1/paid/render").trim(),
        "202 202 202 402"
    );
    // The refusal is printed when it happens; the first settle a second later (job time).
    let settled = Proc::lines_until(&demo.stdout, Duration::from_secs(30), |l| {
        l.starts_with("balance: settled")
    });
    assert!(
        settled
            .iter()
            .any(|l| l.starts_with("balance: reserve refused")),
        "{settled:#?}"
    );
    assert!(
        settled.last().unwrap().contains("succeeded"),
        "{settled:#?}"
    );
    // The signed download link answers without credentials.
    let fetched = shell("url=$(", "download_url");
    assert!(fetched.starts_with("HTTP/1.1 200"), "{fetched}");
    assert!(fetched.contains(r#"{"rendered":true"#), "{fetched}");

    demo.signal("INT");
    let status = demo.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{:#?}",
        Proc::rest(&demo.stderr)
    );
}
