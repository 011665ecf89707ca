//! The dashboard's queries on PostgreSQL: rollups added at ingest (for the records a batch really
//! stored), rollup sums, log pages, one record, pruning in batches.

use deadpool_postgres::GenericClient;
use tokenrouter_proto::v1::UsageRecord;
use tokio_postgres::types::ToSql;

use super::super::StoreError;
use super::super::dashboard::{self, LogQuery, Param, RollupQuery, RollupRow};
use super::super::{rollup, rollup_sql};

/// A record from a row of [`super::super::usage_sql::COLUMNS`].
pub fn record_of(r: &tokio_postgres::Row) -> UsageRecord {
    UsageRecord {
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
        record_id: r.get::<_, Option<String>>(20).unwrap_or_default(),
        firewall: r.get(21),
        routing: r.get(22),
        failed_attempts: r.get(23),
        ..Default::default()
    }
}

/// Adds what `records` (just stored, in the caller's transaction) count to the rollups: one
/// statement for the whole batch.
pub async fn add_rollups<'a>(
    tx: &impl GenericClient,
    records: impl IntoIterator<Item = &'a UsageRecord>,
) -> Result<(), StoreError> {
    let rows = rollup::aggregate(records);
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let (mut steps, mut dims, mut buckets, mut values) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let width = rollup_sql::summed_columns().len() - 1;
    let mut ints: Vec<Vec<i64>> = (0..width).map(|_| Vec::with_capacity(n)).collect();
    let mut cost = Vec::with_capacity(n);
    for ((step, dim, bucket, value), row) in rows {
        steps.push(step);
        dims.push(dim);
        buckets.push(bucket);
        values.push(value);
        for (column, v) in ints.iter_mut().zip(rollup::integers(&row)) {
            column.push(v);
        }
        cost.push(row.cost_usd);
    }
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&steps, &dims, &buckets, &values];
    for column in &ints {
        params.push(column);
    }
    params.push(&cost);
    let stmt = tx.prepare_cached(&rollup::upsert_arrays()).await?;
    tx.execute(&stmt, &params).await?;
    Ok(())
}

pub async fn rollups(
    client: &impl GenericClient,
    q: &RollupQuery,
) -> Result<Vec<RollupRow>, StoreError> {
    let sql = rollup_sql::select(q.group, q.per_bucket, q.only.len(), |i| format!("${i}"));
    let stmt = client.prepare_cached(&sql).await?;
    let width = rollup_sql::summed_columns().len();
    let offset = if q.per_bucket { 2 } else { 1 };
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&q.step, &q.dim, &q.from, &q.to];
    for v in &q.only {
        params.push(v);
    }
    let rows = client.query(&stmt, &params).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let mut ints = Vec::with_capacity(width);
            for i in (0..width).filter(|i| *i != 6) {
                ints.push(r.get::<_, Option<i64>>(offset + i).unwrap_or(0));
            }
            let cost = r.get::<_, Option<f64>>(offset + 6).unwrap_or(0.0);
            let bucket = if q.per_bucket { r.get(1) } else { 0 };
            RollupRow::from_sums(r.get(0), bucket, &ints, cost)
        })
        .collect())
}

pub async fn page(
    client: &impl GenericClient,
    q: &LogQuery,
) -> Result<Vec<UsageRecord>, StoreError> {
    let (sql, params) = dashboard::log_page(q, |i| format!("${i}"));
    let owned: Vec<Box<dyn ToSql + Sync + Send>> = params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Int(i) => Box::new(i),
                Param::Text(t) => Box::new(t),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> =
        owned.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &refs).await?;
    Ok(rows.iter().map(record_of).collect())
}

pub async fn one(
    client: &impl GenericClient,
    record_id: &str,
) -> Result<Option<UsageRecord>, StoreError> {
    let sql = dashboard::one(|i| format!("${i}"));
    Ok(client
        .query_opt(&sql, &[&record_id])
        .await?
        .map(|r| record_of(&r)))
}

pub async fn prune(
    client: &impl GenericClient,
    records_before: i64,
    rollups_before: &[(&'static str, i64)],
) -> Result<u64, StoreError> {
    let batch = i64::from(dashboard::PRUNE_BATCH);
    let mut gone = client
        .execute(
            "DELETE FROM tokenrouter_usage WHERE ctid IN
               (SELECT ctid FROM tokenrouter_usage WHERE unix_ms < $1 LIMIT $2)",
            &[&records_before, &batch],
        )
        .await?;
    for (step, before) in rollups_before {
        gone += client
            .execute(
                "DELETE FROM tokenrouter_usage_rollup WHERE ctid IN
                   (SELECT ctid FROM tokenrouter_usage_rollup WHERE step = $1 AND bucket < $2 LIMIT $3)",
                &[step, before, &batch],
            )
            .await?;
    }
    Ok(gone)
}
