//! The fleet handlers: providers per data plane with the live signals each data plane reports
//! (breakers, latency, TTFT, error rate, headroom), and the configuration, read-only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokenrouter_proto::v1::CandidateSignals;

use super::Dashboard;
use super::api::{ApiError, Reader};
use super::keys_api::key_json;

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

fn signals_json(c: &CandidateSignals, kind: &str) -> Value {
    json!({"name": c.provider, "kind": kind, "model": c.model, "credential": c.credential,
        "breaker": c.breaker, "latency_ms": c.latency_ms, "ttft_ms": c.ttft_ms,
        "ttft_p95_ms": c.ttft_p95_ms, "tokens_per_sec": c.tokens_per_sec,
        "error_rate": c.error_rate, "headroom": c.headroom, "samples": c.samples,
        "cooling": c.cooling})
}

/// Per data plane, one row per candidate it has measured, and a row for each configured provider
/// it has not (no traffic yet: nothing measured, nothing open).
pub async fn providers(State(d): State<Arc<Dashboard>>, _: Reader) -> Result<Response, ApiError> {
    let s = d.cp.snapshot();
    let planes = d.cp.list_data_planes().await;
    let kind_of = |name: &str| {
        s.providers
            .iter()
            .find(|p| p.name == name)
            .map_or("", |p| p.kind.as_str())
    };
    let planes: Vec<Value> = planes
        .iter()
        .map(|p| {
            let mut rows: Vec<Value> = p
                .candidates
                .iter()
                .map(|c| signals_json(c, kind_of(&c.provider)))
                .collect();
            for provider in &s.providers {
                if !p.candidates.iter().any(|c| c.provider == provider.name) {
                    rows.push(json!({"name": provider.name, "kind": provider.kind,
                        "breaker": Value::Null, "samples": 0}));
                }
            }
            json!({"node_id": p.node_id, "version": p.serving_version, "connected": p.connected,
                "last_seen_unix_ms": p.last_seen_unix_ms, "signals_unix_ms": p.signals_unix_ms,
                "last_error": p.last_error, "providers": rows})
        })
        .collect();
    Ok(Json(json!({"data_planes": planes, "version": s.version})).into_response())
}
