//! `POST /v1/chat/completions`: parse and validate, resolve the model, try each attempt until one
//! answers, and relay the answer (JSON or SSE) with TokenRouter's extension fields.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;
use crate::extensions::Extensions;
use crate::middleware::{Authed, RequestId};
use crate::request::{self, ChatRequest};
use crate::route::{self, Attempt};
use crate::state::DataPlaneState;
use crate::upstream::stream::Relay;
use crate::upstream::{self, UpstreamError};

pub async fn completions(
    State(state): State<Arc<DataPlaneState>>,
    Extension(authed): Extension<Authed>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(&state, &authed, &request_id, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &DataPlaneState,
    authed: &Authed,
    request_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_content_type(headers)?;
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?;
    let request = request::parse(&bytes)?;
    let plan = route::resolve(&authed.runtime, &request.model)?;
    let mut last: Option<(String, UpstreamError)> = None;
    for (index, attempt) in plan.attempts.iter().enumerate() {
        let provider = attempt.target.provider.name.clone();
        let ext = Extensions::new(&provider, &plan.mode, request_id);
        match try_attempt(attempt, &request, ext, authed.started, request_id).await {
            Ok(mut response) => {
                let h = response.headers_mut();
                h.insert("x-tokenrouter-attempts", HeaderValue::from(index + 1));
                if let Ok(v) = HeaderValue::from_str(&provider) {
                    h.insert("x-tokenrouter-provider", v);
                }
                return Ok(response);
            }
            Err(e) => {
                tracing::info!(%request_id, %provider, attempt = index + 1, error = ?e, retryable = e.retryable(), "upstream attempt failed");
                let retryable = e.retryable();
                last = Some((provider, e));
                if !retryable {
                    break;
                }
            }
        }
    }
    Err(match last {
        Some((provider, e)) => e.to_api_error(&provider),
        None => ApiError::unavailable("No provider is available for this model."),
    })
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_content_type",
            "Content-Type must be application/json.",
        ))
    }
}

/// The upstream body for one attempt: the client's fields with the upstream model name.
fn upstream_body(request: &ChatRequest, attempt: &Attempt) -> Bytes {
    let mut body = request.body.clone();
    body.insert("model".into(), Value::String(attempt.model.clone()));
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

async fn try_attempt(
    attempt: &Attempt,
    request: &ChatRequest,
    ext: Extensions,
    started: Instant,
    request_id: &str,
) -> Result<Response, UpstreamError> {
    let response = upstream::send(attempt, upstream_body(request, attempt), request_id).await?;
    if request.stream {
        let relay = Relay::open(response, ext, started).await?;
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(relay.into_stream()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()));
    }
    let bytes = upstream::read_capped(response, upstream::MAX_RESPONSE_BODY).await?;
    let trimmed = bytes.trim_ascii();
    let is_object = trimmed.starts_with(b"{")
        && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok();
    if !is_object {
        return Err(UpstreamError::Malformed(
            "answered with something that is not a JSON object".into(),
        ));
    }
    let mut out = Vec::with_capacity(trimmed.len() + 160);
    ext.splice_into(trimmed, started.elapsed().as_millis() as u64, &mut out);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(out))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}
