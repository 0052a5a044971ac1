//! [`JobStore::queue_position`](crate::store::JobStore::queue_position) on the
//! [`RedisStore`](super::RedisStore): one `ZRANK` on the route's pending queue
//! (`P pending:{route}`), the sorted set `claim` takes its first member from. Scored by
//! `created_at` with equal scores in member (id) order, so the rank is the claim order of
//! the other stores, and it is the same number on every replica: the queue is shared.
//! A member is in the set exactly while its job is pending (`create` and recover's retry
//! add it; `claim` and every terminal step remove it, in the same scripts), so no script
//! is needed to check the job's status. O(log n) in the queue's length; read-only.

use super::RedisStore;
use crate::store::StoreError;

/// The 1-based rank of `id` in `route`'s pending queue; `None` when it is not there.
pub(super) async fn position(
    store: &RedisStore,
    route: &str,
    id: &str,
) -> Result<Option<u64>, StoreError> {
    let key = format!("{}pending:{route}", store.prefix);
    let mut conn = store.conn.clone();
    let rank: Option<u64> = redis::cmd("ZRANK")
        .arg(key)
        .arg(id)
        .query_async(&mut conn)
        .await
        .map_err(|e| StoreError::new(format!("Redis: {e}")))?;
    Ok(rank.map(|r| r.saturating_add(1)))
}
