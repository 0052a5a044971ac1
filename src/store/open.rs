//! Opening the configured store: `[jobs].store` names memory, an SQLite file or Redis.

use std::sync::Arc;

use super::{memory::MemoryStore, redis::RedisStore, sqlite::SqliteStore, JobStore};
use crate::config::{JobsConfig, StoreConfig};

/// Opens the configured store (`[jobs].store`; a Redis store uses `[jobs].key_prefix`).
pub async fn open_store(cfg: &JobsConfig) -> Result<Arc<dyn JobStore>, String> {
    match &cfg.store {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Sqlite(path) => SqliteStore::open(path)
            .await
            .map(|s| Arc::new(s) as Arc<dyn JobStore>)
            .map_err(|e| format!("cannot open {}: {e}", path.display())),
        StoreConfig::Redis(url) => RedisStore::open(url, &cfg.key_prefix)
            .await
            .map(|s| Arc::new(s) as Arc<dyn JobStore>)
            .map_err(|e| {
                // Host and port only: the URL may carry a password.
                let host = url.host_str().unwrap_or_default();
                let port = url.port().unwrap_or(6379);
                format!("cannot open the Redis store at {host}:{port}: {e}")
            }),
    }
}
