//! The usage handlers: the overview (series per bucket of the top groups), breakdowns and
//! their CSV, the request log (cursor pages, filters, never bodies) and one request.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokenrouter_proto::v1::UsageRecord;

use super::Dashboard;
use super::api::{ApiError, Reader, error, now_ms, store_failed};
use super::query::{self, Range};
use crate::store::dashboard::{LogQuery, MAX_PAGE, RollupQuery, StatusFilter};
use crate::store::rollup_sql::group_column;

#[derive(Deserialize, Default)]
pub struct RangeParams {
    from: Option<i64>,
    to: Option<i64>,
    step: Option<String>,
    by: Option<String>,
    format: Option<String>,
}

/// The range asked for, on a step the grouping's rollups have.
fn range(p: &RangeParams, dim: &str) -> Result<Range, ApiError> {
    let finest = crate::store::rollup_sql::finest_step(dim);
    Range::parse_from(p.from, p.to, p.step.as_deref(), now_ms(), finest)
        .map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_range", m))
}

/// The grouping asked for: its name, the rollup dimension it reads, the expression it groups by.
fn group(
    by: Option<&str>,
    default: &str,
) -> Result<(String, &'static str, &'static str), ApiError> {
    let by = by.filter(|b| !b.is_empty()).unwrap_or(default);
    group_column(by).map(|(dim, g)| (by.to_string(), dim, g)).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_group",
            format!(
                "`by` {by:?} is not one of provider, model, requested_model, key, user, routing_mode"
            ),
        )
    })
}

pub async fn overview(
    State(d): State<Arc<Dashboard>>,
    _: Reader,
    Query(p): Query<RangeParams>,
) -> Result<Response, ApiError> {
    let (by, dim, column) = group(p.by.as_deref(), "provider")?;
    let range = range(&p, dim)?;
    let series = |dim: &'static str, group: &'static str, only: Vec<String>| RollupQuery {
        step: range.step,
        dim,
        from: range.first_bucket(),
        to: range.to,
        group,
        per_bucket: true,
        only,
    };
    // Everything per bucket, from the dimension with the fewest values.
    let totals = d
        .store
        .rollups(series("routing_mode", "''", Vec::new()))
        .await
        .map_err(store_failed)?;
    if column == "''" {
        let all = [String::new()];
        return Ok(Json(query::overview(
            &range,
            &by,
            (&all, false),
            &totals,
            &totals,
        ))
        .into_response());
    }
    // The groups to stack, ranked on a coarse step; then only their rows, per bucket.
    let (step, width) = if range.to - range.from >= 86_400_000 {
        ("d", 86_400_000)
    } else {
        ("h", 3_600_000)
    };
    let ranked = d
        .store
        .rollups(RollupQuery {
            step,
            dim,
            from: range.from.div_euclid(width) * width,
            to: range.to,
            group: column,
            per_bucket: false,
            only: Vec::new(),
        })
        .await
        .map_err(store_failed)?;
    let (top, more) = query::top_groups(ranked);
    let rows = if top.is_empty() {
        Vec::new()
    } else {
        d.store
            .rollups(series(dim, column, top.clone()))
            .await
            .map_err(store_failed)?
    };
    Ok(Json(query::overview(&range, &by, (&top, more), &rows, &totals)).into_response())
}

pub async fn breakdown(
    State(d): State<Arc<Dashboard>>,
    _: Reader,
    Query(p): Query<RangeParams>,
) -> Result<Response, ApiError> {
    let (by, dim, column) = group(p.by.as_deref(), "provider")?;
    let range = range(&p, dim)?;
    let q = RollupQuery {
        step: range.step,
        dim,
        from: range.first_bucket(),
        to: range.to,
        group: column,
        per_bucket: false,
        only: Vec::new(),
    };
    let rows = d.store.rollups(q).await.map_err(store_failed)?;
    let table = query::breakdown(&by, rows);
    if p.format.as_deref() != Some("csv") {
        return Ok(Json(table).into_response());
    }
    let mut r = query::breakdown_csv(&table).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"tokenrouter-{by}.csv\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct LogParams {
    from: Option<i64>,
    to: Option<i64>,
    status: Option<String>,
    key: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    user: Option<String>,
    routing_mode: Option<String>,
    firewall: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A record as the API shows it: never the key itself (records hold its name), never a body.
fn row(r: &UsageRecord) -> Value {
    json!({
        "id": r.record_id,
        "request_id": r.request_id,
        "unix_ms": r.unix_ms,
        "key": r.api_key,
        "provider": r.provider,
        "model": r.model,
        "requested_model": r.requested_model,
        "status": r.status,
        "completed": r.completed,
        "stream": r.stream,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "routing_mode": r.routing_mode,
        "attempts": r.attempts,
        "user": r.user_id,
        "firewall": r.firewall,
    })
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn status_filter(s: Option<String>) -> Result<StatusFilter, ApiError> {
    Ok(match s.as_deref() {
        None => StatusFilter::Any,
        Some("ok") => StatusFilter::Ok,
        Some("error") => StatusFilter::Error,
        Some(code) => StatusFilter::Code(code.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                "`status` is ok, error or an HTTP status",
            )
        })?),
    })
}

fn cursor(c: Option<String>) -> Result<Option<(i64, String)>, ApiError> {
    let Some(c) = c else { return Ok(None) };
    c.split_once('.')
        .and_then(|(t, id)| Some((t.parse().ok()?, id.to_string())))
        .map(Some)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                "`cursor` is not one this API gave",
            )
        })
}

pub async fn requests(
    State(d): State<Arc<Dashboard>>,
    _: Reader,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let range = Range::parse(p.from, p.to, None, now_ms())
        .map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_range", m))?;
    let limit = p.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let q = LogQuery {
        from: range.from,
        to: range.to,
        status: status_filter(some(&p.status))?,
        key: some(&p.key),
        model: some(&p.model),
        provider: some(&p.provider),
        user: some(&p.user),
        routing_mode: some(&p.routing_mode),
        firewall: some(&p.firewall),
        before: cursor(some(&p.cursor))?,
        limit,
    };
    let rows = d.store.usage_page(q).await.map_err(store_failed)?;
    let next = (rows.len() as u32 == limit)
        .then(|| {
            rows.last()
                .map(|r| format!("{}.{}", r.unix_ms, r.record_id))
        })
        .flatten();
    let page = json!({"rows": rows.iter().map(row).collect::<Vec<_>>(), "next_cursor": next});
    Ok(Json(page).into_response())
}

/// Firewall verdicts from a record's `rule:detector:action:direction:count` list.
fn verdicts(firewall: &str) -> Vec<Value> {
    firewall
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            let mut f = v.split(':');
            let mut next = || f.next().unwrap_or("").to_string();
            let (rule, detector, action, direction) = (next(), next(), next(), next());
            let count: u64 = next().parse().unwrap_or(0);
            json!({"rule": rule, "detector": detector, "action": action, "direction": direction, "count": count})
        })
        .collect()
}

pub async fn request(
    State(d): State<Arc<Dashboard>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let r = d
        .store
        .usage_record(id.clone())
        .await
        .map_err(store_failed)?
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("No request {id:?} is stored."),
            )
        })?;
    let mut v = row(&r);
    v["metadata"] = serde_json::from_str(&r.metadata_json).unwrap_or(json!({}));
    v["firewall_verdicts"] = Value::Array(verdicts(&r.firewall));
    v["routing"] = routing(&r);
    v["attempt_log"] = Value::Array(attempt_log(&r));
    // Logged bodies (keys with `log_bodies`, masked by the firewall) are for admins only.
    v["bodies"] = if caller.role == super::auth::Role::Admin {
        let kept = d
            .store
            .usage_bodies(r.record_id.clone())
            .await
            .map_err(store_failed)?;
        kept.map_or(Value::Null, |(request, response)| {
            let parsed =
                |s: &str| serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()));
            json!({"request": parsed(&request), "response": parsed(&response)})
        })
    } else {
        json!({"hidden": "Only admins see logged bodies."})
    };
    let snapshot = d.cp.snapshot();
    let key = snapshot.api_keys.iter().find(|k| k.name == r.api_key);
    v["limits"] = json!({
        // Refused before any provider was tried: a limit (429) said no.
        "refused": r.status == 429 && r.attempts == 0,
        "key": key.map(|k| super::keys_api::limits_json(k.limits.as_ref())),
    });
    Ok(Json(v).into_response())
}

/// Why routing chose what it chose: the mode and, from records that carry it, the decision
/// (chosen candidate, runners-up, reason).
fn routing(r: &UsageRecord) -> Value {
    let decision: Value = serde_json::from_str(&r.routing).unwrap_or(Value::Null);
    json!({"mode": r.routing_mode, "requested_model": r.requested_model,
        "provider": r.provider, "model": r.model, "attempts": r.attempts,
        "chosen": decision.get("chosen"), "runners_up": decision.get("runners_up"),
        "reason": decision.get("reason")})
}

/// Every attempt in order: those that failed (from the record's log), then the one that answered
/// (or the last one tried, when none did and the log does not already end with it).
fn attempt_log(r: &UsageRecord) -> Vec<Value> {
    let mut log: Vec<Value> = serde_json::from_str::<Vec<Value>>(&r.failed_attempts)
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            a["outcome"] = json!("failed");
            a
        })
        .collect();
    if r.status < 400 && !r.provider.is_empty() {
        log.push(
            json!({"provider": r.provider, "model": r.model, "outcome": "answered",
            "status": r.status, "ms": r.latency_ms}),
        );
    } else if log.is_empty() && r.attempts > 0 {
        log.push(
            json!({"provider": r.provider, "model": r.model, "outcome": "failed",
            "status": r.status, "ms": r.latency_ms}),
        );
    }
    log
}
