//! The PostgreSQL store, for several control-plane copies sharing one database: a connection
//! pool (`deadpool-postgres`) so usage batches and Admin calls run side by side, whole-batch usage
//! inserts (`columns`), and `LISTEN/NOTIFY` so every copy hears of a commit as it happens
//! (`listen`).

mod columns;
mod dashboard;
mod listen;
mod side;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

use tokenrouter_proto::v1::{UsageQuery, UsageRecord, UsageReport, UsageRow};

use super::{
    Change, DataPlaneRow, Row, Store, StoreError, Stored, bodies, data_planes_sql, rollup_sql,
    usage_sql, users,
};
use columns::Columns;
use listen::listen;

/// Schema migrations, applied in order; `tokenrouter_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE tokenrouter_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, epoch TEXT NOT NULL);
     CREATE TABLE tokenrouter_resources (kind TEXT NOT NULL, name TEXT NOT NULL, body BYTEA NOT NULL, PRIMARY KEY (kind, name));",
    "USAGE",
    usage_sql::KEY_INDEX,
    usage_sql::RECORD_ID,
    "DATA_PLANES",
    // The serial key cost a sequence step and an index entry per record (~22% of an insert); the
    // record id orders and identifies rows now.
    "ALTER TABLE tokenrouter_usage DROP COLUMN id",
    usage_sql::FIREWALL,
    "ROLLUP",
    usage_sql::USER_INDEX,
    usage_sql::ROUTING,
    usage_sql::DASHBOARD_USERS,
    bodies::CREATE,
];

/// Connections the pool opens at most (usage batches from many data planes run in parallel).
const POOL_SIZE: usize = 16;
/// How long a call waits to connect (or for a free pooled connection) before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// PostgreSQL-backed store over a pool of connections, each re-opened on demand after a failure.
pub struct PostgresStore {
    url: String,
    pool: Pool,
    /// The latest version another copy announced (`NOTIFY`), fed by the listening task.
    commits: watch::Receiver<u64>,
    channel: String,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects and migrates, using the connection's default schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_in_schema(url, None).await
    }

    /// Connects and migrates inside `schema` (created if missing); lets tests share one database.
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        if let Some(s) = schema
            && !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Backend(
                "schema names are lowercase letters, digits and '_'".into(),
            ));
        }
        let mut config: tokio_postgres::Config = url.parse()?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if let Some(schema) = schema {
            let (client, connection) = config.connect(NoTls).await?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            drop(client);
            let _ = driver.await;
            let options = match config.get_options() {
                Some(o) => format!("{o} -c search_path={schema}"),
                None => format!("-c search_path={schema}"),
            };
            config.options(&options);
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let channel = match schema {
            Some(s) => format!("tokenrouter_commits_{s}"),
            None => "tokenrouter_commits".to_string(),
        };
        {
            let mut client = pool.get().await?;
            migrate(&mut client).await?;
        }
        let (announce, commits) = watch::channel(0);
        let listener = tokio::spawn(listen(config, channel.clone(), announce));
        Ok(PostgresStore {
            url: url.to_string(),
            pool,
            commits,
            channel,
            listener,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(format!("postgres: {e}"))
    }
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // Serialise migrations between control planes starting at the same time.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7261626);
         CREATE TABLE IF NOT EXISTS tokenrouter_migrations (id INTEGER PRIMARY KEY)",
    )
    .await?;
    let done: i64 = tx
        .query_one("SELECT COUNT(*) FROM tokenrouter_migrations", &[])
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
        if *sql == "USAGE" {
            tx.batch_execute(&usage_sql::create_table(
                "id BIGSERIAL PRIMARY KEY",
                "DOUBLE PRECISION",
            ))
            .await?;
        } else if *sql == "DATA_PLANES" {
            tx.batch_execute(&data_planes_sql::create_table("BYTEA"))
                .await?;
        } else if *sql == "ROLLUP" {
            // The records stored before rollups existed are rolled up once, here.
            tx.batch_execute(&rollup_sql::create_table("DOUBLE PRECISION"))
                .await?;
            for add in rollup_sql::add("TRUE") {
                tx.execute(&add, &[]).await?;
            }
        } else {
            tx.batch_execute(sql).await?;
        }
        tx.execute(
            "INSERT INTO tokenrouter_migrations (id) VALUES ($1)",
            &[&((i + 1) as i32)],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO tokenrouter_meta (id, version, epoch) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING",
        &[&uuid::Uuid::new_v4().to_string()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn describe_url(url: &str) -> String {
    // Keep scheme, host and database; drop any user:password.
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let after_at = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            format!("{scheme}://{after_at}")
        }
        None => "postgres".into(),
    }
}

impl Store for PostgresStore {
    fn load(&self) -> BoxFuture<'_, Result<Stored, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .read_only(true)
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let meta = tx
                .query_one(
                    "SELECT version, epoch FROM tokenrouter_meta WHERE id = 1",
                    &[],
                )
                .await?;
            let rows = tx
                .query(
                    "SELECT kind, name, body FROM tokenrouter_resources ORDER BY kind, name",
                    &[],
                )
                .await?
                .into_iter()
                .map(|r| Row {
                    kind: r.get(0),
                    name: r.get(1),
                    body: r.get(2),
                })
                .collect();
            tx.commit().await?;
            Ok(Stored {
                version: meta.get::<_, i64>(0) as u64,
                epoch: meta.get(1),
                rows,
            })
        })
    }

    fn head(&self) -> BoxFuture<'_, Result<(u64, String), StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let meta = client
                .query_one(
                    "SELECT version, epoch FROM tokenrouter_meta WHERE id = 1",
                    &[],
                )
                .await?;
            Ok((meta.get::<_, i64>(0) as u64, meta.get(1)))
        })
    }

    fn commit(
        &self,
        base_version: u64,
        changes: Vec<Change>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let current: i64 = tx
                .query_one(
                    "SELECT version FROM tokenrouter_meta WHERE id = 1 FOR UPDATE",
                    &[],
                )
                .await?
                .get(0);
            if current as u64 != base_version {
                return Err(StoreError::Conflict {
                    current: current as u64,
                });
            }
            for change in changes {
                match change {
                    Change::Put(row) => {
                        tx.execute(
                            "INSERT INTO tokenrouter_resources (kind, name, body) VALUES ($1, $2, $3)
                             ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body",
                            &[&row.kind, &row.name, &row.body],
                        )
                        .await?
                    }
                    Change::Delete { kind, name } => {
                        tx.execute("DELETE FROM tokenrouter_resources WHERE kind = $1 AND name = $2", &[&kind, &name]).await?
                    }
                };
            }
            let next = current + 1;
            tx.execute(
                "UPDATE tokenrouter_meta SET version = $1 WHERE id = 1",
                &[&next],
            )
            .await?;
            // Delivered to every listening copy when (and only if) the transaction commits.
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&self.channel, &next.to_string()],
            )
            .await?;
            tx.commit().await?;
            Ok(next as u64)
        })
    }

    fn record_usage(
        &self,
        records: std::sync::Arc<[UsageRecord]>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let columns = Columns::of(&records);
            let params = columns.params();
            let plain = client
                .prepare_cached(&usage_sql::insert_arrays(&Columns::TYPES, false))
                .await?;
            let tx = client.transaction().await?;
            match tx.execute(&plain, &params).await {
                Ok(_) => {}
                // A redelivered batch (a lost ACK, a replayed spool): store what is new in it.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                    tx.rollback().await?;
                    let tx = client.transaction().await?;
                    let ignoring = tx
                        .prepare_cached(&format!(
                            "{} RETURNING record_id",
                            usage_sql::insert_arrays(&Columns::TYPES, true)
                        ))
                        .await?;
                    let new: std::collections::HashSet<String> = tx
                        .query(&ignoring, &params)
                        .await?
                        .iter()
                        .filter_map(|r| r.get::<_, Option<String>>(0))
                        .collect();
                    // A record without an id is always stored (NULLs never conflict).
                    let stored = records
                        .iter()
                        .filter(|r| usage_sql::record_id(r).is_none_or(|id| new.contains(id)));
                    dashboard::add_rollups(&tx, stored).await?;
                    side::add_bodies(&tx, &records).await?;
                    tx.commit().await?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            dashboard::add_rollups(&tx, records.iter()).await?;
            side::add_bodies(&tx, &records).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn usage(&self, query: UsageQuery) -> BoxFuture<'_, Result<UsageReport, StoreError>> {
        Box::pin(async move {
            let group = usage_sql::group_expr(&query.group_by)?;
            let (since, until) = usage_sql::bounds(&query);
            let keyed = usage_sql::keyed(&query);
            let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                vec![&since, &until, &query.api_key];
            args.truncate(usage_sql::filter_params(keyed));
            let client = self.client().await?;
            let rows = client
                .query(
                    &usage_sql::summary(group, keyed, |i| format!("${i}")),
                    &args,
                )
                .await?
                .into_iter()
                .map(|r| UsageRow {
                    group: r.get(0),
                    requests: r.get::<_, i64>(1) as u64,
                    failures: r.get::<_, i64>(2) as u64,
                    prompt_tokens: r.get::<_, i64>(3) as u64,
                    completion_tokens: r.get::<_, i64>(4) as u64,
                    cached_tokens: r.get::<_, i64>(5) as u64,
                    cost_usd: r.get(6),
                    avg_latency_ms: r.get(7),
                })
                .collect();
            let limit = i64::from(query.recent.min(usage_sql::MAX_RECENT));
            args.push(&limit);
            let recent = client
                .query(&usage_sql::recent(keyed, |i| format!("${i}")), &args)
                .await?
                .into_iter()
                .map(|r| dashboard::record_of(&r))
                .collect();
            Ok(UsageReport { rows, recent })
        })
    }

    fn rollups(
        &self,
        query: super::dashboard::RollupQuery,
    ) -> BoxFuture<'_, Result<Vec<super::dashboard::RollupRow>, StoreError>> {
        Box::pin(async move { dashboard::rollups(&self.client().await?, &query).await })
    }

    fn usage_page(
        &self,
        query: super::dashboard::LogQuery,
    ) -> BoxFuture<'_, Result<Vec<UsageRecord>, StoreError>> {
        Box::pin(async move { dashboard::page(&self.client().await?, &query).await })
    }

    fn usage_record(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<UsageRecord>, StoreError>> {
        Box::pin(async move { dashboard::one(&self.client().await?, &record_id).await })
    }

    fn prune_usage(
        &self,
        records_before: i64,
        bodies_before: i64,
        rollups_before: Vec<(&'static str, i64)>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let batch = i64::from(super::dashboard::PRUNE_BATCH);
            let bodies = client
                .execute(
                    &bodies::prune(|i| format!("${i}")),
                    &[&bodies_before, &batch],
                )
                .await?;
            Ok(bodies + dashboard::prune(&client, records_before, &rollups_before).await?)
        })
    }

    fn usage_bodies(
        &self,
        record_id: String,
    ) -> BoxFuture<'_, Result<Option<(String, String)>, StoreError>> {
        Box::pin(async move { side::bodies(&self.client().await?, &record_id).await })
    }

    fn describe(&self) -> String {
        describe_url(&self.url)
    }

    fn save_data_planes(&self, rows: Vec<DataPlaneRow>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let stmt = tx
                .prepare_cached(&data_planes_sql::upsert(|i| format!("${i}")))
                .await?;
            for r in &rows {
                tx.execute(
                    &stmt,
                    &[&r.node_id, &r.owner, &r.connected, &r.seen_ms, &r.body],
                )
                .await?;
            }
            tx.batch_execute(&data_planes_sql::prune("ALL")).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn data_planes(&self) -> BoxFuture<'_, Result<Vec<DataPlaneRow>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            Ok(client
                .query(data_planes_sql::SELECT, &[])
                .await?
                .into_iter()
                .map(|r| DataPlaneRow {
                    node_id: r.get(0),
                    owner: r.get(1),
                    connected: r.get(2),
                    seen_ms: r.get(3),
                    body: r.get(4),
                })
                .collect())
        })
    }

    fn dashboard_users(&self) -> BoxFuture<'_, Result<Vec<users::UserRow>, StoreError>> {
        Box::pin(async move { side::users(&self.client().await?).await })
    }

    fn dashboard_user(
        &self,
        name: String,
    ) -> BoxFuture<'_, Result<Option<users::UserRow>, StoreError>> {
        Box::pin(async move { side::user(&self.client().await?, &name).await })
    }

    fn put_dashboard_user(
        &self,
        u: users::UserRow,
        replace: bool,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { side::put_user(&self.client().await?, &u, replace).await })
    }

    fn delete_dashboard_user(&self, name: String) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move { side::delete_user(&self.client().await?, &name).await })
    }

    fn commits(&self) -> Option<watch::Receiver<u64>> {
        Some(self.commits.clone())
    }
}

/// The Postgres URL tests use, from `TOKENROUTER_TEST_POSTGRES_URL`. Unset means skip, except under
/// CI (`CI` set), where a missing database must fail the run rather than pass it silently.
pub fn test_url() -> Option<String> {
    match std::env::var("TOKENROUTER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must set TOKENROUTER_TEST_POSTGRES_URL so the Postgres store is tested")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
