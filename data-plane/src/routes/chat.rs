//! `POST /v1/chat/completions`: parse and validate, resolve the model, try each attempt until one
//! answers, and relay the answer (JSON or SSE) with TokenRouter's extension fields.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extensions::Extensions;
use crate::metrics::Record;
use crate::middleware::{Authed, RequestId};
use crate::providers::{self, RequestCtx, ResponseCtx};
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
        Err(e) => {
            state.metrics.record(Record {
                key: &authed.key_name,
                provider: "",
                model: "",
                status: e.status.as_u16(),
                usage: None,
                latency_ms: authed.started.elapsed().as_millis() as u64,
                completed: false,
            });
            e.into_response()
        }
    }
}

async fn handle(
    state: &Arc<DataPlaneState>,
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
        match try_attempt(state, authed, attempt, &request, ext).await {
            Ok(mut response) => {
                let h = response.headers_mut();
                h.insert("x-tokenrouter-attempts", HeaderValue::from(index + 1));
                if let Ok(v) = HeaderValue::from_str(&provider) {
                    h.insert("x-tokenrouter-provider", v);
                }
                return Ok(response);
            }
            Err(AttemptError::Refused(e)) => return Err(e),
            Err(AttemptError::Upstream(e)) => {
                tracing::debug!(%request_id, %provider, attempt = index + 1, error = ?e, "upstream attempt failed");
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

/// Why one attempt did not produce an answer.
enum AttemptError {
    /// The adapter refused the request (e.g. a parameter this provider cannot honour).
    Refused(ApiError),
    Upstream(UpstreamError),
}

impl From<UpstreamError> for AttemptError {
    fn from(e: UpstreamError) -> Self {
        AttemptError::Upstream(e)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn try_attempt(
    state: &Arc<DataPlaneState>,
    authed: &Authed,
    attempt: &Attempt,
    request: &ChatRequest,
    ext: Extensions,
) -> Result<Response, AttemptError> {
    let provider = &attempt.target.provider;
    let call = providers::build(
        provider.protocol,
        &RequestCtx {
            body: &request.body,
            model: &attempt.model,
            stream: request.stream,
        },
    )
    .map_err(AttemptError::Refused)?;
    let dropped = (!call.dropped.is_empty()).then(|| call.dropped.join(","));
    let ctx = ResponseCtx {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: attempt.model.clone(),
        include_usage: request.include_usage,
    };
    let response = upstream::send(provider, call, &ext.request_id).await?;
    let started = authed.started;
    let mut answer = if request.stream {
        let translator = providers::stream_translator(provider.protocol, ctx);
        let metrics_state = state.clone();
        let (key, provider_name, model) = (
            authed.key_name.clone(),
            provider.name.clone(),
            attempt.model.clone(),
        );
        let on_finish = Box::new(move |usage, completed| {
            metrics_state.metrics.record(Record {
                key: &key,
                provider: &provider_name,
                model: &model,
                status: 200,
                usage,
                latency_ms: started.elapsed().as_millis() as u64,
                completed,
            });
        });
        let relay = Relay::open(response, translator, ext, started, on_finish).await?;
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(relay.into_stream()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        let bytes = upstream::read_capped(response, upstream::MAX_RESPONSE_BODY).await?;
        let translated = providers::translate_response(provider.protocol, &bytes, &ctx)?;
        let latency_ms = started.elapsed().as_millis() as u64;
        state.metrics.record(Record {
            key: &authed.key_name,
            provider: &provider.name,
            model: &attempt.model,
            status: 200,
            usage: translated.usage,
            latency_ms,
            completed: true,
        });
        let mut out = Vec::with_capacity(translated.body.len() + 160);
        ext.splice_into(&translated.body, latency_ms, &mut out);
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(out))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    if let Some(v) = dropped.and_then(|d| HeaderValue::from_str(&d).ok()) {
        answer
            .headers_mut()
            .insert("x-tokenrouter-dropped-params", v);
    }
    Ok(answer)
}
