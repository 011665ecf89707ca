//! Retention: records older than the configured age (30 days by default), logged bodies older
//! than theirs (7 days) and rollups older than theirs (minutes 30 days, hours and days a year) are deleted in small batches with pauses
//! between them, so pruning never holds the store long enough to stall usage ingest.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub records: Duration,
    /// Logged request and response bodies (keys with `log_bodies`).
    pub bodies: Duration,
    pub minute_rollups: Duration,
    pub rollups: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            records: Duration::from_secs(30 * 86_400),
            bodies: Duration::from_secs(7 * 86_400),
            minute_rollups: Duration::from_secs(30 * 86_400),
            rollups: Duration::from_secs(366 * 86_400),
        }
    }
}

/// Pause between two batches while there is more to delete.
const BETWEEN_BATCHES: Duration = Duration::from_millis(200);
/// How often pruning looks for old rows.
const EVERY: Duration = Duration::from_secs(600);

fn cutoff(now_ms: i64, keep: Duration) -> i64 {
    now_ms.saturating_sub(keep.as_millis().min(i64::MAX as u128) as i64)
}

/// One pass: batches until nothing older remains; how many rows went.
pub async fn prune_once(store: &dyn Store, keep: Retention, now_ms: i64) -> u64 {
    let mut total = 0;
    loop {
        let rollups = vec![
            ("m", cutoff(now_ms, keep.minute_rollups)),
            ("h", cutoff(now_ms, keep.rollups)),
            ("d", cutoff(now_ms, keep.rollups)),
        ];
        match store
            .prune_usage(
                cutoff(now_ms, keep.records),
                cutoff(now_ms, keep.bodies),
                rollups,
            )
            .await
        {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) => {
                tracing::warn!(error = %e, "usage pruning failed; trying again later");
                return total;
            }
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Prunes every [`EVERY`] for as long as the task runs.
pub async fn run(store: Arc<dyn Store>, keep: Retention) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let gone = prune_once(store.as_ref(), keep, now).await;
        if gone > 0 {
            tracing::info!(rows = gone, "old usage pruned");
        }
        tokio::time::sleep(EVERY).await;
    }
}
