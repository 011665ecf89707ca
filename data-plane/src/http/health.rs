//! `/livez`, `/readyz` (ready after the first snapshot, until a drain begins), and the admin
//! listener's `/status` and `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::DataPlaneState;

pub async fn livez() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<Arc<DataPlaneState>>) -> (StatusCode, &'static str) {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if state.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first snapshot",
        )
    }
}

pub async fn status(State(state): State<Arc<DataPlaneState>>) -> Json<Value> {
    let rt = state.runtime();
    Json(json!({
        "node_id": state.config.node_id,
        "ready": state.is_ready(),
        "draining": state.is_draining(),
        "connected": state.is_connected(),
        "version": rt.version,
        "epoch": rt.epoch,
        "content_hash": rt.content_hash,
        "providers": rt.providers.len(),
        "last_nack": state.last_nack(),
        "limiter": state.limiter.status(),
        "breakers": state.signals.breakers().into_iter().map(|(key, breaker, stats)| json!({
            "candidate": key,
            "breaker": breaker,
            "stats": stats,
        })).collect::<Vec<_>>(),
    }))
}

/// Prometheus text exposition of the usage counters.
pub async fn metrics(
    State(state): State<Arc<DataPlaneState>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    use std::fmt::Write as _;
    let mut text = state.metrics.render();
    state.connections.render(&mut text);
    text.push_str("# HELP tokenrouter_breaker_state Circuit breaker per provider/model/credential: 0 closed, 1 half-open, 2 open\n");
    text.push_str("# TYPE tokenrouter_breaker_state gauge\n");
    for (candidate, breaker, _) in state.signals.breakers() {
        let value = match breaker {
            crate::signals::BreakerState::Closed => 0,
            crate::signals::BreakerState::HalfOpen => 1,
            crate::signals::BreakerState::Open => 2,
        };
        let _ = writeln!(
            text,
            "tokenrouter_breaker_state{{candidate=\"{}\"}} {value}",
            candidate.replace('"', "'")
        );
    }
    let _ = writeln!(
        text,
        "# HELP tokenrouter_usage_dropped_total Usage records lost for good since start (queue or spool full, spool unwritable)\n# TYPE tokenrouter_usage_dropped_total counter\ntokenrouter_usage_dropped_total {}",
        state.usage.dropped()
    );
    let _ = writeln!(
        text,
        "# HELP tokenrouter_usage_spooled Usage records waiting for a control plane (spool or memory backlog)\n# TYPE tokenrouter_usage_spooled gauge\ntokenrouter_usage_spooled {}",
        state.usage.spooled()
    );
    if let Some(t) = &state.config.tracing {
        t.stats.render(&mut text);
    }
    let runtime = state.runtime();
    let _ = writeln!(
        text,
        "# HELP tokenrouter_snapshot_version Version of the configuration snapshot being served\n# TYPE tokenrouter_snapshot_version gauge\ntokenrouter_snapshot_version {}",
        runtime.version
    );
    if let Some(age) = state.snapshot_age() {
        let _ = writeln!(
            text,
            "# HELP tokenrouter_snapshot_age_seconds Time since the snapshot being served was swapped in\n# TYPE tokenrouter_snapshot_age_seconds gauge\ntokenrouter_snapshot_age_seconds {}",
            age.as_secs_f64()
        );
    }
    let _ = writeln!(
        text,
        "# HELP tokenrouter_limiter_degraded 1 while the limiter's Redis is unreachable and its fail mode decides\n# TYPE tokenrouter_limiter_degraded gauge\ntokenrouter_limiter_degraded {}",
        u8::from(state.limiter.is_degraded())
    );
    state.limiter.decisions.render(&mut text);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}
