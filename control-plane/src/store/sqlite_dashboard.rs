//! The dashboard's queries on SQLite: rollup sums, log pages, one record, pruning in batches.

use rusqlite::{Connection, OptionalExtension};
use tokenrouter_proto::v1::UsageRecord;

use super::StoreError;
use super::dashboard::{self, LogQuery, Param, RollupQuery, RollupRow};
use super::{rollup, rollup_sql};

/// Adds what `records` (just stored, in `tx`) count to the rollups.
pub fn add_rollups<'a>(
    tx: &rusqlite::Transaction<'_>,
    records: impl IntoIterator<Item = &'a UsageRecord>,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(&rollup::upsert_one(|i| format!("?{i}")))?;
    for ((step, dim, bucket, value), row) in rollup::aggregate(records) {
        let mut values: Vec<rusqlite::types::Value> = vec![
            step.to_string().into(),
            dim.to_string().into(),
            bucket.into(),
            value.into(),
        ];
        values.extend(
            rollup::integers(&row)
                .into_iter()
                .map(rusqlite::types::Value::from),
        );
        values.push(row.cost_usd.into());
        stmt.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

/// A record from a row of [`super::usage_sql::COLUMNS`].
pub fn record_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRecord> {
    Ok(UsageRecord {
        request_id: r.get(0)?,
        unix_ms: r.get(1)?,
        api_key: r.get(2)?,
        provider: r.get(3)?,
        model: r.get(4)?,
        requested_model: r.get(5)?,
        status: r.get(6)?,
        prompt_tokens: r.get::<_, i64>(7)? as u64,
        completion_tokens: r.get::<_, i64>(8)? as u64,
        cached_tokens: r.get::<_, i64>(9)? as u64,
        reasoning_tokens: r.get::<_, i64>(10)? as u64,
        cost_usd: r.get(11)?,
        latency_ms: r.get(12)?,
        ttft_ms: r.get(13)?,
        stream: r.get(14)?,
        completed: r.get(15)?,
        routing_mode: r.get(16)?,
        attempts: r.get(17)?,
        user_id: r.get(18)?,
        metadata_json: r.get(19)?,
        record_id: r.get::<_, Option<String>>(20)?.unwrap_or_default(),
        firewall: r.get(21)?,
        routing: r.get(22)?,
        failed_attempts: r.get(23)?,
        ..Default::default()
    })
}

pub fn rollups(conn: &mut Connection, q: &RollupQuery) -> Result<Vec<RollupRow>, StoreError> {
    let sql = rollup_sql::select(q.group, q.per_bucket, q.only.len(), |i| format!("?{i}"));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut params: Vec<rusqlite::types::Value> = vec![
        q.step.to_string().into(),
        q.dim.to_string().into(),
        q.from.into(),
        q.to.into(),
    ];
    params.extend(q.only.iter().cloned().map(rusqlite::types::Value::from));
    let width = rollup_sql::summed_columns().len();
    let offset = if q.per_bucket { 2 } else { 1 };
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            let mut ints = Vec::with_capacity(width);
            let mut cost = 0.0;
            for i in 0..width {
                if i == 6 {
                    cost = r.get::<_, Option<f64>>(offset + i)?.unwrap_or(0.0);
                    ints.push(0);
                } else {
                    ints.push(r.get::<_, Option<i64>>(offset + i)?.unwrap_or(0));
                }
            }
            ints.remove(6);
            let bucket = if q.per_bucket { r.get(1)? } else { 0 };
            Ok(RollupRow::from_sums(r.get(0)?, bucket, &ints, cost))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn page(conn: &mut Connection, q: &LogQuery) -> Result<Vec<UsageRecord>, StoreError> {
    let (sql, params) = dashboard::log_page(q, |i| format!("?{i}"));
    let values: Vec<rusqlite::types::Value> = params
        .into_iter()
        .map(|p| match p {
            Param::Int(i) => rusqlite::types::Value::Integer(i),
            Param::Text(t) => rusqlite::types::Value::Text(t),
        })
        .collect();
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), record_of)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn one(conn: &mut Connection, record_id: &str) -> Result<Option<UsageRecord>, StoreError> {
    let sql = dashboard::one(|i| format!("?{i}"));
    Ok(conn.query_row(&sql, [record_id], record_of).optional()?)
}

pub fn prune(
    conn: &mut Connection,
    records_before: i64,
    rollups_before: &[(&'static str, i64)],
) -> Result<u64, StoreError> {
    let batch = dashboard::PRUNE_BATCH;
    let mut gone = conn.execute(
        "DELETE FROM tokenrouter_usage WHERE id IN
           (SELECT id FROM tokenrouter_usage WHERE unix_ms < ?1 LIMIT ?2)",
        rusqlite::params![records_before, batch],
    )? as u64;
    for (step, before) in rollups_before {
        gone += conn.execute(
            "DELETE FROM tokenrouter_usage_rollup WHERE rowid IN
               (SELECT rowid FROM tokenrouter_usage_rollup WHERE step = ?1 AND bucket < ?2 LIMIT ?3)",
            rusqlite::params![step, before, batch],
        )? as u64;
    }
    Ok(gone)
}
