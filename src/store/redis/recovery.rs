//! `JobStore::recover` on the [`RedisStore`](super::RedisStore): running jobs whose lease
//! lapsed (their replica died or lost the store) go back to pending or to failed. Two
//! steps, because the choice is the engine's, per route: one script lists the routes with
//! stale jobs, the caller decides each, a second script applies the decisions atomically
//! (re-checking each lease, so a job renewed in between is left alone).

use super::codec::{arg, flag, num};
use super::scripts::{integer, items};
use super::RedisStore;
use crate::store::model::Millis;
use crate::store::{Recovery, StoreError};

impl RedisStore {
    /// See the module doc; the count of jobs handled.
    pub(super) async fn recover_stale(
        &self,
        now: Millis,
        ignore_leases: bool,
        retention_ms: i64,
        decide: &(dyn for<'r> Fn(&'r str) -> Recovery + Send + Sync),
    ) -> Result<usize, StoreError> {
        let routes = items(
            self.eval(&self.scripts.stale, vec![num(now), flag(ignore_leases)])
                .await?,
        )?;
        if routes.is_empty() {
            return Ok(0);
        }
        let mut args = vec![
            num(now),
            flag(ignore_leases),
            num(now.saturating_add(retention_ms)),
        ];
        for route in routes {
            let decision = match decide(&String::from_utf8_lossy(&route)) {
                Recovery::Retry => "retry",
                Recovery::Fail => "fail",
            };
            args.extend([route, arg(decision)]);
        }
        let handled = integer(self.eval(&self.scripts.recover, args).await?)?;
        Ok(usize::try_from(handled).unwrap_or(0))
    }
}
