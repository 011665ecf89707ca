//! Request layers: the request id (and trace) of every request, and API-key authentication that also pins the
//! runtime snapshot the whole request will use.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::snapshot::runtime::{KeyRt, Runtime};
use crate::state::DataPlaneState;
use crate::telemetry::trace::RequestTrace;

/// The request's id: the client's `x-request-id` when it sent a sane one, else a new one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Set by [`authenticate`]: the snapshot this request uses and the key that made it.
#[derive(Debug, Clone)]
pub struct Authed {
    pub runtime: Arc<Runtime>,
    pub key: Arc<KeyRt>,
    pub started: Instant,
}

/// Adds `x-request-id` to the request extensions and to every response, and starts the request's
/// trace (its SERVER span when export is on) for everything but the health probes.
pub async fn request_id(
    State(state): State<Arc<DataPlaneState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::request::ids::prefixed_hex("req_"));
    let path = request.uri().path();
    let trace = (path != "/livez" && path != "/readyz").then(|| {
        RequestTrace::start(
            state.config.tracing.as_ref(),
            request.method().as_str(),
            path,
            &id,
            request.headers(),
        )
    });
    if let Some(t) = &trace {
        request.extensions_mut().insert(t.clone());
    }
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Some(t) = trace {
        t.status(response.status().as_u16());
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Checks `Authorization: Bearer <key>` against the keys of the current snapshot.
pub async fn authenticate(
    State(state): State<Arc<DataPlaneState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    if !state.is_ready() {
        return ApiError::not_ready().into_response();
    }
    let runtime = state.runtime();
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = presented else {
        return ApiError::unauthorized(
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
        )
        .into_response();
    };
    let key = match runtime.api_keys.find(key) {
        Some(k) if !k.disabled => k,
        Some(_) => return ApiError::unauthorized("This API key is disabled.").into_response(),
        None => return ApiError::unauthorized("Incorrect API key provided.").into_response(),
    };
    request.extensions_mut().insert(Authed {
        runtime,
        key,
        started,
    });
    next.run(request).await
}
