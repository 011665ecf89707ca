//! The store: one trait, two real backends (embedded SQLite, PostgreSQL for several control planes).
//!
//! The store keeps resources as opaque encoded rows keyed by (kind, name) plus one version counter.
//! A commit applies a batch of changes only if the counter still equals the caller's base version,
//! which makes every write a compare-and-swap even across control-plane copies.

mod postgres;
mod sqlite;

use futures::future::BoxFuture;

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

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer committed first; the store is now at `current`.
    #[error("the store moved on to version {current}")]
    Conflict { current: u64 },
    #[error("store backend error: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(e.to_string())
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
    /// A short description for logs and `/status` (never includes passwords).
    fn describe(&self) -> String;
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
