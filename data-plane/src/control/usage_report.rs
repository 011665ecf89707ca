//! Ships usage records to the control plane: a bounded queue the hot path never waits on (it counts
//! what it drops), batched (a batch leaves when it holds 1,000 records or its first record is a
//! second old), retried while the control plane is away with at most 10,000 records held, and
//! flushed when the data plane shuts down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message as _;
use tokenrouter_proto::v1::{UsageBatch, UsageRecord};
use tokio::sync::mpsc;

use crate::control::watch::{WatchConfig, discovery_client};
pub use crate::telemetry::usage_queue::{LocalUsage, UsageReporter};

const BATCH: usize = 1_000;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const MAX_PENDING: usize = 10_000;
/// How long a shutting-down data plane tries to deliver what it still holds.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Sends batches until [`UsageReporter::stop`]: then sends what is held once more and ends. Only
/// one sender task may run per reporter.
pub async fn run(reporter: std::sync::Arc<crate::state::DataPlaneState>, config: WatchConfig) {
    let Some(mut rx) = reporter.usage.rx.lock().ok().and_then(|mut r| r.take()) else {
        return;
    };
    let mut stopping = reporter.usage.stopping.subscribe();
    let mut pending: Vec<UsageRecord> = Vec::new();
    let mut client = None;
    let mut failures: u32 = 0;
    loop {
        let stop = gather(&mut rx, &mut pending, &mut stopping).await;
        if pending.is_empty() {
            if stop {
                return;
            }
            continue;
        }
        let local = reporter.config.local_usage.as_ref();
        if client.is_none() && local.is_none() {
            client = discovery_client(&config).await.ok();
        }
        let sent = match (local, client.as_mut()) {
            (Some(local), _) => deliver_local(local, &reporter.usage, &mut pending).await,
            (None, Some(c)) => {
                let batch = UsageBatch {
                    node_id: reporter.config.node_id.clone(),
                    records: std::mem::take(&mut pending),
                    dropped: reporter.usage.take_dropped(),
                };
                // The send consumes the batch; its encoding (one buffer, not a copy of every
                // string) is what brings it back if the control plane does not take it.
                let backup = batch.encode_to_vec();
                let records = batch.records.len();
                match c.report_usage(batch).await {
                    Ok(answer) => {
                        reporter
                            .limiter
                            .set_peers(u64::from(answer.into_inner().data_planes));
                        true
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot report usage yet; keeping it");
                        client = None;
                        restore(&reporter.usage, &backup, records, &mut pending);
                        false
                    }
                }
            }
            (None, None) => false,
        };
        if sent {
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
            trim(&reporter.usage, &mut pending);
        }
        if stop {
            if !pending.is_empty() {
                tracing::warn!(
                    records = pending.len(),
                    "stopping with usage records the control plane did not take"
                );
            }
            return;
        }
        if !sent {
            let pause = FLUSH_EVERY.saturating_mul(failures.min(10));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
        }
    }
}

/// Adds queued records to `pending` until it holds a full batch, [`FLUSH_EVERY`] has passed with
/// records waiting, or the reporter is stopping (returns `true`: take everything queued now).
async fn gather(
    rx: &mut mpsc::Receiver<UsageRecord>,
    pending: &mut Vec<UsageRecord>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
    while pending.len() < BATCH {
        let room = BATCH - pending.len();
        tokio::select! {
            got = tokio::time::timeout_at(deadline, rx.recv_many(pending, room)) => match got {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            },
            _ = stopping.wait_for(|s| *s) => {
                while let Ok(r) = rx.try_recv() {
                    pending.push(r);
                }
                return true;
            }
        }
    }
    *stopping.borrow()
}

/// Hands `pending` to the in-process control plane; on failure it stays pending.
async fn deliver_local(
    local: &LocalUsage,
    reporter: &UsageReporter,
    pending: &mut Vec<UsageRecord>,
) -> bool {
    let dropped = reporter.take_dropped();
    if dropped > 0 {
        tracing::warn!(dropped, "usage records were dropped (buffer full)");
    }
    let records: Arc<[UsageRecord]> = std::mem::take(pending).into();
    match (local.0)(records.clone()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store usage yet; keeping it");
            *pending = records.to_vec();
            false
        }
    }
}

/// Puts an unsent batch back into `pending` (empty while a batch is out) and its drop count back
/// on the counter.
fn restore(
    reporter: &UsageReporter,
    encoded: &[u8],
    records: usize,
    pending: &mut Vec<UsageRecord>,
) {
    match UsageBatch::decode(encoded) {
        Ok(batch) => {
            reporter.dropped.fetch_add(batch.dropped, Ordering::Relaxed);
            pending.extend(batch.records);
        }
        // Cannot happen (we encoded it); counted as dropped rather than ignored.
        Err(_) => {
            reporter
                .dropped
                .fetch_add(records as u64, Ordering::Relaxed);
        }
    }
}

/// Keeps at most [`MAX_PENDING`] records, dropping (and counting) the oldest.
fn trim(reporter: &UsageReporter, pending: &mut Vec<UsageRecord>) {
    if pending.len() > MAX_PENDING {
        let excess = pending.len() - MAX_PENDING;
        pending.drain(..excess);
        reporter.dropped.fetch_add(excess as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.into(),
            model: "m".into(),
            ..Default::default()
        }
    }

    /// A batch leaves once its records are a second old, not at the first record.
    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_waits_for_the_flush_interval() {
        let reporter = UsageReporter::default();
        let mut rx = reporter.rx.lock().unwrap().take().unwrap();
        let mut stopping = reporter.stopping.subscribe();
        for i in 0..3 {
            reporter.record(record(&i.to_string()));
        }
        let started = tokio::time::Instant::now();
        let mut pending = Vec::new();
        let stop = gather(&mut rx, &mut pending, &mut stopping).await;
        assert!(!stop);
        assert_eq!(pending.len(), 3);
        assert_eq!(started.elapsed(), FLUSH_EVERY);
    }

    /// A full batch leaves at once.
    #[tokio::test(start_paused = true)]
    async fn a_full_batch_leaves_at_once() {
        let reporter = UsageReporter::default();
        let mut rx = reporter.rx.lock().unwrap().take().unwrap();
        let mut stopping = reporter.stopping.subscribe();
        for i in 0..BATCH + 5 {
            reporter.record(record(&i.to_string()));
        }
        let started = tokio::time::Instant::now();
        let mut pending = Vec::new();
        gather(&mut rx, &mut pending, &mut stopping).await;
        assert_eq!(pending.len(), BATCH);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// Stopping takes everything queued and says so.
    #[tokio::test(start_paused = true)]
    async fn stopping_takes_what_is_queued() {
        let reporter = UsageReporter::default();
        let mut rx = reporter.rx.lock().unwrap().take().unwrap();
        let mut stopping = reporter.stopping.subscribe();
        reporter.record(record("a"));
        reporter.record(record("b"));
        reporter.stop();
        let mut pending = Vec::new();
        assert!(gather(&mut rx, &mut pending, &mut stopping).await);
        assert_eq!(pending.len(), 2);
    }

    /// An unsent batch comes back whole from its encoding, drop count included.
    #[test]
    fn an_unsent_batch_is_restored() {
        let reporter = UsageReporter::default();
        let batch = UsageBatch {
            node_id: "n".into(),
            records: vec![record("a"), record("b")],
            dropped: 7,
        };
        let encoded = batch.encode_to_vec();
        let mut pending = Vec::new();
        restore(&reporter, &encoded, 2, &mut pending);
        assert_eq!(pending, batch.records);
        assert_eq!(reporter.dropped(), 7);
    }
}
