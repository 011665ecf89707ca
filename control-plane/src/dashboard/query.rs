//! The dashboard's queries, without HTTP: a time range and its rollup step, series per bucket
//! (top groups kept, the rest summed as `other`), percentiles from the histograms, breakdown rows
//! and CSV. Every query is bounded: by time range, by bucket count and by row count.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::store::dashboard::RollupRow;
use crate::store::rollup_sql::{STEPS, quantile};

/// The longest range a query may cover.
pub const MAX_RANGE_MS: i64 = 400 * 86_400_000;
/// Most buckets a series holds (6 hours in minutes, two weeks in hours, else days).
pub const MAX_BUCKETS: i64 = 400;
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
        Self::parse_from(from, to, step, now, 0)
    }

    /// [`Range::parse`] for a grouping whose finest rollup step is `finest` (an index into the
    /// steps: keys and users have no minutes).
    pub fn parse_from(
        from: Option<i64>,
        to: Option<i64>,
        step: Option<&str>,
        now: i64,
        finest: usize,
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
        let (step, width) = STEPS[wanted.max(finest)..]
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

/// The groups a chart stacks: the [`TOP_GROUPS`] with the most requests in `ranked` (a
/// breakdown over the range), and whether others remain.
pub fn top_groups(mut ranked: Vec<RollupRow>) -> (Vec<String>, bool) {
    ranked.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.group.cmp(&b.group)));
    let more = ranked.len() > TOP_GROUPS;
    (
        ranked
            .into_iter()
            .take(TOP_GROUPS)
            .map(|r| r.group)
            .collect(),
        more,
    )
}

/// The overview: totals, and per bucket the series of the `top` groups (from `top_rows`), the
/// rest as `other` when `more` (the totals less the top groups), and the latency percentiles
/// over everything (from `totals`, one row per bucket).
pub fn overview(
    range: &Range,
    by: &str,
    (top, more): (&[String], bool),
    top_rows: &[RollupRow],
    totals: &[RollupRow],
) -> Value {
    let buckets = range.buckets();
    let index: HashMap<i64, usize> = buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let n = buckets.len();
    let mut series: Vec<Vec<RollupRow>> = vec![vec![RollupRow::default(); n]; top.len()];
    let mut all = vec![RollupRow::default(); n];
    let mut sum = RollupRow::default();
    for r in top_rows {
        let (Some(&b), Some(g)) = (index.get(&r.bucket), top.iter().position(|t| *t == r.group))
        else {
            continue;
        };
        series[g][b].add(r);
    }
    for r in totals {
        if let Some(&b) = index.get(&r.bucket) {
            all[b].add(r);
            sum.add(r);
        }
    }
    let mut names: Vec<String> = top.to_vec();
    if more {
        let other: Vec<RollupRow> = (0..n)
            .map(|b| {
                let mut o = all[b].clone();
                for s in &series {
                    o.requests -= s[b].requests;
                    o.errors -= s[b].errors;
                    o.prompt_tokens -= s[b].prompt_tokens;
                    o.completion_tokens -= s[b].completion_tokens;
                    o.cached_tokens -= s[b].cached_tokens;
                    o.reasoning_tokens -= s[b].reasoning_tokens;
                    o.cost_usd -= s[b].cost_usd;
                }
                o.cost_usd = o.cost_usd.max(0.0);
                o
            })
            .collect();
        series.push(other);
        names.push("other".into());
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
            "requests": sum.requests,
            "errors": sum.errors,
            "prompt_tokens": sum.prompt_tokens,
            "completion_tokens": sum.completion_tokens,
            "cached_tokens": sum.cached_tokens,
            "reasoning_tokens": sum.reasoning_tokens,
            "cost_usd": sum.cost_usd,
            "latency_ms": latency_json(&sum),
            "ttft_ms": {"p50": quantile(&sum.ttft, 0.50), "p95": quantile(&sum.ttft, 0.95)},
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
        let total = RollupRow {
            bucket: 60_000,
            requests: (10..20).sum(),
            ..RollupRow::default()
        };
        let (top, more) = top_groups(rows.clone());
        assert_eq!((top.len(), more, top[0].as_str()), (TOP_GROUPS, true, "g9"));
        let v = overview(&range, "provider", (&top, more), &rows, &[total]);
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
