//! Usage rollups, both backends: per minute, hour and day, and per value of each grouping
//! dimension on its own (provider, model, requested model, key, end user, routing mode), with
//! latency and time-to-first-token histograms, so the dashboard's charts and tables read a few
//! hundred rollup rows instead of scanning millions of records (one dimension at a time keeps the
//! rows few however many users and keys there are; their combinations would not). Rows are added
//! to in the same transaction that stores the records they count (`INSERT … SELECT … GROUP BY …
//! ON CONFLICT DO UPDATE`), so a record is counted exactly once.

/// Histogram bucket upper bounds in milliseconds (1-2-5 steps, so a gateway's own milliseconds
/// and a slow model's minute both resolve); a last bucket holds everything slower.
pub const BOUNDS_MS: [i64; 15] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000,
];
/// Buckets per histogram.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The rollup steps: name and width in milliseconds.
pub const STEPS: [(&str, i64); 3] = [("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// The grouping dimensions: each is rolled up on its own, named by its column.
pub const DIMENSIONS: [&str; 6] = [
    "provider",
    "model",
    "requested_model",
    "api_key",
    "user_id",
    "routing_mode",
];

/// Whether `dim` is rolled up at `step`: keys and end users, whose values are many, only per hour
/// and day (a minute of them would be about as many rows as records).
pub fn rolls_up(step: &str, dim: &str) -> bool {
    step != "m" || !matches!(dim, "api_key" | "user_id")
}

/// The finest step a grouping by `dim` can read.
pub fn finest_step(dim: &str) -> usize {
    usize::from(!rolls_up("m", dim))
}

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
        "dim TEXT NOT NULL".into(),
        "bucket BIGINT NOT NULL".into(),
        "value TEXT NOT NULL".into(),
    ];
    for c in summed_columns() {
        let kind = if c == "cost_usd" { float } else { "BIGINT" };
        cols.push(format!("{c} {kind} NOT NULL"));
    }
    // Keyed by value first (a chart's few groups are a few short ranges), with an index by time
    // for whole-dimension sums.
    format!(
        "CREATE TABLE tokenrouter_usage_rollup ({}, PRIMARY KEY (step, dim, value, bucket));
         CREATE INDEX tokenrouter_usage_rollup_time ON tokenrouter_usage_rollup (step, dim, bucket)",
        cols.join(", ")
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
/// rollups of every step and dimension: one statement each.
pub fn add(filter: &str) -> Vec<String> {
    let summed = summed_columns();
    let updates: Vec<String> = summed
        .iter()
        .map(|c| format!("{c} = tokenrouter_usage_rollup.{c} + excluded.{c}"))
        .collect();
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
    values.extend((0..BUCKETS).map(|i| bucket_count("ttft_ms", i, "stream AND ttft_ms > 0")));
    let mut out = Vec::new();
    for (step, width) in STEPS {
        for dim in DIMENSIONS.into_iter().filter(|d| rolls_up(step, d)) {
            out.push(format!(
                "INSERT INTO tokenrouter_usage_rollup (step, dim, bucket, value, {summed})
                 SELECT '{step}', '{dim}', (unix_ms / {width}) * {width}, {dim}, {values}
                 FROM tokenrouter_usage WHERE {filter}
                 GROUP BY 3, 4 ORDER BY 3, 4
                 ON CONFLICT (step, dim, value, bucket) DO UPDATE SET {updates}",
                summed = summed.join(", "),
                values = values.join(", "),
                updates = updates.join(", "),
            ));
        }
    }
    out
}

/// The rollup dimension a dashboard grouping reads and the expression it groups by, from a
/// fixed list (never the caller's text). No grouping reads the providers' rollup, summed.
pub fn group_column(by: &str) -> Option<(&'static str, &'static str)> {
    let dim = match by {
        "" | "none" => return Some(("provider", "''")),
        "provider" => "provider",
        "model" => "model",
        "requested_model" => "requested_model",
        "key" => "api_key",
        "user" => "user_id",
        "routing_mode" => "routing_mode",
        _ => return None,
    };
    Some((dim, "value"))
}

/// Rollup rows of a step (placeholder 1) and dimension (2) between bucket starts (3 and 4),
/// summed by bucket and `group` (`per_bucket`) or by `group` alone; the group first, then the
/// bucket when per bucket, then [`summed_columns`].
/// With `only` values, just those (placeholders 5 on).
pub fn select(group: &str, per_bucket: bool, only: usize, p: impl Fn(usize) -> String) -> String {
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
    let values = if only == 0 {
        String::new()
    } else {
        let marks: Vec<String> = (5..5 + only).map(&p).collect();
        format!(" AND value IN ({})", marks.join(", "))
    };
    format!(
        "SELECT {group} AS grp{bucket}, {} FROM tokenrouter_usage_rollup
         WHERE step = {} AND dim = {} AND bucket >= {} AND bucket <= {}{values} GROUP BY {group_by}",
        sums.join(", "),
        p(1),
        p(2),
        p(3),
        p(4),
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
        assert_eq!(group_column("key"), Some(("api_key", "value")));
        assert_eq!(group_column("1; DROP TABLE x"), None);
        let sql = add("id > ?1");
        assert_eq!(
            sql.len(),
            16,
            "3 steps x 6 dimensions, but no minutes of keys or users"
        );
        assert!(
            sql[0].contains("'m', 'provider', (unix_ms / 60000) * 60000, provider"),
            "{}",
            sql[0]
        );
        assert!(sql[15].contains("'d', 'routing_mode'"));
    }
}
