//! The fleet handlers: providers per data plane, keys (listed by prefix; created, with the secret
//! shown once, and disabled through the Admin service, so each is an ordinary Admin call and a
//! new snapshot version) and the configuration, read-only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::{ApiKey, ApiKeyCreate, ApiKeyWrite};
use tonic::Request;

use super::Dashboard;
use super::api::{ApiError, Reader, Writer, error};

fn key_json(k: &ApiKey) -> Value {
    let limits = k
        .limits
        .as_ref()
        .map(|l| json!({"rpm": l.rpm, "tpm": l.tpm}));
    json!({"name": k.name, "prefix": k.prefix, "disabled": k.disabled,
        "models": k.allowed_models, "limits": limits, "usage": Value::Null})
}

pub async fn config(State(d): State<Arc<Dashboard>>, _: Reader) -> Result<Response, ApiError> {
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

pub async fn providers(State(d): State<Arc<Dashboard>>, _: Reader) -> Result<Response, ApiError> {
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

pub async fn keys(State(d): State<Arc<Dashboard>>, _: Reader) -> Result<Response, ApiError> {
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

pub async fn disable_key(
    State(d): State<Arc<Dashboard>>,
    _: Writer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
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
