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
