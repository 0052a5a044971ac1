//! Issue 15, bullet 1 (the parts that need no container engine): environment overrides of
//! the per-deployment settings, shown by `check`; and `prefer-gateway health`, the health
//! check a runtime image runs with nothing but the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::{sync_config, sync_upstream, Gateway};

const BIN: &str = env!("CARGO_BIN_EXE_prefer-gateway");

fn config_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("gateway.toml");
    let cfg = sync_config("sqlite:jobs.db", "", "").replace("{up}", "http://127.0.0.1:9");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn check_shows_the_effective_values_the_environment_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(config_file(&dir))
        .env("PREFER_GATEWAY_LISTEN", "0.0.0.0:8080")
        .env("PREFER_GATEWAY_ADMIN_LISTEN", "0.0.0.0:9901")
        .env(
            "PREFER_GATEWAY_STORE",
            "sqlite:/var/lib/prefer-gateway/jobs.db",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("listen 0.0.0.0:8080"), "{text}");
    assert!(text.contains("admin 0.0.0.0:9901"), "{text}");
    assert!(
        text.contains("store sqlite:/var/lib/prefer-gateway/jobs.db"),
        "{text}"
    );
    assert!(
        text.contains(
            "from the environment: PREFER_GATEWAY_LISTEN, PREFER_GATEWAY_ADMIN_LISTEN, \
             PREFER_GATEWAY_STORE"
        ),
        "{text}"
    );
}

#[test]
fn a_bad_override_is_a_config_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["check", "-c"])
        .arg(config_file(&dir))
        .env("PREFER_GATEWAY_STORE", "postgres://db")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("PREFER_GATEWAY_STORE"), "{err}");
}

#[tokio::test]
async fn health_asks_readyz_and_says_so_by_its_exit_code() {
    let up = sync_upstream(std::time::Duration::ZERO).await;
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        sync_config("memory", "", "")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let admin = gw.admin.unwrap().to_string();
    let ok = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["health", "--admin", &admin])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Nobody listening: unhealthy, exit 1, and a line saying why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = closed.local_addr().unwrap().to_string();
    drop(closed);
    let down = Command::new(BIN)
        .args(["health", "--admin", &gone])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("/readyz"));
}

#[test]
fn the_images_default_config_listens_everywhere_and_keeps_jobs_on_the_volume() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/gateway.toml");
    let cfg = prefer_gateway::config::load_file(&path).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(cfg.server.admin_listen.unwrap().to_string(), "0.0.0.0:9901");
    match &cfg.jobs.store {
        prefer_gateway::config::StoreConfig::Sqlite(p) => {
            assert!(p.starts_with("/var/lib/prefer-gateway"), "{}", p.display())
        }
        other => panic!("{other:?}"),
    }
    assert!(!cfg.routes.is_empty());
}

/// Runs `prefer-gateway demo` as the image does (`PREFER_GATEWAY_DEMO_LISTEN=0.0.0.0:…`),
/// optionally with a public URL, and returns its printed lines up to the last one, with the
/// child (killed on drop).
fn demo_as_in_the_image(public_url: Option<&str>) -> (Vec<String>, KillOnDrop) {
    use std::io::BufRead;
    let mut cmd = Command::new(BIN);
    cmd.arg("demo")
        .env("PREFER_GATEWAY_DEMO_LISTEN", "0.0.0.0:0")
        .env_remove("PREFER_GATEWAY_PUBLIC_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(url) = public_url {
        cmd.env("PREFER_GATEWAY_PUBLIC_URL", url);
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in out.lines() {
        let line = line.unwrap();
        let last = line == "Ctrl-C stops everything.";
        lines.push(line);
        if last {
            break;
        }
    }
    (lines, child)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port in the demo's `gateway … (listening on 0.0.0.0:PORT)` line.
fn listening_port(lines: &[String]) -> u16 {
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("gateway "))
        .unwrap();
    line.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

#[test]
fn the_demo_on_every_interface_prints_lines_a_curl_on_the_host_can_run() {
    let (lines, _demo) = demo_as_in_the_image(None);
    let port = listening_port(&lines);
    let base = format!("http://localhost:{port}");
    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert!(curls.len() >= 10, "{lines:#?}");
    assert!(curls.iter().all(|l| l.contains(&base)), "{lines:#?}");
    // The first line (sync by default on the task API) answers from the host.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{} --max-time 30", curls[0]))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn the_demo_names_the_published_url_in_its_lines_and_its_links() {
    let published = "http://demo.example:9000";
    let (lines, _demo) = demo_as_in_the_image(Some(published));
    let port = listening_port(&lines);
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "gateway   {published} (listening on 0.0.0.0:{port})"
        ))),
        "{lines:#?}"
    );
    let curls: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert!(curls.iter().all(|l| l.contains(published)), "{lines:#?}");
    // A job's URLs name the published URL too, whatever Host the request came with.
    let out = Command::new("curl")
        .args(["-si", "-X", "POST", "-H", "Prefer: respond-async", "-d"])
        .arg(r#"{"duration": 0}"#)
        .arg(format!("http://127.0.0.1:{port}/v1/render"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 202"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains(&format!("location: {published}/jobs/")),
        "{text}"
    );
}

/// The text of a Dockerfile from its "same as" marker on.
fn runtime_section(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docker")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, rest) = text
        .split_once("# --- from here on the same as")
        .unwrap_or_else(|| panic!("no marker in {}", path.display()));
    rest.split_once('\n').unwrap().1.to_owned()
}

#[test]
fn the_from_source_and_the_runtime_only_builds_make_the_same_image() {
    // Both start from docker/rootfs.sh's cut of bookworm and add the binary; everything
    // after that (config, environment, user, volume, health check, entrypoint) is one text.
    assert_eq!(
        runtime_section("Dockerfile"),
        runtime_section("Dockerfile.runtime")
    );
    let from_source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/Dockerfile"),
    )
    .unwrap();
    assert!(from_source.contains("RUN sh /rootfs.sh / /rootfs"));
}
