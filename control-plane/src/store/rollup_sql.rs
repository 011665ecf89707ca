//! Usage rollups, both backends: per minute, hour and day, per provider, model, requested model,
//! key, end user and routing mode, with latency and time-to-first-token histograms, so the
//! dashboard's charts and tables read a few thousand rollup rows instead of scanning millions of
//! records. Rows are added to in the same transaction that stores the records they count
//! (`INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`), so a record is counted exactly once.

/// Histogram bucket upper bounds in milliseconds (1-2-5 steps, so a gateway's own milliseconds
/// and a slow model's minute both resolve); a last bucket holds everything slower.
pub const BOUNDS_MS: [i64; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000,
];
/// Buckets per histogram.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The rollup steps: name and width in milliseconds.
pub const STEPS: [(&str, i64); 3] = [("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// The grouping dimensions, in key order.
pub const DIMENSIONS: [&str; 6] = [
    "provider",
    "model",
    "requested_model",
    "api_key",
    "user_id",
    "routing_mode",
];

/// The summed columns, in order, before the histograms.
const SUMS: [&str; 7] = [
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
];

fn histogram_columns(prefix: &str) -> Vec<String> {
    (0..BUCKETS).map(|i| format!("{prefix}{i}")).collect()
}

/// Every summed column: the sums, then `l0…` (latency) and `t0…` (TTFT of streams).
pub fn summed_columns() -> Vec<String> {
    let mut cols: Vec<String> = SUMS.iter().map(|s| s.to_string()).collect();
    cols.extend(histogram_columns("l"));
    cols.extend(histogram_columns("t"));
    cols
}

/// The DDL, with the backend's float type.
pub fn create_table(float: &str) -> String {
    let mut cols = vec![
        "step TEXT NOT NULL".to_string(),
        "bucket BIGINT NOT NULL".into(),
    ];
    cols.extend(DIMENSIONS.iter().map(|d| format!("{d} TEXT NOT NULL")));
    for c in summed_columns() {
        let kind = if c == "cost_usd" { float } else { "BIGINT" };
        cols.push(format!("{c} {kind} NOT NULL"));
    }
    format!(
        "CREATE TABLE tokenrouter_usage_rollup ({}, PRIMARY KEY (step, bucket, {}))",
        cols.join(", "),
        DIMENSIONS.join(", ")
    )
}

/// `SUM(CASE …)` counting `column` values in histogram bucket `i` (`only`: an extra condition).
fn bucket_count(column: &str, i: usize, only: &str) -> String {
    let low = if i == 0 { None } else { Some(BOUNDS_MS[i - 1]) };
    let high = BOUNDS_MS.get(i);
    let mut cond = vec![only.to_string()];
    if let Some(l) = low {
        cond.push(format!("{column} >= {l}"));
    }
    if let Some(h) = high {
        cond.push(format!("{column} < {h}"));
    }
    cond.retain(|c| !c.is_empty());
    let cond = if cond.is_empty() {
        "1 = 1".to_string()
    } else {
        cond.join(" AND ")
    };
    format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)")
}

/// Adds the records `filter` selects (a `WHERE` condition on `tokenrouter_usage`) to the
/// rollups of every step.
pub fn add(filter: &str) -> Vec<String> {
    let dims = DIMENSIONS.join(", ");
    let summed = summed_columns();
    let updates: Vec<String> = summed
        .iter()
        .map(|c| format!("{c} = tokenrouter_usage_rollup.{c} + excluded.{c}"))
        .collect();
    STEPS
        .iter()
        .map(|(step, width)| {
            let mut values = vec![
                "COUNT(*)".to_string(),
                "SUM(CASE WHEN status >= 400 OR NOT completed THEN 1 ELSE 0 END)".into(),
                "SUM(prompt_tokens)".into(),
                "SUM(completion_tokens)".into(),
                "SUM(cached_tokens)".into(),
                "SUM(reasoning_tokens)".into(),
                "SUM(cost_usd)".into(),
            ];
            values.extend((0..BUCKETS).map(|i| bucket_count("latency_ms", i, "")));
            values
                .extend((0..BUCKETS).map(|i| bucket_count("ttft_ms", i, "stream AND ttft_ms > 0")));
            format!(
                "INSERT INTO tokenrouter_usage_rollup (step, bucket, {dims}, {summed})
                 SELECT '{step}', (unix_ms / {width}) * {width}, {dims}, {values}
                 FROM tokenrouter_usage WHERE {filter}
                 GROUP BY 2, {dims} ORDER BY 2, {dims}
                 ON CONFLICT (step, bucket, {dims}) DO UPDATE SET {updates}",
                summed = summed.join(", "),
                values = values.join(", "),
                updates = updates.join(", "),
            )
        })
        .collect()
}

/// The grouping expression of a dashboard query, from a fixed list (never the caller's text).
pub fn group_column(by: &str) -> Option<&'static str> {
    Some(match by {
        "" | "none" => "''",
        "provider" => "provider",
        "model" => "model",
        "requested_model" => "requested_model",
        "key" => "api_key",
        "user" => "user_id",
        "routing_mode" => "routing_mode",
        _ => return None,
    })
}

/// Rollup rows of `step` between the bounds at placeholders 1 and 2 (bucket starts), summed by
/// bucket and `group` (`per_bucket`) or by `group` alone; the group first, then the bucket when
/// per bucket, then [`summed_columns`].
pub fn select(group: &str, per_bucket: bool, p: impl Fn(usize) -> String) -> String {
    let sums: Vec<String> = summed_columns()
        .iter()
        .map(|c| {
            if c == "cost_usd" {
                format!("CAST(SUM({c}) AS DOUBLE PRECISION)")
            } else {
                format!("CAST(SUM({c}) AS BIGINT)")
            }
        })
        .collect();
    let (bucket, group_by) = if per_bucket {
        (", bucket", "grp, bucket")
    } else {
        ("", "grp")
    };
    format!(
        "SELECT {group} AS grp{bucket}, {} FROM tokenrouter_usage_rollup
         WHERE step = {} AND bucket >= {} AND bucket <= {} GROUP BY {group_by}",
        sums.join(", "),
        p(1),
        p(2),
        p(3),
    )
}

/// The value at quantile `q` (0–1) of a histogram: the upper bound of the bucket it falls in,
/// interpolated linearly inside it; `None` when empty.
pub fn quantile(hist: &[i64], q: f64) -> Option<f64> {
    let total: i64 = hist.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, &n) in hist.iter().enumerate() {
        let next = seen + n as f64;
        if n > 0 && next >= rank {
            let low = if i == 0 { 0.0 } else { BOUNDS_MS[i - 1] as f64 };
            let Some(&high) = BOUNDS_MS.get(i) else {
                return Some(low);
            };
            let within = ((rank - seen) / n as f64).clamp(0.0, 1.0);
            return Some(low + within * (high as f64 - low));
        }
        seen = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_buckets() {
        let mut h = [0i64; BUCKETS];
        h[6] = 100; // 50–100 ms
        assert_eq!(quantile(&h, 0.5), Some(75.0));
        h[15] = 100; // slower than a minute
        assert_eq!(quantile(&h, 0.99), Some(60_000.0));
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn groups_come_from_a_fixed_list() {
        assert_eq!(group_column("key"), Some("api_key"));
        assert_eq!(group_column("1; DROP TABLE x"), None);
        let sql = add("id > ?1");
        assert_eq!(sql.len(), 3);
        assert!(
            sql[0].contains("'m', (unix_ms / 60000) * 60000"),
            "{}",
            sql[0]
        );
        assert!(sql[2].contains("ON CONFLICT (step, bucket, provider"));
    }
}
