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
    /// Every record ever dropped (never reset: the `tokenrouter_usage_dropped_total` counter).
    dropped: AtomicU64,
    /// Dropped records no control plane has been told of yet.
    unreported: AtomicU64,
    /// Records waiting in the spool (or the memory backlog) for a control plane.
    pub(crate) spooled: AtomicU64,
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
            unreported: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl UsageReporter {
    /// Queues a record; never waits. A full queue drops it and counts the drop.
    pub fn record(&self, record: UsageRecord) {
        if self.tx.try_send(record).is_err() {
            self.count_dropped(1);
        }
    }

    /// Counts records lost for good (queue or spool full, spool unwritable).
    pub(crate) fn count_dropped(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            self.unreported.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Takes the drops to tell the control plane of; [`UsageReporter::unreport`] gives them back
    /// when the telling failed.
    pub(crate) fn take_unreported(&self) -> u64 {
        self.unreported.swap(0, Ordering::Relaxed)
    }

    pub(crate) fn unreport(&self, n: u64) {
        self.unreported.fetch_add(n, Ordering::Relaxed);
    }

    /// Records waiting for a control plane (spool or memory backlog).
    pub fn spooled(&self) -> u64 {
        self.spooled.load(Ordering::Relaxed)
    }

    /// Asks the sender task to deliver what it holds and end.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Records dropped since the data plane started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
