//! The PostgreSQL store, for several control-plane copies sharing one database.

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

use tokenrouter_proto::v1::{UsageQuery, UsageRecord, UsageReport, UsageRow};

use super::{Change, Row, Store, StoreError, Stored, usage_sql};

/// Schema migrations, applied in order; `tokenrouter_migrations` records which ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE tokenrouter_meta (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, epoch TEXT NOT NULL);
     CREATE TABLE tokenrouter_resources (kind TEXT NOT NULL, name TEXT NOT NULL, body BYTEA NOT NULL, PRIMARY KEY (kind, name));",
    "USAGE",
    usage_sql::KEY_INDEX,
];

/// PostgreSQL-backed store over one connection, reconnected on demand after a failure.
pub struct PostgresStore {
    url: String,
    schema: Option<String>,
    client: Mutex<Option<Client>>,
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
        let store = PostgresStore {
            url: url.to_string(),
            schema: schema.map(str::to_string),
            client: Mutex::new(None),
        };
        let mut guard = store.client.lock().await;
        let client = store.client(&mut guard).await?;
        migrate(client).await?;
        drop(guard);
        Ok(store)
    }

    /// The live client, connecting first if there is none or the last one broke.
    async fn client<'a>(&self, slot: &'a mut Option<Client>) -> Result<&'a mut Client, StoreError> {
        if slot.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "postgres connection ended");
                }
            });
            if let Some(schema) = &self.schema {
                client
                    .batch_execute(&format!(
                        "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
                    ))
                    .await?;
            }
            *slot = Some(client);
        }
        slot.as_mut()
            .ok_or_else(|| StoreError::Backend("no postgres connection".into()))
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
            let mut guard = self.client.lock().await;
            let client = self.client(&mut guard).await?;
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
            let mut guard = self.client.lock().await;
            let client = self.client(&mut guard).await?;
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
            let mut guard = self.client.lock().await;
            let client = self.client(&mut guard).await?;
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
            tx.commit().await?;
            Ok(next as u64)
        })
    }

    fn record_usage(
        &self,
        records: std::sync::Arc<[UsageRecord]>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut guard = self.client.lock().await;
            let client = self.client(&mut guard).await?;
            let tx = client.transaction().await?;
            let stmt = tx.prepare(&usage_sql::insert(|i| format!("${i}"))).await?;
            for r in records.iter() {
                let text = usage_sql::bounded(r);
                let (prompt, completion, cached, reasoning) = (
                    r.prompt_tokens as i64,
                    r.completion_tokens as i64,
                    r.cached_tokens as i64,
                    r.reasoning_tokens as i64,
                );
                let (status, latency, ttft, attempts) = (
                    r.status as i32,
                    i64::from(r.latency_ms),
                    i64::from(r.ttft_ms),
                    r.attempts as i32,
                );
                tx.execute(
                    &stmt,
                    &[
                        &text.request_id,
                        &r.unix_ms,
                        &text.api_key,
                        &text.provider,
                        &text.model,
                        &text.requested_model,
                        &status,
                        &prompt,
                        &completion,
                        &cached,
                        &reasoning,
                        &r.cost_usd,
                        &latency,
                        &ttft,
                        &r.stream,
                        &r.completed,
                        &text.routing_mode,
                        &attempts,
                        &text.user_id,
                        &text.metadata_json,
                    ],
                )
                .await?;
            }
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
            let mut guard = self.client.lock().await;
            let client = self.client(&mut guard).await?;
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
                .map(|r| UsageRecord {
                    request_id: r.get(0),
                    unix_ms: r.get(1),
                    api_key: r.get(2),
                    provider: r.get(3),
                    model: r.get(4),
                    requested_model: r.get(5),
                    status: r.get::<_, i32>(6) as u32,
                    prompt_tokens: r.get::<_, i64>(7) as u64,
                    completion_tokens: r.get::<_, i64>(8) as u64,
                    cached_tokens: r.get::<_, i64>(9) as u64,
                    reasoning_tokens: r.get::<_, i64>(10) as u64,
                    cost_usd: r.get(11),
                    latency_ms: r.get::<_, i64>(12) as u32,
                    ttft_ms: r.get::<_, i64>(13) as u32,
                    stream: r.get(14),
                    completed: r.get(15),
                    routing_mode: r.get(16),
                    attempts: r.get::<_, i32>(17) as u32,
                    user_id: r.get(18),
                    metadata_json: r.get(19),
                })
                .collect();
            Ok(UsageReport { rows, recent })
        })
    }

    fn describe(&self) -> String {
        describe_url(&self.url)
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
mod tests {
    use super::*;

    async fn fresh() -> Option<PostgresStore> {
        let url = test_url()?;
        let schema = format!("tr_test_{}", uuid::Uuid::new_v4().simple());
        Some(
            PostgresStore::connect_in_schema(&url, Some(&schema))
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn honours_the_store_contract() {
        let Some(store) = fresh().await else {
            return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
        };
        super::super::contract::starts_empty_and_commits_in_order(&store).await;
        let Some(store) = fresh().await else { return };
        super::super::contract::refuses_a_stale_base(&store).await;
        let Some(store) = fresh().await else { return };
        super::super::contract::records_and_summarises_usage(&store).await;
        let Some(store) = fresh().await else { return };
        super::super::contract::filters_usage_by_key(&store).await;
    }

    #[test]
    fn never_describes_the_password() {
        assert_eq!(
            describe_url("postgres://u:secret@db:5432/x"),
            "postgres://db:5432/x"
        );
    }
}
