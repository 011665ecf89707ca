//! The rollup rows a batch of newly stored records adds, computed here in one pass over the batch
//! (not by the database re-reading it), and the upsert statements both backends run with them.
//! Rows come out sorted by their key, so concurrent writers lock them in the same order.

use std::collections::BTreeMap;

use tokenrouter_proto::v1::UsageRecord;

use super::dashboard::RollupRow;
use super::rollup_sql::{BOUNDS_MS, STEPS, rolls_up, summed_columns};
use super::usage_sql;

/// Which rollup row: step, dimension, bucket start, the dimension's value.
pub type Key = (&'static str, &'static str, i64, String);

fn histogram_bucket(ms: u32) -> usize {
    BOUNDS_MS.partition_point(|b| i64::from(ms) >= *b)
}

/// The rollup rows `records` add (each record once per step and dimension).
pub fn aggregate<'a>(records: impl IntoIterator<Item = &'a UsageRecord>) -> Vec<(Key, RollupRow)> {
    let mut rows: BTreeMap<Key, RollupRow> = BTreeMap::new();
    for r in records {
        let t = usage_sql::bounded(r);
        let mut one = RollupRow {
            requests: 1,
            errors: i64::from(r.status >= 400 || !r.completed),
            prompt_tokens: r.prompt_tokens as i64,
            completion_tokens: r.completion_tokens as i64,
            cached_tokens: r.cached_tokens as i64,
            reasoning_tokens: r.reasoning_tokens as i64,
            cost_usd: r.cost_usd,
            ..RollupRow::default()
        };
        one.latency[histogram_bucket(r.latency_ms)] = 1;
        if r.stream && r.ttft_ms > 0 {
            one.ttft[histogram_bucket(r.ttft_ms)] = 1;
        }
        let values = [
            ("provider", t.provider),
            ("model", t.model),
            ("requested_model", t.requested_model),
            ("api_key", t.api_key),
            ("user_id", t.user_id),
            ("routing_mode", t.routing_mode),
        ];
        for (step, width) in STEPS {
            let bucket = r.unix_ms.div_euclid(width) * width;
            for (dim, value) in values.into_iter().filter(|(d, _)| rolls_up(step, d)) {
                rows.entry((step, dim, bucket, value.to_string()))
                    .or_default()
                    .add(&one);
            }
        }
    }
    rows.into_iter().collect()
}

/// A row's summed columns in [`summed_columns`] order: the integers, and the cost apart.
pub fn integers(row: &RollupRow) -> Vec<i64> {
    let mut out = vec![
        row.requests,
        row.errors,
        row.prompt_tokens,
        row.completion_tokens,
        row.cached_tokens,
        row.reasoning_tokens,
    ];
    out.extend(row.latency);
    out.extend(row.ttft);
    out
}

fn columns_and_updates() -> (String, String) {
    let summed = summed_columns();
    let updates: Vec<String> = summed
        .iter()
        .map(|c| format!("{c} = tokenrouter_usage_rollup.{c} + excluded.{c}"))
        .collect();
    (summed.join(", "), updates.join(", "))
}

/// Summed columns with the cost last (the order [`integers`] and the cost bind in).
fn bind_order() -> String {
    let mut cols: Vec<String> = summed_columns()
        .into_iter()
        .filter(|c| c != "cost_usd")
        .collect();
    cols.push("cost_usd".into());
    cols.join(", ")
}

/// One row's upsert; placeholders: step, dim, bucket, value, the integers, the cost.
pub fn upsert_one(p: impl Fn(usize) -> String) -> String {
    let (_, updates) = columns_and_updates();
    let n = 4 + summed_columns().len();
    let marks: Vec<String> = (1..=n).map(p).collect();
    format!(
        "INSERT INTO tokenrouter_usage_rollup (step, dim, bucket, value, {}) VALUES ({})
         ON CONFLICT (step, dim, value, bucket) DO UPDATE SET {updates}",
        bind_order(),
        marks.join(", ")
    )
}

/// PostgreSQL's whole-batch upsert: one array per column (step, dim, bucket, value, the
/// integers, the cost), unnested into rows.
pub fn upsert_arrays() -> String {
    let (_, updates) = columns_and_updates();
    let ints = summed_columns().len() - 1;
    let mut arrays = vec![
        "$1::text[]".to_string(),
        "$2::text[]".into(),
        "$3::int8[]".into(),
        "$4::text[]".into(),
    ];
    arrays.extend((0..ints).map(|i| format!("${}::int8[]", 5 + i)));
    arrays.push(format!("${}::float8[]", 5 + ints));
    format!(
        "INSERT INTO tokenrouter_usage_rollup (step, dim, bucket, value, {})
         SELECT * FROM unnest({})
         ON CONFLICT (step, dim, value, bucket) DO UPDATE SET {updates}",
        bind_order(),
        arrays.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_counts_once_per_step_and_dimension() {
        let r = UsageRecord {
            unix_ms: 3_600_000 + 61_000,
            provider: "p".into(),
            latency_ms: 80,
            ttft_ms: 30,
            stream: true,
            completed: true,
            status: 200,
            ..Default::default()
        };
        let rows = aggregate([&r, &r]);
        assert_eq!(rows.len(), 16, "no minutes of keys or users");
        let minute = rows
            .iter()
            .find(|(k, _)| k.0 == "m" && k.1 == "provider")
            .unwrap();
        assert_eq!(minute.0.2, 3_660_000);
        assert_eq!(minute.1.requests, 2);
        assert_eq!(minute.1.latency[6], 2, "80 ms: the 50-100 bucket");
        assert_eq!(minute.1.ttft[5], 2, "30 ms: the 20-50 bucket");
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(1), 1);
        assert_eq!(histogram_bucket(u32::MAX), BOUNDS_MS.len());
        assert!(
            upsert_arrays().contains("$43::float8[]"),
            "{}",
            upsert_arrays()
        );
    }
}
