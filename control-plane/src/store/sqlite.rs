//! The embedded default store: one SQLite file, created and migrated on first open.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use tokenrouter_proto::v1::{UsageQuery, UsageRecord, UsageReport, UsageRow};

use super::{
    Change, DataPlaneRow, Row, Store, StoreError, Stored, bodies, dashboard, data_planes_sql,
    rollup_sql, sqlite_dashboard, usage_sql, users,
};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, epoch TEXT NOT NULL);
     CREATE TABLE resources (kind TEXT NOT NULL, name TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (kind, name));",
    "USAGE",
    usage_sql::KEY_INDEX,
    usage_sql::RECORD_ID,
    "DATA_PLANES",
    usage_sql::FIREWALL,
    "ROLLUP",
    usage_sql::USER_INDEX,
    usage_sql::ROUTING,
    usage_sql::DASHBOARD_USERS,
    bodies::CREATE,
];

/// SQLite-backed store. Calls run on the blocking pool; one connection serialises them.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        }
        let owned = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            create_owner_only(&owned)?;
            let mut conn = Connection::open(&owned)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            migrate(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path: path.display().to_string(),
        })
    }

    /// Caps the database file at about `max_bytes` (never below its current size; `None`:
    /// SQLite's own limit) and, with `read_only`, refuses every write: what a full disk or a
    /// read-only mount does to the store, without needing either. A write that needs a page the
    /// cap forbids fails with [`StoreError::Full`], any write under `read_only` with
    /// [`StoreError::ReadOnly`]; both change nothing, and reads go on. Lasts until called again
    /// or the store is reopened. (The failure tests use it; SQLite reports a real full disk with
    /// the same error code, which maps the same way.)
    pub async fn constrain(
        &self,
        max_bytes: Option<u64>,
        read_only: bool,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages =
                max_bytes.map_or(i64::from(u32::MAX - 1), |b| (b as i64 / page.max(1)).max(1));
            // SQLite never sets it below the current page count: a cap under the file's size
            // means "no more growth".
            let _set: i64 =
                conn.pragma_update_and_check(None, "max_page_count", pages, |r| r.get(0))?;
            conn.pragma_update(None, "query_only", read_only)?;
            Ok(())
        })
        .await
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, StoreError>> {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = conn
                    .lock()
                    .map_err(|_| StoreError::Backend("store lock poisoned".into()))?;
                f(&mut guard)
            })
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
        })
    }
}

/// Creates the database file readable and writable by its owner only (it holds API key hashes
/// and sealed credentials); SQLite gives its `-wal` and `-shm` files the same permissions. An
/// existing file is left as it is.
fn create_owner_only(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        if *sql == "USAGE" {
            tx.execute_batch(&usage_sql::create_table(
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "REAL",
            ))?;
        } else if *sql == "DATA_PLANES" {
            tx.execute_batch(&data_planes_sql::create_table("BLOB"))?;
        } else if *sql == "ROLLUP" {
            // The records stored before rollups existed are rolled up once, here.
            tx.execute_batch(&rollup_sql::create_table("REAL"))?;
            for add in rollup_sql::add("1 = 1") {
                tx.execute(&add, [])?;
            }
        } else {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    let has_meta: Option<i64> = tx
        .query_row("SELECT version FROM meta WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    if has_meta.is_none() {
        tx.execute(
            "INSERT INTO meta (id, version, epoch) VALUES (1, 0, ?1)",
            params![uuid::Uuid::new_v4().to_string()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn head(conn: &Connection) -> Result<(u64, String), StoreError> {
    Ok(
        conn.query_row("SELECT version, epoch FROM meta WHERE id = 1", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?,
    )
}

impl Store for SqliteStore {
    fn load(&self) -> BoxFuture<'_, Result<Stored, StoreError>> {
        self.run(|conn| {
            let tx = conn.transaction()?;
            let (version, epoch) = head(&tx)?;
            let rows = {
                let mut stmt =
                    tx.prepare("SELECT kind, name, body FROM resources ORDER BY kind, name")?;
                stmt.query_map([], |r| {
                    Ok(Row {
                        kind: r.get(0)?,
                        name: r.get(1)?,
                        body: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?
            };
            tx.commit()?;
            Ok(Stored {
                version,
                epoch,
                rows,
            })
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<(u64, String), StoreError>> {
        self.run(|conn| head(conn))
    }

    fn commit(
        &self,
        base_version: u64,
        changes: Vec<Change>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (current, _) = head(&tx)?;
            if current != base_version {
                return Err(StoreError::Conflict { current });
            }
            for change in changes {
                match change {
                    Change::Put(row) => tx.execute(
                        "INSERT INTO resources (kind, name, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body",
                        params![row.kind, row.name, row.body],
                    )?,
                    Change::Delete { kind, name } => tx.execute(
                        "DELETE FROM resources WHERE kind = ?1 AND name = ?2",
                        params![kind, name],
                    )?,
                };
            }
            let next = current + 1;
            tx.execute(
                "UPDATE meta SET version = ?1 WHERE id = 1",
                params![next as i64],
            )?;
            tx.commit()?;
            Ok(next)
        })
    }

    fn record_usage(&self, records: Arc<[UsageRecord]>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            // Only the records really stored (not one already held) are rolled up.
            let mut stored = Vec::with_capacity(records.len());
            {
                let mut stmt = tx.prepare_cached(&usage_sql::insert(|i| format!("?{i}")))?;
                for r in records.iter() {
                    let text = usage_sql::bounded(r);
                    let added = stmt.execute(params![
                        text.request_id,
                        r.unix_ms,
                        text.api_key,
                        text.provider,
                        text.model,
                        text.requested_model,
                        r.status,
                        r.prompt_tokens as i64,
                        r.completion_tokens as i64,
                        r.cached_tokens as i64,
                        r.reasoning_tokens as i64,
                        r.cost_usd,
                        r.latency_ms,
                        r.ttft_ms,
                        r.stream,
                        r.completed,
                        text.routing_mode,
                        r.attempts,
                        text.user_id,
                        text.metadata_json,
                        usage_sql::record_id(r),
                        text.firewall,
                        text.routing,
                        text.failed_attempts,
                    ])?;
                    if added > 0 {
                        stored.push(r);
                    }
                }
            }
            {
                let mut stmt = tx.prepare_cached(&bodies::insert(|i| format!("?{i}")))?;
                for r in stored.iter().filter(|r| bodies::has_bodies(r)) {
                    stmt.execute(params![
                        r.record_id,
                        r.unix_ms,
                        bodies::capped(&r.request_body),
                        bodies::capped(&r.response_body)
                    ])?;
                }
            }
            sqlite_dashboard::add_rollups(&tx, stored)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn save_data_planes(&self, rows: Vec<DataPlaneRow>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(&data_planes_sql::upsert(|i| format!("?{i}")))?;
                for r in &rows {
                    stmt.execute(params![r.node_id, r.owner, r.connected, r.seen_ms, r.body])?;
                }
            }
            tx.execute_batch(&data_planes_sql::prune("-1"))?;
            tx.commit()?;
            Ok(())
        })
    }

    fn data_planes(&self) -> BoxFuture<'_, Result<Vec<DataPlaneRow>, StoreError>> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(data_planes_sql::SELECT)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(DataPlaneRow {
                        node_id: r.get(0)?,
                        owner: r.get(1)?,
                        connected: r.get(2)?,
                        seen_ms: r.get(3)?,
                        body: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn dashboard_users(&self) -> BoxFuture<'_, Result<Vec<users::UserRow>, StoreError>> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached(&users::select_all())?;
            let rows = stmt.query_map([], user_of)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn dashboard_user(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<Option<users::UserRow>, StoreError>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&users::select_one(|i| format!("?{i}")))?;
            Ok(stmt.query_map([name], user_of)?.next().transpose()?)
        })
    }

    fn put_dashboard_user(
        &self,
        u: users::UserRow,
        replace: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.run(move |conn| {
            let sql = users::insert(replace, |i| format!("?{i}"));
            let changed = conn.execute(
                &sql,
                params![u.name, u.role, u.password_hash, u.created_ms, u.updated_ms],
            )?;
            Ok(changed > 0)
        })
    }

    fn delete_dashboard_user(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.run(move |conn| Ok(conn.execute(&users::delete(|i| format!("?{i}")), [name])? > 0))
    }

    fn usage(&self, query: UsageQuery) -> BoxFuture<'_, Result<UsageReport, StoreError>> {
        self.run(move |conn| {
            let group = usage_sql::group_expr(&query.group_by)?;
            let (since, until) = usage_sql::bounds(&query);
            let keyed = usage_sql::keyed(&query);
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&since, &until, &query.api_key];
            args.truncate(usage_sql::filter_params(keyed));
            let sql = usage_sql::summary(group, keyed, |i| format!("?{i}"));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(args.as_slice(), |r| {
                    Ok(UsageRow {
                        group: r.get(0)?,
                        requests: r.get::<_, i64>(1)? as u64,
                        failures: r.get::<_, i64>(2)? as u64,
                        prompt_tokens: r.get::<_, i64>(3)? as u64,
                        completion_tokens: r.get::<_, i64>(4)? as u64,
                        cached_tokens: r.get::<_, i64>(5)? as u64,
                        cost_usd: r.get(6)?,
                        avg_latency_ms: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let limit = i64::from(query.recent.min(usage_sql::MAX_RECENT));
            args.push(&limit);
            let mut stmt = conn.prepare(&usage_sql::recent(keyed, |i| format!("?{i}")))?;
            let recent = stmt
                .query_map(args.as_slice(), sqlite_dashboard::record_of)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(UsageReport { rows, recent })
        })
    }

    fn rollups(
        &self,
        query: dashboard::RollupQuery,
    ) -> BoxFuture<'_, Result<Vec<dashboard::RollupRow>, StoreError>> {
        self.run(move |conn| sqlite_dashboard::rollups(conn, &query))
    }

    fn usage_page(
        &self,
        query: dashboard::LogQuery,
    ) -> BoxFuture<'_, Result<Vec<UsageRecord>, StoreError>> {
        self.run(move |conn| sqlite_dashboard::page(conn, &query))
    }

    fn usage_record(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<UsageRecord>, StoreError>> {
        self.run(move |conn| sqlite_dashboard::one(conn, &record_id))
    }

    fn prune_usage(
        &self,
        records_before: i64,
        bodies_before: i64,
        rollups_before: Vec<(&'static str, i64)>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.run(move |conn| {
            let bodies = conn.execute(
                &bodies::prune(|i| format!("?{i}")),
                params![bodies_before, dashboard::PRUNE_BATCH],
            )? as u64;
            Ok(bodies + sqlite_dashboard::prune(conn, records_before, &rollups_before)?)
        })
    }

    fn usage_bodies(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StoreError>> {
        self.run(move |conn| {
            Ok(conn
                .query_row(&bodies::select(|i| format!("?{i}")), [record_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?)
        })
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }
}

/// A dashboard user from a row of [`users::select_all`].
fn user_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<users::UserRow> {
    Ok(users::UserRow {
        name: r.get(0)?,
        role: r.get(1)?,
        password_hash: r.get(2)?,
        created_ms: r.get(3)?,
        updated_ms: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("tr-store-{}/config.db", uuid::Uuid::new_v4()))
    }

    #[tokio::test]
    async fn honours_the_store_contract() {
        let path = temp_path();
        super::super::contract::starts_empty_and_commits_in_order(
            &SqliteStore::open(&path).await.unwrap(),
        )
        .await;
        super::super::contract::refuses_a_stale_base(
            &SqliteStore::open(&temp_path()).await.unwrap(),
        )
        .await;
        let usage = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::contract::records_and_summarises_usage(&usage).await;
        let usage = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::contract::filters_usage_by_key(&usage).await;
        let usage = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::contract::ignores_a_redelivered_record(&usage).await;
        let planes = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::contract::shares_the_data_plane_table(&planes).await;
        let usage = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::dashboard::contract::rolls_up_and_pages_usage(&usage).await;
        let users = SqliteStore::open(&temp_path()).await.unwrap();
        super::super::users::contract::keeps_users_apart_from_the_configuration(&users).await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn creates_its_files_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path();
        let store = SqliteStore::open(&path).await.unwrap();
        store.commit(0, vec![]).await.unwrap();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        for file in [path.clone(), std::path::PathBuf::from(wal)] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[tokio::test]
    async fn keeps_version_and_epoch_across_reopen() {
        let path = temp_path();
        let store = SqliteStore::open(&path).await.unwrap();
        let epoch = store.head().await.unwrap().1;
        store.commit(0, vec![]).await.unwrap();
        drop(store);
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(again.head().await.unwrap(), (1, epoch));
    }

    fn usage(n: usize, tag: &str) -> Arc<[UsageRecord]> {
        (0..n)
            .map(|i| UsageRecord {
                request_id: format!("{tag}-{i}"),
                record_id: format!("{tag}-{i}"),
                unix_ms: 1_000 + i as i64,
                api_key: "k".into(),
                provider: "p".into(),
                model: "m".into(),
                status: 200,
                metadata_json: "x".repeat(512),
                ..Default::default()
            })
            .collect()
    }

    fn put(name: &str, bytes: usize) -> Change {
        Change::Put(Row {
            kind: "provider".into(),
            name: name.into(),
            body: vec![7; bytes],
        })
    }

    /// A full disk: every write fails as `Full` and changes nothing; reads go on; once there is
    /// room again writes resume and the file is intact.
    #[tokio::test]
    async fn a_full_store_refuses_writes_keeps_reads_and_recovers() {
        let store = SqliteStore::open(&temp_path()).await.unwrap();
        let v1 = store.commit(0, vec![put("a", 10)]).await.unwrap();
        store.record_usage(usage(10, "before")).await.unwrap();
        store.constrain(Some(0), false).await.unwrap();
        let err = store
            .commit(v1, vec![put("b", 64 * 1024)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err}");
        let err = store
            .record_usage(usage(2_000, "during"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err}");
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.version, v1, "nothing half-written");
        assert_eq!(loaded.rows.len(), 1);
        let report = store
            .usage(UsageQuery {
                group_by: "provider".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(report.rows[0].requests, 10, "no record of the failed batch");

        store.constrain(None, false).await.unwrap();
        assert_eq!(
            store.commit(v1, vec![put("b", 64 * 1024)]).await.unwrap(),
            v1 + 1
        );
        store.record_usage(usage(2_000, "during")).await.unwrap();
        let check: String = store
            .run(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }

    /// A read-only file or mount: writes fail as `ReadOnly`, reads go on.
    #[tokio::test]
    async fn a_read_only_store_refuses_writes_and_keeps_reads() {
        let store = SqliteStore::open(&temp_path()).await.unwrap();
        let v1 = store.commit(0, vec![put("a", 10)]).await.unwrap();
        store.constrain(None, true).await.unwrap();
        let err = store.commit(v1, vec![put("b", 10)]).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
        let err = store.record_usage(usage(1, "ro")).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err}");
        assert_eq!(store.head().await.unwrap().0, v1);
        store.constrain(None, false).await.unwrap();
        assert_eq!(store.commit(v1, vec![put("b", 10)]).await.unwrap(), v1 + 1);
    }
}
