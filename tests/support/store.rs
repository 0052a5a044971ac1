//! The job store a black-box test runs the gateway on, by name (`memory`, `sqlite`, `redis`),
//! with what must outlive the gateway: the SQLite file's temp dir, the `redis-server`.

use super::redis::RedisServer;

/// The store under test and what must outlive the gateway.
pub struct Store {
    /// The `[jobs].store` value.
    pub spec: String,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
}

/// A fresh store of `kind`: `"memory"`, `"sqlite"` (a file in a new temp dir), anything
/// else a `redis-server` of its own on a free port.
pub fn store(kind: &str) -> Store {
    match kind {
        "memory" => Store {
            spec: "memory".into(),
            _dir: None,
            _redis: None,
        },
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let spec = format!("sqlite:{}", dir.path().join("jobs.db").display());
            Store {
                spec,
                _dir: Some(dir),
                _redis: None,
            }
        }
        _ => {
            let redis = RedisServer::start();
            Store {
                spec: redis.url().to_string(),
                _dir: None,
                _redis: Some(redis),
            }
        }
    }
}
