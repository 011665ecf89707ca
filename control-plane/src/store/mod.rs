//! The store: one trait, two real backends (embedded SQLite, PostgreSQL for several control planes).
//!
//! The store keeps resources as opaque encoded rows keyed by (kind, name) plus one version counter.
//! A commit applies a batch of changes only if the counter still equals the caller's base version,
//! which makes every write a compare-and-swap even across control-plane copies.

pub mod bodies;
pub mod dashboard;
mod data_planes_sql;
mod postgres;
mod rollup;
pub mod rollup_sql;
mod sqlite;
mod sqlite_dashboard;
pub(crate) mod usage_sql;
pub mod users;

use futures::future::BoxFuture;
use tokenrouter_proto::v1::{UsageQuery, UsageRecord, UsageReport};

pub use postgres::{PostgresStore, test_url as postgres_test_url};
pub use sqlite::SqliteStore;

/// One stored resource: its kind (`provider`, `credential`, ...), unique name and encoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: String,
    pub name: String,
    pub body: Vec<u8>,
}

/// One change of a commit.
#[derive(Debug, Clone)]
pub enum Change {
    Put(Row),
    Delete { kind: String, name: String },
}

/// Everything the store holds at one version.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub version: u64,
    pub epoch: String,
    pub rows: Vec<Row>,
}

/// A connected data plane whose copy has not refreshed it for this long is shown disconnected
/// (that copy stopped; the data plane is reconnecting elsewhere).
pub const STALE_MS: i64 = 10_000;

/// One copy's record of a data plane, as the shared table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneRow {
    pub node_id: String,
    /// The instance id of the copy that wrote it.
    pub owner: String,
    pub connected: bool,
    pub seen_ms: i64,
    /// The encoded `DataPlaneStatus`.
    pub body: Vec<u8>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer committed first; the store is now at `current`.
    #[error("the store moved on to version {current}")]
    Conflict { current: u64 },
    #[error("store backend error: {0}")]
    Backend(String),
    /// The database has no room left (disk full, or SQLite's size cap reached): nothing was written.
    #[error("the store is full, nothing was written ({0}); free space on its disk")]
    Full(String),
    /// The database accepts no writes (read-only file or mount, or a read-only replica).
    #[error("the store is read-only, nothing was written ({0})")]
    ReadOnly(String),
    /// The caller asked for something the store cannot do (e.g. an unknown grouping).
    #[error("{0}")]
    Invalid(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
            Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => StoreError::Full(e.to_string()),
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                StoreError::ReadOnly(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// A durable, versioned home for the configuration.
pub trait Store: Send + Sync + 'static {
    /// Every row at the current version.
    fn load(&self) -> BoxFuture<'_, Result<Stored, StoreError>>;
    /// The current version and epoch (cheap; polled to notice other control planes' commits).
    fn head(&self) -> BoxFuture<'_, Result<(u64, String), StoreError>>;
    /// Applies `changes` atomically if the store is at `base_version`; returns the new version.
    fn commit(
        &self,
        base_version: u64,
        changes: Vec<Change>,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Appends finished-request records.
    fn record_usage(
        &self,
        records: std::sync::Arc<[UsageRecord]>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Summarises usage over a time range.
    fn usage(&self, query: UsageQuery) -> BoxFuture<'_, Result<UsageReport, StoreError>>;
    /// Rollup sums for the dashboard's charts and tables.
    fn rollups(
        &self,
        query: dashboard::RollupQuery,
    ) -> BoxFuture<'_, Result<Vec<dashboard::RollupRow>, StoreError>>;
    /// A page of the request log, newest first.
    fn usage_page(
        &self,
        query: dashboard::LogQuery,
    ) -> BoxFuture<'_, Result<Vec<UsageRecord>, StoreError>>;
    /// One record by its record id.
    fn usage_record(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<UsageRecord>, StoreError>>;
    /// Deletes at most [`dashboard::PRUNE_BATCH`] records older than `records_before`, as many
    /// logged bodies older than `bodies_before` and as many rollup rows of each
    /// `(step, older than)`; how many rows went.
    fn prune_usage(
        &self,
        records_before: i64,
        bodies_before: i64,
        rollups_before: Vec<(&'static str, i64)>,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// The logged request and response bodies of one record, if they were kept.
    fn usage_bodies(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StoreError>>;
    /// A short description for logs and `/status` (never includes passwords).
    fn describe(&self) -> String;
    /// Records this copy's view of some data planes (see [`DataPlaneRow`]).
    fn save_data_planes(&self, rows: Vec<DataPlaneRow>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Every data plane any copy recorded.
    fn data_planes(&self) -> BoxFuture<'_, Result<Vec<DataPlaneRow>, StoreError>>;
    /// Every dashboard user, by name.
    fn dashboard_users(&self) -> BoxFuture<'_, Result<Vec<users::UserRow>, StoreError>>;
    /// One dashboard user.
    fn dashboard_user(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<Option<users::UserRow>, StoreError>>;
    /// Adds a user, or with `replace` updates an existing one's role and hash; `false` when the
    /// name was taken and `replace` was not asked for.
    fn put_dashboard_user(
        &self,
        user: users::UserRow,
        replace: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Removes a user; `false` when there was none.
    fn delete_dashboard_user(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Versions other writers announce as they commit (PostgreSQL `NOTIFY`); `None` when the
    /// backend cannot announce, and peers' commits are found by polling [`Store::head`] alone.
    fn commits(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// Opens the store a URL names: `sqlite://PATH` (or a bare path) or `postgres://...`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    }
}

/// A PostgreSQL store in a fresh schema of the test database (`TOKENROUTER_TEST_POSTGRES_URL`),
/// for tests beyond the store's own; `None` without one (outside CI).
#[cfg(test)]
pub(crate) async fn test_postgres() -> Option<std::sync::Arc<dyn Store>> {
    let url = postgres::test_url()?;
    let schema = format!("tr_test_{}", uuid::Uuid::new_v4().simple());
    let store = postgres::PostgresStore::connect_in_schema(&url, Some(&schema))
        .await
        .ok()?;
    Some(std::sync::Arc::new(store))
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every backend must show; each backend's tests call these.
    use super::*;

    fn row(kind: &str, name: &str, body: &[u8]) -> Row {
        Row {
            kind: kind.into(),
            name: name.into(),
            body: body.to_vec(),
        }
    }

    pub async fn starts_empty_and_commits_in_order(store: &dyn Store) {
        let first = store.load().await.unwrap();
        assert_eq!(first.version, 0);
        assert!(first.rows.is_empty());
        assert!(!first.epoch.is_empty());
        let v1 = store
            .commit(0, vec![Change::Put(row("provider", "a", b"1"))])
            .await
            .unwrap();
        assert_eq!(v1, 1);
        let v2 = store
            .commit(
                1,
                vec![
                    Change::Put(row("provider", "a", b"2")),
                    Change::Put(row("provider", "b", b"3")),
                ],
            )
            .await
            .unwrap();
        assert_eq!(v2, 2);
        let now = store.load().await.unwrap();
        assert_eq!(now.version, 2);
        assert_eq!(now.epoch, first.epoch);
        assert_eq!(
            now.rows,
            vec![row("provider", "a", b"2"), row("provider", "b", b"3")]
        );
        let v3 = store
            .commit(
                2,
                vec![Change::Delete {
                    kind: "provider".into(),
                    name: "a".into(),
                }],
            )
            .await
            .unwrap();
        assert_eq!(v3, 3);
        assert_eq!(
            store.load().await.unwrap().rows,
            vec![row("provider", "b", b"3")]
        );
        assert_eq!(store.head().await.unwrap().0, 3);
    }

    pub async fn records_and_summarises_usage(store: &dyn Store) {
        use tokenrouter_proto::v1::{UsageQuery, UsageRecord};
        let record = |key: &str, model: &str, status: u32, cost: f64, ms: i64| UsageRecord {
            request_id: format!("r{ms}"),
            unix_ms: ms,
            api_key: key.into(),
            provider: "p".into(),
            model: model.into(),
            status,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: cost,
            latency_ms: 100,
            completed: true,
            metadata_json: "{\"task\":\"t\"}".into(),
            ..Default::default()
        };
        store
            .record_usage(
                vec![
                    record("a", "m1", 200, 0.5, 1000),
                    record("a", "m2", 500, 0.0, 2000),
                    record("b", "m1", 200, 1.5, 3000),
                ]
                .into(),
            )
            .await
            .unwrap();
        let all = store
            .usage(UsageQuery {
                group_by: "api_key".into(),
                recent: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.rows.len(), 2);
        assert_eq!(all.rows[0].group, "b", "most expensive first");
        assert_eq!(
            (
                all.rows[1].requests,
                all.rows[1].failures,
                all.rows[1].prompt_tokens
            ),
            (2, 1, 20)
        );
        assert!((all.rows[1].cost_usd - 0.5).abs() < 1e-9);
        assert_eq!(all.recent.len(), 2);
        assert_eq!(all.recent[0].request_id, "r3000");
        assert_eq!(all.recent[1].metadata_json, "{\"task\":\"t\"}");
        let window = store
            .usage(UsageQuery {
                since_unix_ms: 1500,
                until_unix_ms: 2500,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(window.rows[0].requests, 1);
        assert!(
            store
                .usage(UsageQuery {
                    group_by: "1; DROP TABLE x".into(),
                    ..Default::default()
                })
                .await
                .is_err()
        );
    }

    pub async fn filters_usage_by_key(store: &dyn Store) {
        use tokenrouter_proto::v1::{UsageQuery, UsageRecord};
        let record = |key: &str, user: &str, model: &str, cost: f64, ms: i64| UsageRecord {
            request_id: format!("{key}{ms}"),
            unix_ms: ms,
            api_key: key.into(),
            requested_model: model.into(),
            user_id: user.into(),
            status: 200,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: cost,
            completed: true,
            ..Default::default()
        };
        let records = vec![
            record("team-a", "u1", "gpt-4o", 1.0, 1000),
            record("team-a", "u2", "gpt-4o-mini", 0.25, 2000),
            record("team-a", "u1", "claude-x", 0.5, 3000),
            record("team-b", "u1", "gpt-4o", 8.0, 2500),
            // A name that would match as a pattern or as SQL must match only itself.
            record("team-%", "u1", "gpt-4o", 16.0, 2600),
        ];
        store.record_usage(records.into()).await.unwrap();
        let query = |key: &str, group: &str, since: i64| UsageQuery {
            api_key: key.into(),
            group_by: group.into(),
            since_unix_ms: since,
            recent: 10,
            ..Default::default()
        };
        let total = store.usage(query("team-a", "", 0)).await.unwrap();
        assert_eq!(total.rows.len(), 1);
        assert_eq!(
            (total.rows[0].requests, total.rows[0].prompt_tokens),
            (3, 30)
        );
        assert!((total.rows[0].cost_usd - 1.75).abs() < 1e-9);
        assert_eq!(total.recent.len(), 3);
        assert!(total.recent.iter().all(|r| r.api_key == "team-a"));

        let users = store.usage(query("team-a", "user_id", 1500)).await.unwrap();
        let users: Vec<_> = users
            .rows
            .iter()
            .map(|r| (r.group.as_str(), r.requests))
            .collect();
        assert_eq!(
            users,
            [("u1", 1), ("u2", 1)],
            "since 1500, most expensive first"
        );

        let models = store
            .usage(query("team-b", "requested_model", 0))
            .await
            .unwrap();
        assert_eq!(models.rows.len(), 1);
        assert_eq!(models.rows[0].group, "gpt-4o");
        let odd = store.usage(query("team-%", "", 0)).await.unwrap();
        assert_eq!(odd.rows[0].requests, 1);
        let none = store.usage(query("team-c", "", 0)).await.unwrap();
        assert!(none.rows.is_empty() && none.recent.is_empty());
        let every = store.usage(query("", "api_key", 0)).await.unwrap();
        assert_eq!(every.rows.len(), 3);
        assert_eq!(every.recent.len(), 5);
    }

    /// A batch delivered twice (a lost ACK, a replayed spool) is stored once; records without an
    /// id (older data planes) are all kept.
    pub async fn ignores_a_redelivered_record(store: &dyn Store) {
        use tokenrouter_proto::v1::{UsageQuery, UsageRecord};
        let record = |id: &str, cost: f64| UsageRecord {
            request_id: "same-client-request-id".into(),
            record_id: id.into(),
            api_key: "k".into(),
            unix_ms: 1000,
            status: 200,
            cost_usd: cost,
            completed: true,
            ..Default::default()
        };
        let batch: Vec<_> = (0..500).map(|i| record(&format!("rec{i}"), 0.5)).collect();
        store.record_usage(batch.clone().into()).await.unwrap();
        store.record_usage(batch.into()).await.unwrap();
        let mut mixed = vec![record("rec7", 0.5), record("new", 1.0), record("new", 1.0)];
        mixed.extend([record("", 2.0), record("", 2.0)]);
        store.record_usage(mixed.into()).await.unwrap();
        let report = store.usage(UsageQuery::default()).await.unwrap();
        assert_eq!(report.rows[0].requests, 503);
        assert!((report.rows[0].cost_usd - 255.0).abs() < 1e-9);
    }

    /// Two copies record the same data plane: the one it is connected to wins, and a late
    /// "disconnected" from the copy it left does not hide it.
    pub async fn shares_the_data_plane_table(store: &dyn Store) {
        let row = |owner: &str, connected: bool, seen_ms: i64| DataPlaneRow {
            node_id: "dp1".into(),
            owner: owner.into(),
            connected,
            seen_ms,
            body: owner.as_bytes().to_vec(),
        };
        store
            .save_data_planes(vec![row("cp-a", true, 1000)])
            .await
            .unwrap();
        store
            .save_data_planes(vec![row("cp-b", true, 2000)])
            .await
            .unwrap();
        store
            .save_data_planes(vec![row("cp-a", false, 2500)])
            .await
            .unwrap();
        assert_eq!(
            store.data_planes().await.unwrap(),
            vec![row("cp-b", true, 2000)]
        );
        store
            .save_data_planes(vec![row("cp-b", false, 3000)])
            .await
            .unwrap();
        assert_eq!(
            store.data_planes().await.unwrap(),
            vec![row("cp-b", false, 3000)]
        );
        // A copy that stopped refreshing is overruled once its row is stale.
        store
            .save_data_planes(vec![row("cp-a", true, 4000)])
            .await
            .unwrap();
        store
            .save_data_planes(vec![row("cp-b", false, 4000 + STALE_MS + 1)])
            .await
            .unwrap();
        assert_eq!(store.data_planes().await.unwrap()[0].owner, "cp-b");
    }

    pub async fn refuses_a_stale_base(store: &dyn Store) {
        store
            .commit(0, vec![Change::Put(row("provider", "a", b"1"))])
            .await
            .unwrap();
        let err = store
            .commit(0, vec![Change::Put(row("provider", "x", b"1"))])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { current: 1 }),
            "{err:?}"
        );
        assert_eq!(store.load().await.unwrap().rows.len(), 1);
    }
}
