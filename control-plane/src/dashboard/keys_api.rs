//! The keys handlers: each key by prefix with its limits and current use (the last minute from
//! the records, budgets and today from the day rollups), and for admins create (the secret shown
//! once), disable, enable and set limits, each through the Admin service, so every change is an
//! ordinary Admin call and a new snapshot version.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokenrouter_proto::limits::{BudgetPeriod, window};
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::{ApiKey, ApiKeyCreate, ApiKeyWrite, Limits, UsageQuery};
use tonic::Request;

use super::Dashboard;
use super::api::{ApiError, Reader, Writer, error, now_ms, store_failed};
use crate::store::dashboard::{RollupQuery, RollupRow};

/// The span the per-minute limits count over.
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// A key's limits as listed (`null` for none).
pub fn limits_json(l: Option<&Limits>) -> Value {
    match l {
        Some(l) => json!({"rpm": l.rpm, "rpm_burst": l.rpm_burst, "tpm": l.tpm,
            "max_concurrent": l.max_concurrent, "budget_usd": l.budget_usd,
            "budget_period": l.budget_period}),
        None => Value::Null,
    }
}

/// A key as listed: never its hash, only its prefix.
pub fn key_json(k: &ApiKey) -> Value {
    let model_limits: Vec<Value> = k
        .model_limits
        .iter()
        .map(|m| json!({"model": m.model, "limits": limits_json(m.limits.as_ref())}))
        .collect();
    json!({"name": k.name, "prefix": k.prefix, "disabled": k.disabled,
        "models": k.allowed_models, "limits": limits_json(k.limits.as_ref()),
        "user_limits": limits_json(k.user_limits.as_ref()), "model_limits": model_limits,
        "log_bodies": k.log_bodies, "usage": Value::Null})
}

/// Each key's day-rollup sums from `from` on.
async fn spent_since(
    d: &Dashboard,
    from: i64,
    to: i64,
) -> Result<HashMap<String, RollupRow>, ApiError> {
    let rows = d
        .store
        .rollups(RollupQuery {
            step: "d",
            dim: "api_key",
            from: from.div_euclid(DAY_MS) * DAY_MS,
            to,
            group: "value",
            per_bucket: false,
            only: Vec::new(),
        })
        .await
        .map_err(store_failed)?;
    Ok(rows.into_iter().map(|r| (r.group.clone(), r)).collect())
}

pub async fn keys(State(d): State<Arc<Dashboard>>, _: Reader) -> Result<Response, ApiError> {
    let snapshot = d.cp.snapshot();
    let now = now_ms();
    let minute = d
        .store
        .usage(UsageQuery {
            since_unix_ms: now - MINUTE_MS,
            until_unix_ms: now,
            group_by: "api_key".into(),
            recent: 0,
            api_key: String::new(),
        })
        .await
        .map_err(store_failed)?;
    let minute: HashMap<&str, _> = minute.rows.iter().map(|r| (r.group.as_str(), r)).collect();
    // One rollup read per budget period in use, and one for today.
    let mut spent: HashMap<BudgetPeriod, (i64, HashMap<String, RollupRow>)> = HashMap::new();
    for period in snapshot
        .api_keys
        .iter()
        .filter_map(|k| k.limits.as_ref()?.period())
        .chain([BudgetPeriod::Day])
    {
        if let std::collections::hash_map::Entry::Vacant(slot) = spent.entry(period) {
            let start = window(period, now).0;
            slot.insert((start, spent_since(&d, start, now).await?));
        }
    }
    let keys: Vec<Value> = snapshot
        .api_keys
        .iter()
        .map(|k| {
            let mut v = key_json(k);
            let m = minute.get(k.name.as_str());
            let today = spent
                .get(&BudgetPeriod::Day)
                .and_then(|(_, rows)| rows.get(&k.name));
            let budget = k.limits.as_ref().and_then(|l| {
                let period = l.period()?;
                let (start, rows) = spent.get(&period)?;
                let used = rows.get(&k.name).map_or(0.0, |r| r.cost_usd);
                Some(json!({"period": period.as_str(), "since_unix_ms": start,
                    "spent_usd": used, "limit_usd": l.budget_usd}))
            });
            v["usage"] = json!({
                "minute_requests": m.map_or(0, |r| r.requests),
                "minute_tokens": m.map_or(0, |r| r.prompt_tokens + r.completion_tokens),
                "today_requests": today.map_or(0, |r| r.requests),
                "today_cost_usd": today.map_or(0.0, |r| r.cost_usd),
                "budget": budget,
            });
            v
        })
        .collect();
    Ok(Json(json!({"keys": keys, "version": snapshot.version})).into_response())
}

fn status_error(s: tonic::Status) -> ApiError {
    let status = match s.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::AlreadyExists => StatusCode::CONFLICT,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::FailedPrecondition | tonic::Code::Aborted => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, "admin_refused", s.message().to_string())
}

#[derive(Deserialize)]
pub struct NewKey {
    name: String,
    #[serde(default)]
    models: Vec<String>,
}

pub async fn create_key(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Json(body): Json<NewKey>,
) -> Result<Response, ApiError> {
    let create = ApiKeyCreate {
        name: body.name,
        allowed_models: body.models,
        ..Default::default()
    };
    let created = d
        .admin
        .create_api_key(Request::new(create))
        .await
        .map_err(status_error)?
        .into_inner();
    let key = created.api_key.unwrap_or_default();
    // The secret is shown this once; the store keeps only its hash.
    let shown = json!({"name": key.name, "prefix": key.prefix, "secret": created.key, "version": created.version});
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// Changes one key through `UpdateApiKey` (validated like any Admin write).
async fn update_key(
    d: &Dashboard,
    name: &str,
    change: impl FnOnce(&mut ApiKey),
) -> Result<(ApiKey, u64), ApiError> {
    let mut key =
        d.cp.snapshot()
            .api_keys
            .iter()
            .find(|k| k.name == name)
            .cloned()
            .ok_or_else(|| {
                error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("No key {name:?}."),
                )
            })?;
    change(&mut key);
    let write = ApiKeyWrite {
        api_key: Some(key.clone()),
        expected_version: 0,
    };
    let written = d
        .admin
        .update_api_key(Request::new(write))
        .await
        .map_err(status_error)?
        .into_inner();
    Ok((key, written.version))
}

pub async fn disable_key(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, version) = update_key(&d, &name, |k| k.disabled = true).await?;
    Ok(Json(json!({"name": name, "disabled": true, "version": version})).into_response())
}

pub async fn enable_key(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, version) = update_key(&d, &name, |k| k.disabled = false).await?;
    Ok(Json(json!({"name": name, "disabled": false, "version": version})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBodies {
    enabled: bool,
}

/// Turns a key's body logging on or off.
pub async fn set_log_bodies(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Path(name): Path<String>,
    Json(b): Json<LogBodies>,
) -> Result<Response, ApiError> {
    let (_, version) = update_key(&d, &name, |k| k.log_bodies = b.enabled).await?;
    Ok(Json(json!({"name": name, "log_bodies": b.enabled, "version": version})).into_response())
}

/// The key-wide limits an admin sets; a field left out or 0 sets no limit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLimits {
    #[serde(default)]
    rpm: u32,
    #[serde(default)]
    rpm_burst: u32,
    #[serde(default)]
    tpm: u64,
    #[serde(default)]
    max_concurrent: u32,
    #[serde(default)]
    budget_usd: f64,
    #[serde(default)]
    budget_period: String,
}

pub async fn set_limits(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Path(name): Path<String>,
    Json(l): Json<NewLimits>,
) -> Result<Response, ApiError> {
    let limits = Limits {
        rpm: l.rpm,
        tpm: l.tpm,
        max_concurrent: l.max_concurrent,
        budget_usd: l.budget_usd,
        budget_period: l.budget_period,
        rpm_burst: l.rpm_burst,
    };
    let limits = (!limits.is_unlimited() || !limits.budget_period.is_empty()).then_some(limits);
    let (key, version) = update_key(&d, &name, |k| k.limits = limits).await?;
    Ok(
        Json(json!({"name": name, "limits": limits_json(key.limits.as_ref()), "version": version}))
            .into_response(),
    )
}
