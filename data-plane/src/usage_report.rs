//! Ships usage records to the control plane: a bounded queue the hot path never waits on (it counts
//! what it drops), batched every second or every 500 records, retried while the control plane is
//! away with at most 10,000 records held.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokenrouter_proto::v1::{UsageBatch, UsageRecord};
use tokio::sync::mpsc;

use crate::watch::{WatchConfig, discovery_client};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const MAX_PENDING: usize = 10_000;

/// The hot path's side of the reporter.
#[derive(Debug)]
pub struct UsageReporter {
    tx: mpsc::Sender<UsageRecord>,
    rx: Mutex<Option<mpsc::Receiver<UsageRecord>>>,
    dropped: AtomicU64,
}

impl Default for UsageReporter {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        UsageReporter {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
        }
    }
}

impl UsageReporter {
    /// Queues a record; never waits. A full queue drops it and counts the drop.
    pub fn record(&self, record: UsageRecord) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Records dropped so far (not yet reported).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Sends batches until the reporter's queue closes. Only one sender task may run per reporter.
pub async fn run(reporter: std::sync::Arc<crate::state::DataPlaneState>, config: WatchConfig) {
    let Some(mut rx) = reporter.usage.rx.lock().ok().and_then(|mut r| r.take()) else {
        return;
    };
    let mut pending: Vec<UsageRecord> = Vec::new();
    let mut client = None;
    let mut failures: u32 = 0;
    loop {
        match tokio::time::timeout(FLUSH_EVERY, rx.recv()).await {
            Ok(Some(r)) => pending.push(r),
            Ok(None) => return,
            Err(_) => {}
        }
        while pending.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => pending.push(r),
                Err(_) => break,
            }
        }
        if pending.is_empty() {
            continue;
        }
        if client.is_none() {
            client = discovery_client(&config).await.ok();
        }
        let Some(c) = client.as_mut() else {
            failures = failures.saturating_add(1);
            trim(&reporter.usage, &mut pending);
            tokio::time::sleep(FLUSH_EVERY.saturating_mul(failures.min(10))).await;
            continue;
        };
        let batch = UsageBatch {
            node_id: reporter.config.node_id.clone(),
            records: pending.clone(),
            dropped: reporter.usage.take_dropped(),
        };
        match c.report_usage(batch).await {
            Ok(_) => {
                pending.clear();
                failures = 0;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot report usage yet; keeping it");
                client = None;
                failures = failures.saturating_add(1);
                trim(&reporter.usage, &mut pending);
            }
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
