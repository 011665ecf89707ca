//! The JSON API under `/api/`: sign-in, the overview, breakdowns (and CSV), the request log and
//! one request, providers, keys (list, create, disable: ordinary Admin calls, so each shows in
//! the snapshot version) and the configuration, read-only. API keys only ever appear by prefix.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::{ApiKey, ApiKeyCreate, ApiKeyWrite, UsageRecord};
use tonic::Request;

use super::Dashboard;
use super::auth::{self, Caller, Refusal};
use super::query::{self, Range};
use crate::store::dashboard::{LogQuery, MAX_PAGE, RollupQuery, StatusFilter};
use crate::store::rollup_sql::group_column;

/// Every failure the API answers, in one shape: `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {"message": self.message, "type": kind, "code": self.code}});
        (self.status, Json(body)).into_response()
    }
}

/// An API failure.
pub fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::SignIn => error(
            StatusCode::UNAUTHORIZED,
            "signin_required",
            "Sign in with the admin token.",
        ),
        Refusal::Csrf => error(
            StatusCode::FORBIDDEN,
            "csrf",
            "This write needs the session's x-csrf-token header.",
        ),
        Refusal::ReadOnly => error(
            StatusCode::FORBIDDEN,
            "read_only",
            "Viewers cannot change anything.",
        ),
    }
}

fn caller(d: &Dashboard, method: &Method, headers: &HeaderMap) -> Result<Caller, ApiError> {
    d.auth.check(method, headers, false).map_err(refused)
}

fn store_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "dashboard query failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "The store did not answer; try again.",
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn me(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = caller(&d, &method, &headers)?;
    let me = json!({"auth": c.via, "user": c.user, "role": c.role.name(), "csrf": c.csrf});
    Ok(Json(me).into_response())
}

#[derive(Deserialize)]
pub struct SignIn {
    token: Option<String>,
}

pub async fn sign_in(
    State(d): State<Arc<Dashboard>>,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    if d.auth.is_open() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "no_signin",
            "No admin token is set: the dashboard needs no sign-in.",
        ));
    }
    let (id, caller) = body
        .token
        .as_deref()
        .and_then(|t| d.auth.sign_in_with_token(t))
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "That token is not the admin token.",
            )
        })?;
    let signed = json!({"user": caller.user, "role": caller.role.name(), "csrf": caller.csrf});
    let mut r = Json(signed).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::cookie(&id)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn sign_out(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
    d.auth.sign_out(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::expired_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

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
    method: Method,
    headers: HeaderMap,
    Query(p): Query<RangeParams>,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
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
    method: Method,
    headers: HeaderMap,
    Query(p): Query<RangeParams>,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
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
    method: Method,
    headers: HeaderMap,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
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
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
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
    v["routing"] = json!({"mode": r.routing_mode, "requested_model": r.requested_model,
        "provider": r.provider, "model": r.model, "attempts": r.attempts});
    v["limits"] = Value::Null;
    Ok(Json(v).into_response())
}

fn key_json(k: &ApiKey) -> Value {
    let limits = k
        .limits
        .as_ref()
        .map(|l| json!({"rpm": l.rpm, "tpm": l.tpm}));
    json!({"name": k.name, "prefix": k.prefix, "disabled": k.disabled,
        "models": k.allowed_models, "limits": limits, "usage": Value::Null})
}

pub async fn config(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
    let s = d.cp.snapshot();
    let planes = d.cp.list_data_planes().await;
    let providers: Vec<Value> = s
        .providers
        .iter()
        .map(
            |p| json!({"name": p.name, "kind": p.kind, "base_url": p.base_url, "models": p.models}),
        )
        .collect();
    let models: Vec<Value> = s
        .models
        .iter()
        .map(|m| {
            json!({"name": m.name, "kind": m.kind, "model": m.model,
            "input_per_mtok": m.input_per_mtok, "output_per_mtok": m.output_per_mtok})
        })
        .collect();
    let rules: Vec<Value> = s
        .routing_rules
        .iter()
        .map(|r| json!({"name": r.name, "priority": r.priority}))
        .collect();
    let policies: Vec<Value> = s
        .fallback_policies
        .iter()
        .map(|p| json!({"name": p.name}))
        .collect();
    let firewall: Vec<Value> = s
        .firewall_rules
        .iter()
        .map(|r| json!({"name": r.name, "action": r.action, "direction": r.direction, "detectors": r.detectors}))
        .collect();
    let planes: Vec<Value> = planes
        .iter()
        .map(|p| json!({"node_id": p.node_id, "version": p.serving_version, "connected": p.connected, "last_error": p.last_error}))
        .collect();
    Ok(Json(json!({
        "version": s.version,
        "providers": providers,
        "models": models,
        "rules": rules,
        "policies": policies,
        "firewall_rules": firewall,
        "keys": s.api_keys.iter().map(key_json).collect::<Vec<_>>(),
        "data_planes": planes,
    }))
    .into_response())
}

pub async fn providers(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
    let s = d.cp.snapshot();
    let planes = d.cp.list_data_planes().await;
    let providers: Vec<Value> = s
        .providers
        .iter()
        .map(|p| json!({"name": p.name, "kind": p.kind}))
        .collect();
    let planes: Vec<Value> = planes
        .iter()
        .map(|p| {
            json!({"node_id": p.node_id, "version": p.serving_version, "connected": p.connected,
            "last_seen_unix_ms": p.last_seen_unix_ms, "providers": providers})
        })
        .collect();
    Ok(Json(json!({"data_planes": planes})).into_response())
}

pub async fn keys(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&d, &method, &headers)?;
    let keys: Vec<Value> = d.cp.snapshot().api_keys.iter().map(key_json).collect();
    Ok(Json(json!({"keys": keys})).into_response())
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
    method: Method,
    headers: HeaderMap,
    Json(body): Json<NewKey>,
) -> Result<Response, ApiError> {
    d.auth.check(&method, &headers, true).map_err(refused)?;
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

pub async fn disable_key(
    State(d): State<Arc<Dashboard>>,
    method: Method,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    d.auth.check(&method, &headers, true).map_err(refused)?;
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
    key.disabled = true;
    let write = ApiKeyWrite {
        api_key: Some(key),
        expected_version: 0,
    };
    let written = d
        .admin
        .update_api_key(Request::new(write))
        .await
        .map_err(status_error)?
        .into_inner();
    Ok(Json(json!({"name": name, "disabled": true, "version": written.version})).into_response())
}
