//! The dashboard's queries, without HTTP: a time range and its rollup step, series per bucket
//! (top groups kept, the rest summed as `other`), percentiles from the histograms, breakdown rows
//! and CSV. Every query is bounded: by time range, by bucket count and by row count.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::store::dashboard::RollupRow;
use crate::store::rollup_sql::{STEPS, quantile};

/// The longest range a query may cover.
pub const MAX_RANGE_MS: i64 = 400 * 86_400_000;
/// Most buckets a series holds (a day in minutes, a few months in hours).
pub const MAX_BUCKETS: i64 = 1_500;
/// Groups a chart stacks; the rest are summed as `other`.
pub const TOP_GROUPS: usize = 8;
/// Most rows a breakdown returns.
pub const MAX_ROWS: usize = 1_000;

/// A validated time range and the rollup step it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub step: &'static str,
    pub width: i64,
}

impl Range {
    /// From the query's `from`/`to` (unix ms; default: the last hour before `now`) and a wanted
    /// step (`minute`, `hour`, `day`; default: the finest that keeps the buckets bounded).
    pub fn parse(
        from: Option<i64>,
        to: Option<i64>,
        step: Option<&str>,
        now: i64,
    ) -> Result<Range, String> {
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - 3_600_000);
        if from > to {
            return Err("`from` must not be after `to`".into());
        }
        if to - from > MAX_RANGE_MS {
            return Err(format!(
                "the range may cover at most {} days",
                MAX_RANGE_MS / 86_400_000
            ));
        }
        let wanted = match step {
            None | Some("") | Some("auto") => 0,
            Some("minute") => 0,
            Some("hour") => 1,
            Some("day") => 2,
            Some(other) => return Err(format!("`step` {other:?} is not one of minute, hour, day")),
        };
        // The finest step at or above the wanted one that keeps the bucket count bounded.
        let (step, width) = STEPS[wanted..]
            .iter()
            .copied()
            .find(|(_, w)| (to - from) / w < MAX_BUCKETS)
            .unwrap_or(STEPS[2]);
        Ok(Range {
            from,
            to,
            step,
            width,
        })
    }

    /// The first bucket start (the one `from` falls in).
    pub fn first_bucket(&self) -> i64 {
        self.from.div_euclid(self.width) * self.width
    }

    /// Every bucket start of the range.
    pub fn buckets(&self) -> Vec<i64> {
        (0..)
            .map(|i| self.first_bucket() + i * self.width)
            .take_while(|b| *b <= self.to)
            .collect()
    }

    pub fn step_name(&self) -> &'static str {
        match self.step {
            "m" => "minute",
            "h" => "hour",
            _ => "day",
        }
    }
}

fn latency_json(row: &RollupRow) -> Value {
    json!({
        "p50": quantile(&row.latency, 0.50),
        "p95": quantile(&row.latency, 0.95),
        "p99": quantile(&row.latency, 0.99),
    })
}

/// The overview: totals, and per bucket the series of the top groups and the latency
/// percentiles (over all groups).
pub fn overview(range: &Range, by: &str, rows: &[RollupRow]) -> Value {
    let buckets = range.buckets();
    let index: HashMap<i64, usize> = buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut per_group: HashMap<&str, i64> = HashMap::new();
    for r in rows {
        *per_group.entry(r.group.as_str()).or_default() += r.requests;
    }
    let mut ranked: Vec<(&str, i64)> = per_group.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<&str> = ranked.iter().take(TOP_GROUPS).map(|(g, _)| *g).collect();
    let has_other = ranked.len() > TOP_GROUPS;
    let mut names: Vec<String> = top.iter().map(|g| g.to_string()).collect();
    if has_other {
        names.push("other".into());
    }
    let n = buckets.len();
    let mut series: Vec<Vec<RollupRow>> = vec![vec![RollupRow::default(); n]; names.len()];
    let mut all = vec![RollupRow::default(); n];
    let mut totals = RollupRow::default();
    for r in rows {
        let Some(&b) = index.get(&r.bucket) else {
            continue;
        };
        let g = top
            .iter()
            .position(|t| *t == r.group)
            .unwrap_or(names.len().saturating_sub(1));
        series[g][b].add(r);
        all[b].add(r);
        totals.add(r);
    }
    let column = |rows: &[RollupRow], f: &dyn Fn(&RollupRow) -> Value| -> Value {
        Value::Array(rows.iter().map(f).collect())
    };
    let series: Vec<Value> = names
        .iter()
        .zip(&series)
        .map(|(name, rows)| {
            json!({
                "group": name,
                "requests": column(rows, &|r| json!(r.requests)),
                "errors": column(rows, &|r| json!(r.errors)),
                "prompt_tokens": column(rows, &|r| json!(r.prompt_tokens)),
                "completion_tokens": column(rows, &|r| json!(r.completion_tokens)),
                "cached_tokens": column(rows, &|r| json!(r.cached_tokens)),
                "reasoning_tokens": column(rows, &|r| json!(r.reasoning_tokens)),
                "cost_usd": column(rows, &|r| json!(r.cost_usd)),
            })
        })
        .collect();
    json!({
        "from": range.from,
        "to": range.to,
        "step": range.step_name(),
        "by": by,
        "totals": {
            "requests": totals.requests,
            "errors": totals.errors,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "cached_tokens": totals.cached_tokens,
            "reasoning_tokens": totals.reasoning_tokens,
            "cost_usd": totals.cost_usd,
            "latency_ms": latency_json(&totals),
            "ttft_ms": {"p50": quantile(&totals.ttft, 0.50), "p95": quantile(&totals.ttft, 0.95)},
        },
        "buckets": buckets,
        "series": series,
        "latency": {
            "p50": column(&all, &|r| json!(quantile(&r.latency, 0.50))),
            "p95": column(&all, &|r| json!(quantile(&r.latency, 0.95))),
            "p99": column(&all, &|r| json!(quantile(&r.latency, 0.99))),
            "ttft_p50": column(&all, &|r| json!(quantile(&r.ttft, 0.50))),
            "ttft_p95": column(&all, &|r| json!(quantile(&r.ttft, 0.95))),
        },
    })
}

/// Breakdown rows, most requests first, at most [`MAX_ROWS`].
pub fn breakdown(by: &str, mut rows: Vec<RollupRow>) -> Value {
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.group.cmp(&b.group)));
    rows.truncate(MAX_ROWS);
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "group": r.group,
                "requests": r.requests,
                "errors": r.errors,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cached_tokens": r.cached_tokens,
                "reasoning_tokens": r.reasoning_tokens,
                "cost_usd": r.cost_usd,
                "latency_p50_ms": quantile(&r.latency, 0.50),
                "latency_p95_ms": quantile(&r.latency, 0.95),
            })
        })
        .collect();
    json!({"by": by, "rows": rows})
}

/// A breakdown as CSV (a header line, then one line per row; text fields quoted).
pub fn breakdown_csv(breakdown: &Value) -> String {
    const FIELDS: [&str; 10] = [
        "group",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_p50_ms",
        "latency_p95_ms",
    ];
    let mut out = FIELDS.join(",");
    out.push('\n');
    let rows = breakdown.get("rows").and_then(Value::as_array);
    for row in rows.into_iter().flatten() {
        let cells: Vec<String> = FIELDS
            .iter()
            .map(|f| match row.get(*f) {
                Some(Value::String(s)) => {
                    // Quoted, and a leading formula character neutralised for spreadsheets.
                    let s = if s.starts_with(['=', '+', '-', '@']) {
                        format!("'{s}")
                    } else {
                        s.clone()
                    };
                    format!("\"{}\"", s.replace('"', "\"\""))
                }
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded_and_pick_their_step() {
        let now = 10 * 86_400_000;
        let r = Range::parse(None, None, None, now).unwrap();
        assert_eq!((r.to - r.from, r.step), (3_600_000, "m"));
        let week =
            Range::parse(Some(now - 7 * 86_400_000), Some(now), Some("minute"), now).unwrap();
        assert_eq!(
            week.step, "h",
            "a week in minutes would be too many buckets"
        );
        assert!(week.buckets().len() as i64 <= MAX_BUCKETS);
        assert!(Range::parse(Some(0), Some(MAX_RANGE_MS + 1), None, now).is_err());
        assert!(Range::parse(Some(5), Some(1), None, now).is_err());
        assert!(Range::parse(None, None, Some("week"), now).is_err());
    }

    #[test]
    fn series_keep_the_top_groups_and_sum_the_rest() {
        let range = Range {
            from: 0,
            to: 120_000,
            step: "m",
            width: 60_000,
        };
        let mut rows = Vec::new();
        for g in 0..10 {
            rows.push(RollupRow {
                group: format!("g{g}"),
                bucket: 60_000,
                requests: 10 + g,
                ..RollupRow::default()
            });
        }
        let v = overview(&range, "provider", &rows);
        let series = v["series"].as_array().unwrap();
        assert_eq!(series.len(), TOP_GROUPS + 1);
        assert_eq!(series[0]["group"], "g9");
        assert_eq!(series[TOP_GROUPS]["group"], "other");
        assert_eq!(series[TOP_GROUPS]["requests"][1], 10 + 11);
        assert_eq!(v["buckets"], json!([0, 60_000, 120_000]));
        assert_eq!(v["totals"]["requests"], (10..20).sum::<i64>());
    }

    #[test]
    fn csv_quotes_text_and_defuses_formulas() {
        let b = breakdown(
            "key",
            vec![RollupRow {
                group: "=cmd|\"x\"".into(),
                requests: 2,
                ..RollupRow::default()
            }],
        );
        let csv = breakdown_csv(&b);
        assert!(csv.starts_with("group,requests,"));
        assert!(csv.contains("\"'=cmd|\"\"x\"\"\",2,"), "{csv}");
    }
}
