//! The hot path's side of usage reporting: a bounded queue that never waits (it counts what it
//! drops), and the in-process sink `serve` uses instead of gRPC. `usage_report` drains it; the
//! data plane's state holds it without depending on the reporter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokenrouter_proto::v1::UsageRecord;
use tokio::sync::mpsc;

/// Records the queue holds before it drops new ones.
const QUEUE: usize = 10_000;

/// Stores a batch of usage records without the network, when the control plane shares the
/// process (`tokenrouter serve`). An `Err` keeps the batch for the next try.
#[derive(Clone)]
pub struct LocalUsage(pub Arc<StoreUsage>);

/// The function behind [`LocalUsage`].
pub type StoreUsage =
    dyn Fn(Arc<[UsageRecord]>) -> BoxFuture<'static, Result<(), String>> + Send + Sync;

impl std::fmt::Debug for LocalUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalUsage")
    }
}

/// The hot path's side of the reporter.
#[derive(Debug)]
pub struct UsageReporter {
    tx: mpsc::Sender<UsageRecord>,
    pub(crate) rx: Mutex<Option<mpsc::Receiver<UsageRecord>>>,
    pub(crate) dropped: AtomicU64,
    /// Set when the data plane stops: send what is held, then end.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl Default for UsageReporter {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        UsageReporter {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            stopping: tokio::sync::watch::Sender::new(false),
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

    pub(crate) fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Asks the sender task to deliver what it holds and end.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Records dropped so far (not yet reported).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
