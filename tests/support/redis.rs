//! A real `redis-server` for tests, on a free loopback port in its own temporary
//! directory, killed when dropped (also when the test panics).
//!
//! Standalone on purpose (std only, no other support module), so any test binary can
//! include it with `#[path = "support/redis.rs"] mod redis_server;`. The port is found by
//! binding `127.0.0.1:0` and dropping the listener; if another process takes it before
//! Redis binds, the server exits and [`RedisServer::start`] tries a fresh port.
//! `.ci/run` installs `redis-server` when the machine lacks it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options for a throwaway server: no snapshots, no append-only file.
pub const EPHEMERAL: &[&str] = &["--save", "", "--appendonly", "no"];
/// Options for a server whose data must survive a kill: every write is fsynced to the
/// append-only file before Redis answers.
pub const DURABLE: &[&str] = &[
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A throwaway server ([`EPHEMERAL`]).
    pub fn start() -> RedisServer {
        RedisServer::start_with(EPHEMERAL)
    }

    /// A server with these extra options, answering `PING` when this returns.
    pub fn start_with(options: &[&str]) -> RedisServer {
        let dir = tempfile::TempDir::new().unwrap();
        for _ in 0..5 {
            let port = free_port();
            let mut child = spawn(port, dir.path(), options);
            if wait_ready(port, &mut child) {
                return RedisServer {
                    child: Some(child),
                    port,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start (is it installed? `.ci/run` installs it)");
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("redis://127.0.0.1:{}/0", self.port)).unwrap()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (`SIGKILL`: no shutdown save), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and directory, with these
    /// options (so an append-only file written before is loaded again).
    pub fn restart(&mut self, options: &[&str]) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let mut child = spawn(self.port, self.dir.path(), options);
            if wait_ready(self.port, &mut child) {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn spawn(port: u16, dir: &Path, options: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(options)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run redis-server (is it installed? `.ci/run` installs it)")
}

/// Waits (up to 10 s) until the server answers `PING` with `PONG` — not `LOADING`, which
/// it answers while reading its append-only file. `false` if it exited first.
fn wait_ready(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if pong(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn pong(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    if conn.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    matches!(conn.read(&mut reply), Ok(n) if reply[..n].starts_with(b"+PONG"))
}
