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
}

impl GatewayProcess {
    /// Starts `prefer-gateway run --config <config>` and waits for it to listen.
    pub fn start(config: &std::path::Path) -> GatewayProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_prefer-gateway"))
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
                if let Some(rest) = line.split("addr=").nth(1) {
                    gw.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    // Keep draining stderr so the child never blocks on a full pipe.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return gw;
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
