//! The real `prefer-gateway` binary as a child process: started with a config file, its
//! `listening addr=…` log line read to learn the port, killed (SIGKILL) on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running gateway process.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every log line after the `listening` one.
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts `prefer-gateway run --config <config>` and waits for it to listen.
    pub fn start(config: &std::path::Path) -> GatewayProcess {
        Self::start_with(config, &[])
    }

    /// [`GatewayProcess::start`] with extra global arguments (e.g. `--log-format json`).
    pub fn start_with(config: &std::path::Path, args: &[&str]) -> GatewayProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_prefer-gateway"))
            .args(args)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Owned at once, so a failed assertion below still kills the child.
        let mut gw = GatewayProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines: std::sync::Arc::default(),
        };
        let stderr = gw.child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap();
            if line.contains("listening") && !line.contains("admin") {
                let addr = match serde_json::from_str::<serde_json::Value>(&line) {
                    Ok(doc) => doc["fields"]["addr"].as_str().map(str::to_owned),
                    Err(_) => line
                        .split("addr=")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned),
                };
                if let Some(addr) = addr {
                    gw.addr = addr.parse().unwrap();
                    // Keep draining stderr so the child never blocks on a full pipe.
                    let lines = std::sync::Arc::clone(&gw.lines);
                    std::thread::spawn(move || {
                        while let Ok(line) = rx.recv() {
                            lines.lock().unwrap().push(line);
                        }
                    });
                    return gw;
                }
            }
        }
    }

    /// `path` on this gateway; an absolute URL (as the gateway hands them out) as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_owned();
        }
        format!("http://{}{path}", self.addr)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of the child's `/proc/{pid}/status` (e.g. `VmRSS`, `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} not in /proc/{}/status", self.pid()))
    }

    /// Sends SIGHUP and waits (up to 30 s) for the log line that ends the reload (`config
    /// reloaded` or `config reload rejected`); returns it with the lines logged since.
    pub async fn hangup(&self) -> (String, Vec<String>) {
        let before = self.lines.lock().unwrap().len();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let lines = self.lines.lock().unwrap()[before..].to_vec();
            let end = lines
                .iter()
                .find(|l| l.contains("config reloaded") || l.contains("config reload rejected"));
            if let Some(end) = end {
                return (end.clone(), lines);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no reload outcome logged within 30 s");
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
