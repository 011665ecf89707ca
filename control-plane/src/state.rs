//! The control plane's core: the current snapshot, serialised compare-and-swap writes, and publishing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokenrouter_proto::v1::Snapshot;
use tokenrouter_proto::{content_hash, validate_snapshot};
use tokio::sync::{Mutex, watch};

use crate::crypto::MasterKey;
use crate::error::ControlPlaneError;
use crate::registry::Registry;
use crate::resources::{Resource, snapshot_from_rows};
use crate::store::{Change, Store, StoreError};

/// How often a control plane checks the store for commits made by its peers, when the store
/// cannot announce them.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often it checks when the store announces commits (`LISTEN/NOTIFY`): a safety net for a
/// notification lost while the listening connection was re-opened, and the store health probe.
const SAFETY_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often this copy writes its data planes to the shared table (and reads everyone's).
const DATA_PLANE_SYNC: Duration = Duration::from_secs(2);
/// How many times a write is re-applied when a peer commits first.
const WRITE_RETRIES: usize = 3;

/// The source of truth for data planes: owns the store and publishes each committed snapshot.
pub struct ControlPlane {
    store: Arc<dyn Store>,
    key: MasterKey,
    write_lock: Mutex<()>,
    current: watch::Sender<Arc<Snapshot>>,
    /// Whether the store answered the last probe; a control plane that lost it stops pushing.
    healthy: watch::Sender<bool>,
    pub(crate) data_planes: Registry,
    /// This copy's id in the shared data-plane table (host name and a random suffix).
    instance: String,
    /// Where its spans go, when export is on.
    pub traces: Arc<crate::telemetry::Traces>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Loads the store and starts watching it for peers' commits.
    pub async fn open(
        store: Arc<dyn Store>,
        key: MasterKey,
    ) -> Result<Arc<Self>, ControlPlaneError> {
        let first = load(store.as_ref(), &key).await?;
        tracing::info!(store = %store.describe(), version = first.version, "control plane store opened");
        let (current, _) = watch::channel(Arc::new(first));
        let cp = Arc::new(ControlPlane {
            store,
            key,
            write_lock: Mutex::new(()),
            current,
            healthy: watch::Sender::new(true),
            data_planes: Registry::default(),
            instance: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "cp".into()),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            traces: Default::default(),
        });
        tokio::spawn(poll_store(Arc::downgrade(&cp)));
        tokio::spawn(sync_data_planes(Arc::downgrade(&cp)));
        Ok(cp)
    }

    /// The snapshot of the latest commit (credentials included: never hand it to admins as is).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every newly published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.current.subscribe()
    }

    /// This copy's instance id (the `control_plane` of the data planes it serves).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Every data plane any copy sharing the store serves, each once; this copy's own table
    /// alone when the store cannot be read.
    pub async fn list_data_planes(&self) -> Vec<tokenrouter_proto::v1::DataPlaneStatus> {
        let shared = match self.store.data_planes().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the shared data-plane table; listing this copy's");
                Vec::new()
            }
        };
        self.data_planes.merged(&self.instance, &shared)
    }

    /// Writes this copy's data planes to the shared table.
    pub async fn save_data_planes(&self) {
        let rows = self.data_planes.rows_to_save(&self.instance);
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.store.save_data_planes(rows.clone()).await {
            tracing::debug!(error = %e, "cannot write the shared data-plane table yet");
            self.data_planes.unsaved(&rows);
        }
    }

    /// Whether the store answers: `false` from the first failed probe until one succeeds again.
    pub fn health(&self) -> watch::Receiver<bool> {
        self.healthy.subscribe()
    }

    /// Records a probe's outcome, logging only the transitions.
    fn set_healthy(&self, healthy: bool, error: Option<&ControlPlaneError>) {
        let changed = self
            .healthy
            .send_if_modified(|h| std::mem::replace(h, healthy) != healthy);
        match (changed, healthy, error) {
            (true, false, Some(e)) => {
                tracing::error!(error = %e, "lost the store: reporting NOT_SERVING and pushing nothing until it is back")
            }
            (true, true, _) => tracing::info!("the store answers again; serving"),
            _ => {}
        }
    }

    /// Reloads from the store if a peer committed; returns whether a new snapshot was published.
    pub async fn refresh(&self) -> Result<bool, ControlPlaneError> {
        let _guard = self.write_lock.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<bool, ControlPlaneError> {
        let (version, epoch) = self.store.head().await?;
        let known = self.snapshot();
        if version == known.version && epoch == known.epoch {
            return Ok(false);
        }
        let fresh = load(self.store.as_ref(), &self.key).await?;
        tracing::info!(
            version = fresh.version,
            "picked up a commit made by another control plane"
        );
        self.current.send_replace(Arc::new(fresh));
        Ok(true)
    }

    /// Applies `mutate` to a copy of the current config, validates the whole result, commits it and
    /// publishes the new snapshot. `expected_version` (non-zero) makes it a compare-and-swap.
    pub(crate) async fn write<F>(
        &self,
        expected_version: u64,
        mutate: F,
    ) -> Result<u64, ControlPlaneError>
    where
        F: Fn(&mut Snapshot) -> Result<Vec<Change>, ControlPlaneError>,
    {
        let span = self.traces.internal("config commit");
        let _guard = self.write_lock.lock().await;
        for _ in 0..WRITE_RETRIES {
            let base = self.snapshot();
            if expected_version != 0 && expected_version != base.version {
                return Err(ControlPlaneError::Stale {
                    expected: expected_version,
                    current: base.version,
                });
            }
            let mut candidate = Snapshot::clone(&base);
            let changes = mutate(&mut candidate)?;
            validate_snapshot(&candidate)?;
            match self.store.commit(base.version, changes).await {
                Ok(version) => {
                    candidate.version = version;
                    candidate.content_hash = content_hash(&candidate);
                    tracing::info!(version, hash = %candidate.content_hash, "committed a new configuration");
                    if let Some(s) = &span {
                        s.set(opentelemetry::KeyValue::new(
                            "tokenrouter.snapshot.version",
                            version as i64,
                        ));
                    }
                    self.current.send_replace(Arc::new(candidate));
                    return Ok(version);
                }
                Err(StoreError::Conflict { .. }) => {
                    self.refresh_locked().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControlPlaneError::Contended)
    }

    /// Creates a resource; fails if one of that kind and name exists.
    pub async fn create<R: Resource>(
        &self,
        item: R,
        expected_version: u64,
    ) -> Result<u64, ControlPlaneError> {
        let item = item.normalized()?;
        self.write(expected_version, |s| {
            if R::list(s).iter().any(|r| r.name() == item.name()) {
                return Err(ControlPlaneError::AlreadyExists {
                    kind: R::KIND,
                    name: item.name().into(),
                });
            }
            insert_sorted(R::list_mut(s), item.clone());
            Ok(vec![Change::Put(item.to_row(&self.key))])
        })
        .await
    }

    /// Replaces a resource; fails if none of that kind and name exists.
    pub async fn update<R: Resource>(
        &self,
        item: R,
        expected_version: u64,
    ) -> Result<u64, ControlPlaneError> {
        let item = item.normalized()?;
        self.write(expected_version, |s| {
            let slot = R::list_mut(s).iter_mut().find(|r| r.name() == item.name());
            let slot = slot.ok_or_else(|| ControlPlaneError::NotFound {
                kind: R::KIND,
                name: item.name().into(),
            })?;
            *slot = item.clone();
            Ok(vec![Change::Put(item.to_row(&self.key))])
        })
        .await
    }

    /// Deletes a resource; fails if it does not exist or something still refers to it.
    pub async fn delete<R: Resource>(
        &self,
        name: &str,
        expected_version: u64,
    ) -> Result<u64, ControlPlaneError> {
        self.write(expected_version, |s| {
            let list = R::list_mut(s);
            let before = list.len();
            list.retain(|r| r.name() != name);
            if list.len() == before {
                return Err(ControlPlaneError::NotFound {
                    kind: R::KIND,
                    name: name.into(),
                });
            }
            Ok(vec![Change::Delete {
                kind: R::KIND.into(),
                name: name.into(),
            }])
        })
        .await
    }

    /// The store (the dashboard reads usage from it directly).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Stores finished-request records reported by a data plane.
    pub async fn record_usage(
        &self,
        records: Arc<[tokenrouter_proto::v1::UsageRecord]>,
    ) -> Result<(), ControlPlaneError> {
        if records.is_empty() {
            return Ok(());
        }
        Ok(self.store.record_usage(records).await?)
    }

    /// Summarises stored usage.
    pub async fn usage(
        &self,
        query: tokenrouter_proto::v1::UsageQuery,
    ) -> Result<tokenrouter_proto::v1::UsageReport, ControlPlaneError> {
        Ok(self.store.usage(query).await?)
    }

    /// Creates the resource unless one with its name exists; returns whether it created it.
    pub async fn ensure<R: Resource>(&self, item: R) -> Result<bool, ControlPlaneError> {
        match self.create(item, 0).await {
            Ok(_) => Ok(true),
            Err(ControlPlaneError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn insert_sorted<R: Resource>(list: &mut Vec<R>, item: R) {
    let at = list.partition_point(|r| r.name() < item.name());
    list.insert(at, item);
}

async fn load(store: &dyn Store, key: &MasterKey) -> Result<Snapshot, ControlPlaneError> {
    let stored = store.load().await?;
    let mut snapshot = snapshot_from_rows(&stored.rows, key)?;
    snapshot.version = stored.version;
    snapshot.epoch = stored.epoch;
    snapshot.content_hash = content_hash(&snapshot);
    Ok(snapshot)
}

/// Notices commits made by other control planes sharing the store (at once when the store
/// announces them, else by polling) and probes the store's health; ends when the plane is dropped.
async fn poll_store(cp: Weak<ControlPlane>) {
    let Some(mut commits) = cp.upgrade().and_then(|cp| cp.store.commits()) else {
        return poll_only(cp).await;
    };
    let mut interval = tokio::time::interval(SAFETY_POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = commits.changed() => if changed.is_err() { return poll_only(cp).await },
        }
        let Some(cp) = cp.upgrade() else { return };
        probe(&cp).await;
    }
}

/// Keeps the shared data-plane table current (and the count of data planes on every copy, which
/// the limiter's local shares divide by); ends when the plane is dropped.
async fn sync_data_planes(cp: Weak<ControlPlane>) {
    let mut interval = tokio::time::interval(DATA_PLANE_SYNC);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(cp) = cp.upgrade() else { return };
        cp.save_data_planes().await;
        cp.list_data_planes().await;
    }
}

async fn poll_only(cp: Weak<ControlPlane>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(cp) = cp.upgrade() else { return };
        probe(&cp).await;
    }
}

async fn probe(cp: &ControlPlane) {
    match cp.refresh().await {
        Ok(_) => cp.set_healthy(true, None),
        Err(e) => {
            if *cp.healthy.borrow() {
                tracing::warn!(error = %e, "cannot read the store; serving the last snapshot");
            }
            cp.set_healthy(false, Some(&e));
        }
    }
}
