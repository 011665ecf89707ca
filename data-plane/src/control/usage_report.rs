//! Ships usage records to the control plane without ever waiting on it. The hot path's queue is
//! drained into batches (a batch leaves when it holds 1,000 records, 4 MiB of logged bodies and
//! metadata, or its first record is a second old); up to four batches are in flight at once; a batch that cannot leave now (control plane
//! away, or every slot busy) goes to the backlog (the spool on disk, else memory), which a replay
//! task delivers oldest first once a control plane takes them. Every record carries its id, so a
//! batch delivered twice (a lost ACK, a replay after a crash) is stored once. On shutdown the
//! same path: what cannot be delivered in time stays in the spool for the next start. With a
//! spool, every batch not yet delivered or spooled also has a journal copy, so a data plane that
//! is killed loses nothing either (see [`crate::telemetry::journal`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use tokenrouter_proto::v1::{UsageBatch, UsageRecord};
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::control::watch::{Client, WatchConfig, discovery_client};
use crate::snapshot::policy::jittered_backoff;
use crate::state::DataPlaneState;
use crate::telemetry::journal::{Entry, Journal};
use crate::telemetry::spool::Backlog;
pub use crate::telemetry::usage_queue::LocalUsage;

const BATCH: usize = 1_000;
/// Most bytes of bodies and metadata a batch carries (a key that logs bodies adds up to 128 KiB a
/// record), so every batch stays far below the control plane's message limit; the records past
/// it wait for the next batch.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Batches delivered at the same time (live and replayed together).
const IN_FLIGHT: usize = 4;
/// The longest pause between replay attempts while no control plane takes records.
const REPLAY_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How long a shutting-down data plane tries to deliver what it still holds.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Where batches go: the in-process store (`serve`) or a control plane over gRPC.
struct Sink {
    state: Arc<DataPlaneState>,
    config: WatchConfig,
    client: tokio::sync::Mutex<Option<(String, Client)>>,
}

impl Sink {
    /// Delivers one batch; `Err` gives it back.
    async fn deliver(&self, records: Vec<UsageRecord>) -> Result<(), Vec<UsageRecord>> {
        let usage = &self.state.usage;
        if let Some(local) = &self.state.config.local_usage {
            let dropped = usage.take_unreported();
            if dropped > 0 {
                tracing::warn!(dropped, "usage records were dropped");
            }
            let records: Arc<[UsageRecord]> = records.into();
            return match (local.0)(records.clone()).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store usage yet; keeping it");
                    Err(records.to_vec())
                }
            };
        }
        let Some(mut client) = self.client().await else {
            return Err(records);
        };
        let dropped = usage.take_unreported();
        let batch = UsageBatch {
            node_id: self.state.config.node_id.clone(),
            records,
            dropped,
        };
        // The call consumes the batch; its encoding (one buffer, not a copy of every string) is
        // what brings it back if the control plane does not take it.
        let backup = batch.encode_to_vec();
        let sent = batch.records.len() as u64;
        match client.report_usage(batch).await {
            Ok(answer) => {
                self.state
                    .limiter
                    .set_peers(u64::from(answer.into_inner().data_planes));
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot report usage yet; keeping it");
                usage.unreport(dropped);
                *self.client.lock().await = None;
                // Cannot fail (we encoded it); counted rather than ignored if it ever did.
                Err(UsageBatch::decode(backup.as_slice()).map_or_else(
                    |_| {
                        usage.count_dropped(sent);
                        Vec::new()
                    },
                    |b| b.records,
                ))
            }
        }
    }

    /// A client for the control plane the watch is on (re-made when the watch moved).
    async fn client(&self) -> Option<Client> {
        let url = self.config.current().to_string();
        let mut slot = self.client.lock().await;
        if let Some((at, client)) = slot.as_ref()
            && *at == url
        {
            return Some(client.clone());
        }
        let client = discovery_client(&self.config, &url).await.ok()?;
        *slot = Some((url, client.clone()));
        Some(client)
    }
}

/// The backlog and who waits on it.
struct Outbox {
    backlog: Mutex<Backlog>,
    /// Woken when the backlog gains a batch.
    grew: Notify,
    slots: Arc<Semaphore>,
    sink: Sink,
}

impl Outbox {
    /// Appends a batch to the backlog off the async threads (the spool syncs each write).
    async fn spool(self: &Arc<Self>, batch: Vec<UsageRecord>) {
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let Ok(mut backlog) = me.backlog.lock() else {
                return batch.len() as u64;
            };
            let dropped = backlog.append(batch);
            me.publish(&backlog);
            dropped
        })
        .await;
        self.sink
            .state
            .usage
            .count_dropped(done.unwrap_or_default());
        self.grew.notify_one();
    }

    fn publish(&self, backlog: &Backlog) {
        self.sink
            .state
            .usage
            .spooled
            .store(backlog.records(), std::sync::atomic::Ordering::Relaxed);
    }

    fn backlog_empty(&self) -> bool {
        self.backlog.lock().map_or(true, |b| b.is_empty())
    }

    /// Sends a fresh batch now if the backlog is empty and a slot is free, else spools it; its
    /// journal copy goes once either is done.
    async fn send_or_spool(self: &Arc<Self>, batch: Vec<UsageRecord>, copy: Entry) {
        let slot = if self.backlog_empty() {
            self.slots.clone().try_acquire_owned().ok()
        } else {
            // Behind what already waits, so records reach the store in order.
            None
        };
        let Some(slot) = slot else {
            self.spool(batch).await;
            return copy.finish();
        };
        let me = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(batch) = me.sink.deliver(batch).await {
                me.spool(batch).await;
            }
            copy.finish();
        });
    }

    /// Delivers the backlog oldest first, until it is empty or a delivery fails; returns whether
    /// it emptied.
    async fn replay_once(self: &Arc<Self>) -> bool {
        loop {
            let me = self.clone();
            let oldest = tokio::task::spawn_blocking(move || {
                me.backlog
                    .lock()
                    .ok()
                    .and_then(|mut b| b.oldest().ok().flatten())
            })
            .await
            .ok()
            .flatten();
            let Some(waiting) = oldest else { return true };
            for batch in waiting.batches {
                let Ok(_slot) = self.slots.acquire().await else {
                    return false;
                };
                if self.sink.deliver(batch).await.is_err() {
                    return false;
                }
            }
            if let Ok(mut b) = self.backlog.lock() {
                b.remove(waiting.segment);
                self.publish(&b);
            }
        }
    }

    /// Replays whenever the backlog holds something, backing off while nothing takes it.
    async fn replay(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            if self.backlog_empty() {
                failures = 0;
                self.grew.notified().await;
                continue;
            }
            if self.replay_once().await {
                failures = 0;
            } else {
                failures = failures.saturating_add(1);
                let pause =
                    jittered_backoff(FLUSH_EVERY, REPLAY_BACKOFF_CAP, failures, FLUSH_EVERY / 2);
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Waits until no delivery is in flight.
    async fn settle(&self) {
        if let Ok(all) = self.slots.acquire_many(IN_FLIGHT as u32).await {
            drop(all);
        }
    }
}

/// Sends batches until [`UsageReporter::stop`]; then delivers what is held (spooling what it
/// cannot within [`FINAL_FLUSH`]) and ends. Only one sender task may run per reporter.
pub async fn run(state: Arc<DataPlaneState>, config: WatchConfig) {
    let Some(mut rx) = state.usage.rx.lock().ok().and_then(|mut r| r.take()) else {
        return;
    };
    let mut stopping = state.usage.stopping.subscribe();
    let backlog = Backlog::open(state.config.usage_spool.as_ref());
    let outbox = Arc::new(Outbox {
        backlog: Mutex::new(backlog),
        grew: Notify::new(),
        slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        sink: Sink {
            state: state.clone(),
            config,
            client: tokio::sync::Mutex::new(None),
        },
    });
    let journal = state
        .config
        .usage_spool
        .as_ref()
        .map(|spool| Journal::new(&spool.dir));
    if let Some(journal) = &journal {
        let left = journal.leftovers();
        let records: usize = left.iter().map(|(_, r)| r.len()).sum();
        if records > 0 {
            tracing::info!(
                records,
                "usage of a data plane that was killed: spooled for delivery"
            );
        }
        for (path, records) in left {
            if !records.is_empty() {
                outbox.spool(records).await;
            }
            let _ = std::fs::remove_file(path);
        }
    }
    if let Ok(b) = outbox.backlog.lock() {
        outbox.publish(&b);
    }
    let replayer = tokio::spawn(outbox.clone().replay());
    let mut pending: Vec<UsageRecord> = Vec::new();
    loop {
        let mut copy = journal.as_ref().map_or_else(Entry::none, Journal::begin);
        // What the last batch left over is journaled again with this one (the last one's copy
        // goes once it is delivered).
        copy.append(&pending);
        let stop = gather(&mut rx, &mut pending, &mut copy, &mut stopping).await;
        let rest = over_bytes(&mut pending);
        if !pending.is_empty() {
            outbox
                .send_or_spool(std::mem::replace(&mut pending, rest), copy)
                .await;
        } else {
            copy.finish();
        }
        // Stopping drains the queue in batches of the usual bounds.
        if stop && rx.is_empty() && pending.is_empty() {
            break;
        }
    }
    replayer.abort();
    let flushed = tokio::time::timeout(FINAL_FLUSH, async {
        outbox.settle().await;
        outbox.replay_once().await
    })
    .await
    .unwrap_or(false);
    if !flushed {
        let left = outbox.backlog.lock().map_or(0, |b| match &*b {
            Backlog::Disk(_) => 0,
            Backlog::Memory { records, .. } => *records as u64,
        });
        state.usage.count_dropped(left);
        tracing::warn!(
            spooled = state.usage.spooled(),
            lost = left,
            "stopping before a control plane took every usage record; the spool keeps them for the next start"
        );
    }
}

/// Adds queued records to `pending` (and to its journal `copy`) until it holds a full batch,
/// [`FLUSH_EVERY`] has passed with records waiting, or the reporter is stopping (returns `true`:
/// take everything queued now).
async fn gather(
    rx: &mut mpsc::Receiver<UsageRecord>,
    pending: &mut Vec<UsageRecord>,
    copy: &mut Entry,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
    let mut bytes: usize = pending.iter().map(heavy_bytes).sum();
    while pending.len() < BATCH && bytes < BATCH_BYTES {
        let room = BATCH - pending.len();
        let had = pending.len();
        tokio::select! {
            got = tokio::time::timeout_at(deadline, rx.recv_many(pending, room)) => match got {
                Ok(0) => return true,
                Ok(_) => {
                    bytes += pending[had..].iter().map(heavy_bytes).sum::<usize>();
                    copy.append(&pending[had..]);
                }
                Err(_) => return false,
            },
            _ = stopping.wait_for(|s| *s) => {
                while pending.len() < BATCH && bytes < BATCH_BYTES {
                    let Ok(r) = rx.try_recv() else { break };
                    bytes += heavy_bytes(&r);
                    pending.push(r);
                }
                copy.append(&pending[had..]);
                return true;
            }
        }
    }
    *stopping.borrow()
}

/// The bytes of a record's free-size fields (its other fields are small and capped).
fn heavy_bytes(r: &UsageRecord) -> usize {
    r.request_body.len() + r.response_body.len() + r.metadata_json.len()
}

/// Cuts `batch` where its bodies and metadata pass [`BATCH_BYTES`] (keeping at least one
/// record); returns the records cut off, in order.
fn over_bytes(batch: &mut Vec<UsageRecord>) -> Vec<UsageRecord> {
    let mut bytes = 0;
    let cut = batch.iter().position(|r| {
        bytes += heavy_bytes(r);
        bytes > BATCH_BYTES
    });
    match cut {
        Some(at) => batch.split_off(at.max(1)),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::usage_queue::UsageReporter;

    #[test]
    fn a_batch_heavy_with_bodies_is_cut_at_the_byte_bound() {
        let body = |id: &str, n: usize| UsageRecord {
            record_id: id.into(),
            request_body: "x".repeat(n),
            ..Default::default()
        };
        let mut batch: Vec<UsageRecord> = (0..100)
            .map(|i| body(&format!("r{i}"), 64 * 1024))
            .collect();
        let rest = over_bytes(&mut batch);
        assert_eq!(batch.len(), 64, "4 MiB of 64 KiB bodies");
        assert_eq!(rest.len(), 36);
        assert_eq!(rest[0].record_id, "r64", "the rest in order");
        let mut light: Vec<UsageRecord> = (0..1000).map(|i| body(&format!("l{i}"), 0)).collect();
        assert!(over_bytes(&mut light).is_empty());
        let mut huge = vec![body("h0", BATCH_BYTES + 1), body("h1", 1)];
        assert_eq!(over_bytes(&mut huge).len(), 1, "one record always goes");
    }

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
        let stop = gather(&mut rx, &mut pending, &mut Entry::none(), &mut stopping).await;
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
        gather(&mut rx, &mut pending, &mut Entry::none(), &mut stopping).await;
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
        assert!(gather(&mut rx, &mut pending, &mut Entry::none(), &mut stopping).await);
        assert_eq!(pending.len(), 2);
    }
}
