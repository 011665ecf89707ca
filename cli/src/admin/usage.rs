//! `tokenrouter usage`: what the data planes reported, grouped and priced, plus recent requests.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::{Value, json};
use tokenrouter_proto::v1::{UsageQuery, UsageRecord, UsageReport, UsageRow};

use super::client::{Client, call};
use super::output::{Printer, Table, or_dash};

/// Which usage to show.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct UsageArgs {
    /// Group by `api_key`, `provider`, `model`, `requested_model` or `user_id`.
    #[arg(long, default_value = "model")]
    pub by: String,
    /// Only the last this many hours (0: everything).
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
    /// Also list this many recent requests.
    #[arg(long, default_value_t = 0)]
    pub recent: u32,
    /// Only the requests of this API key (by name).
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
}

fn row_json(r: &UsageRow) -> Value {
    json!({
        "group": r.group, "requests": r.requests, "failures": r.failures,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens, "cost_usd": r.cost_usd, "avg_latency_ms": r.avg_latency_ms,
    })
}

fn record_json(r: &UsageRecord) -> Value {
    let metadata: Value = serde_json::from_str(&r.metadata_json).unwrap_or(Value::Null);
    json!({
        "request_id": r.request_id, "unix_ms": r.unix_ms, "api_key": r.api_key, "provider": r.provider,
        "model": r.model, "requested_model": r.requested_model, "status": r.status,
        "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens, "reasoning_tokens": r.reasoning_tokens, "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms, "ttft_ms": r.ttft_ms, "stream": r.stream, "completed": r.completed,
        "routing_mode": r.routing_mode, "attempts": r.attempts, "user_id": r.user_id, "metadata": metadata,
    })
}

fn render(report: &UsageReport, by: &str) -> String {
    let mut table = Table::with_headers(&[
        &by.to_uppercase(),
        "REQUESTS",
        "FAILED",
        "PROMPT",
        "COMPLETION",
        "CACHED",
        "COST USD",
        "AVG MS",
    ]);
    for r in &report.rows {
        table.row(vec![
            or_dash(&r.group),
            r.requests.to_string(),
            r.failures.to_string(),
            r.prompt_tokens.to_string(),
            r.completion_tokens.to_string(),
            r.cached_tokens.to_string(),
            format!("{:.6}", r.cost_usd),
            format!("{:.0}", r.avg_latency_ms),
        ]);
    }
    let mut out = table.render();
    if !report.recent.is_empty() {
        let mut recent = Table::with_headers(&[
            "REQUEST", "KEY", "MODEL", "PROVIDER", "STATUS", "TOKENS", "COST USD", "MS", "USER",
        ]);
        for r in &report.recent {
            recent.row(vec![
                r.request_id.clone(),
                or_dash(&r.api_key),
                or_dash(&r.requested_model),
                or_dash(format!("{}:{}", r.provider, r.model).trim_matches(':')),
                r.status.to_string(),
                (r.prompt_tokens + r.completion_tokens).to_string(),
                format!("{:.6}", r.cost_usd),
                r.latency_ms.to_string(),
                or_dash(&r.user_id),
            ]);
        }
        out.push('\n');
        out.push_str(&recent.render());
    }
    out
}

/// Prints usage (`GetUsage`).
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    args: UsageArgs,
) -> anyhow::Result<()> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = if args.hours == 0 {
        0
    } else {
        now_ms - (args.hours as i64) * 3_600_000
    };
    let query = UsageQuery {
        since_unix_ms: since.max(0),
        until_unix_ms: 0,
        group_by: args.by.clone(),
        recent: args.recent,
        api_key: args.key.clone().unwrap_or_default(),
    };
    let report = call(client.get_usage(query)).await?;
    if printer.json() {
        printer.value(&json!({
            "rows": report.rows.iter().map(row_json).collect::<Vec<_>>(),
            "recent": report.recent.iter().map(record_json).collect::<Vec<_>>(),
        }))
    } else {
        printer.text(&render(&report, &args.by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rows_and_recent_requests() {
        let report = UsageReport {
            rows: vec![UsageRow {
                group: "gpt-4o".into(),
                requests: 3,
                cost_usd: 0.25,
                ..Default::default()
            }],
            recent: vec![UsageRecord {
                request_id: "req_1".into(),
                provider: "openai".into(),
                model: "gpt-4o".into(),
                metadata_json: "{\"task\":\"x\"}".into(),
                ..Default::default()
            }],
        };
        let text = render(&report, "model");
        assert!(
            text.contains("gpt-4o") && text.contains("0.250000") && text.contains("req_1"),
            "{text}"
        );
        assert_eq!(record_json(&report.recent[0])["metadata"]["task"], "x");
    }
}
