//! The router and the path every request takes: record, pick a fault, wait, check credentials,
//! let the protocol module answer, and apply the fault to the answer; plus the model listings.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::embeddings;
use crate::errors::ApiError;
use crate::sse::StreamReply;
use crate::state::{CancelGuard, SimState};
use crate::text::random_alnum;
use crate::{
    Fault, Protocol, RecordedRequest, Recording, SimConfig, anthropic, auth, gemini, openai,
    responses, sse,
};

/// Requests up to this size are accepted (base64 images make real requests large).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What a protocol module answers with, before faults are applied.
pub(crate) enum Reply {
    Json(Value),
    Stream(StreamReply),
}

#[derive(Clone, Copy)]
enum Endpoint {
    Generate,
    /// OpenAI's Responses API (`POST /v1/responses`).
    Respond,
    Embed,
    Models,
    NotFound,
}

/// The simulator's HTTP routes for `state`'s protocol, testable without a network.
pub fn app(state: Arc<SimState>) -> Router {
    let router = match state.config().protocol {
        // DeepSeek serves no embeddings: its router has no such path.
        Protocol::OpenAi | Protocol::Mistral => Router::new()
            .route("/v1/chat/completions", post(generate))
            .route("/chat/completions", post(generate))
            .route("/v1/embeddings", post(embed))
            .route("/embeddings", post(embed))
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models)),
        Protocol::DeepSeek => Router::new()
            .route("/v1/chat/completions", post(generate))
            .route("/chat/completions", post(generate))
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models)),
        Protocol::Anthropic => Router::new()
            .route("/v1/messages", post(generate))
            .route("/v1/models", get(list_models)),
        Protocol::Gemini => Router::new()
            .route("/v1beta/models", get(list_models))
            .route("/v1beta/models/{*rest}", post(generate)),
    };
    // Only OpenAI itself serves the Responses API; Mistral and DeepSeek answer 404 for it.
    let router = if state.config().protocol == Protocol::OpenAi {
        router
            .route("/v1/responses", post(respond))
            .route("/responses", post(respond))
    } else {
        router
    };
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn generate(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(state, method, uri, headers, body, Endpoint::Generate).await
}

async fn respond(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(state, method, uri, headers, body, Endpoint::Respond).await
}

async fn embed(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(state, method, uri, headers, body, Endpoint::Embed).await
}

async fn list_models(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    run(state, method, uri, headers, Bytes::new(), Endpoint::Models).await
}

async fn not_found(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(state, method, uri, headers, body, Endpoint::NotFound).await
}

async fn run(
    state: Arc<SimState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Response {
    let protocol = state.config().protocol;
    let parsed = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(&body)
    };
    if matches!(endpoint, Endpoint::Models) {
        // A gateway lists models on its own schedule; tests count the requests clients caused.
        state.record_list();
    } else {
        state.record(|| RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_string(), value)
                })
                .collect(),
            body: parsed.as_ref().cloned().unwrap_or(Value::Null),
        });
    }
    // Faults target generation requests; model listings and probes do not consume them.
    let fault = match endpoint {
        Endpoint::Generate | Endpoint::Respond | Endpoint::Embed => state.take_fault(),
        _ => None,
    };
    let guard = CancelGuard::new(state.clone());
    let mut delay = state.config().fixed_latency;
    if let Some(Fault::DelayFirstByte(extra)) = &fault {
        delay += *extra;
    }
    state.sleep(delay).await;
    let mut response = answer(&state, endpoint, &uri, &headers, parsed, fault, guard).await;
    decorate(protocol, &mut response);
    response
}

async fn answer(
    state: &Arc<SimState>,
    endpoint: Endpoint,
    uri: &Uri,
    headers: &HeaderMap,
    parsed: Result<Value, serde_json::Error>,
    fault: Option<Fault>,
    mut guard: CancelGuard,
) -> Response {
    let config = state.config();
    let protocol = config.protocol;
    if let Some(Fault::Replay(recording)) = &fault {
        if let Err(error) = auth::check(protocol, &config.api_key, headers, uri.query()) {
            guard.finish();
            return error.into_response_for(protocol);
        }
        return replay(recording, guard);
    }
    let reply = auth::check(protocol, &config.api_key, headers, uri.query())
        .and_then(|()| match &fault {
            Some(Fault::Status {
                status,
                retry_after_secs,
            }) => Err(ApiError::for_status(protocol, *status, *retry_after_secs)),
            Some(Fault::InsufficientQuota) => Err(ApiError::insufficient_quota(protocol)),
            _ => Ok(()),
        })
        .and_then(|()| {
            // Never echo the parser's message: it can quote the body back.
            parsed.map_err(|_| {
                ApiError::new(
                    400,
                    "We could not parse the JSON body of your request. The request body must be \
                     valid JSON.",
                )
            })
        })
        .and_then(|body| match endpoint {
            Endpoint::Models if config.lists_models => Ok(Reply::Json(list_models_body(config))),
            Endpoint::Models => Err(ApiError::new(404, "This server does not list its models.")),
            Endpoint::NotFound => Err(ApiError::new(
                404,
                format!("Unknown path {} for this simulator.", uri.path()),
            )),
            Endpoint::Generate | Endpoint::Respond | Endpoint::Embed
                if config.serves_only_listed && !listed(config, uri, &body) =>
            {
                Err(ApiError::unknown_model(
                    protocol,
                    &requested_model(uri, &body),
                ))
            }
            Endpoint::Embed => embeddings::respond_openai(config, &body),
            Endpoint::Respond => responses::respond(state, &body),
            Endpoint::Generate => match protocol {
                Protocol::OpenAi | Protocol::Mistral | Protocol::DeepSeek => {
                    openai::respond(config, &body)
                }
                Protocol::Anthropic => anthropic::respond(config, &body),
                Protocol::Gemini => gemini::respond(config, uri.path(), uri.query(), &body),
            },
        });
    match reply {
        Err(error) => {
            guard.finish();
            error.into_response_for(protocol)
        }
        Ok(_) if matches!(fault, Some(Fault::Garbage)) => {
            guard.finish();
            garbage()
        }
        Ok(Reply::Stream(stream)) => {
            let content_type = stream.content_type;
            let body = sse::body(stream, fault.as_ref(), guard);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
                .into_response()
        }
        Ok(Reply::Json(value)) => json_with_fault(state, value, fault, guard).await,
    }
}

async fn json_with_fault(
    state: &Arc<SimState>,
    value: Value,
    fault: Option<Fault>,
    mut guard: CancelGuard,
) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    match fault {
        Some(Fault::StallAfterChunks(_)) => {
            // Never answer; the guard counts a cancel if the client gives up first.
            state.stopped().await;
            guard.finish();
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Some(Fault::CutAfterChunks(_)) => {
            guard.finish();
            let text = value.to_string();
            let half = Bytes::copy_from_slice(&text.as_bytes()[..text.len() / 2]);
            let cut = async {
                tokio::time::sleep(sse::FLUSH_PAUSE).await;
                Err(std::io::Error::other("simulated connection cut"))
            };
            let body = Body::from_stream(
                futures::stream::iter([Ok(half)]).chain(futures::stream::once(cut)),
            );
            (StatusCode::OK, json, body).into_response()
        }
        Some(Fault::MalformedChunk) => {
            guard.finish();
            garbage()
        }
        _ => {
            guard.finish();
            (StatusCode::OK, json, Bytes::from(value.to_string())).into_response()
        }
    }
}

/// Sends a recorded answer: its status and content type, and the body as recorded (event by event
/// for streams).
fn replay(recording: &Recording, mut guard: CancelGuard) -> Response {
    let status = StatusCode::from_u16(recording.status).unwrap_or(StatusCode::OK);
    if recording.is_stream() {
        let reply = StreamReply {
            frames: recording.frames(),
            content_type: "text/event-stream",
            malformed: Bytes::new(),
            error_frame: Bytes::new().into(),
        };
        let body = sse::body(reply, None, guard);
        return (status, [(header::CONTENT_TYPE, "text/event-stream")], body).into_response();
    }
    guard.finish();
    let content_type = HeaderValue::from_str(&recording.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    let mut response = (status, recording.body.clone()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn garbage() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "<html><body>simulated garbage: this body is not JSON</body></html>",
    )
        .into_response()
}

/// Headers every answer of a provider carries.
fn decorate(protocol: Protocol, response: &mut Response) {
    let headers = response.headers_mut();
    match protocol {
        Protocol::Anthropic => {
            // Error responses already carry the id that is also in their body.
            if !headers.contains_key("request-id")
                && let Ok(id) = HeaderValue::from_str(&format!("req_{}", random_alnum(24)))
            {
                headers.insert("request-id", id);
            }
        }
        Protocol::Gemini => {}
        _ => {
            if let Ok(id) = HeaderValue::from_str(&format!("req_{}", random_alnum(32))) {
                headers.insert("x-request-id", id);
            }
            for (name, value) in [
                ("x-ratelimit-limit-requests", "10000"),
                ("x-ratelimit-remaining-requests", "9999"),
                ("x-ratelimit-limit-tokens", "10000000"),
                ("x-ratelimit-remaining-tokens", "9999000"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
    }
}

/// The model a generation request names: Gemini's is in the path, the others' in the body.
fn requested_model(uri: &Uri, body: &Value) -> String {
    match uri.path().strip_prefix("/v1beta/models/") {
        Some(rest) => rest.split(':').next().unwrap_or_default().to_string(),
        None => body["model"].as_str().unwrap_or_default().to_string(),
    }
}

/// Whether the request's model is one the models endpoint lists, or the undated alias of one
/// (`claude-haiku-4-5` for `claude-haiku-4-5-20251001`, which Anthropic accepts but does not list).
fn listed(config: &SimConfig, uri: &Uri, body: &Value) -> bool {
    let model = requested_model(uri, body);
    listed_ids(config).iter().any(|id| {
        *id == model
            || id
                .strip_prefix(model.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn listed_ids(config: &SimConfig) -> Vec<String> {
    if config.models.is_empty() {
        default_models(config.protocol)
            .iter()
            .map(|id| id.to_string())
            .collect()
    } else {
        config.models.clone()
    }
}

/// Models listed when the config names none.
fn default_models(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::OpenAi => &["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "o3-mini"],
        Protocol::Mistral => &["mistral-small-latest", "mistral-large-latest"],
        Protocol::DeepSeek => &["deepseek-chat", "deepseek-reasoner"],
        Protocol::Anthropic => &["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"],
        Protocol::Gemini => &["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview"],
    }
}

/// The model list in the provider's shape (`GET /v1/models` or Gemini's `GET /v1beta/models`).
fn list_models_body(config: &SimConfig) -> Value {
    let ids = listed_ids(config);
    match config.protocol {
        Protocol::Anthropic => {
            let data: Vec<Value> = ids
                .iter()
                .map(|id| {
                    json!({"type": "model", "id": id, "display_name": id,
                        "created_at": "2025-01-01T00:00:00Z"})
                })
                .collect();
            json!({"data": data, "has_more": false,
                "first_id": ids.first(), "last_id": ids.last()})
        }
        Protocol::Gemini => {
            let models: Vec<Value> = ids
                .iter()
                .map(|id| {
                    json!({"name": format!("models/{id}"), "version": "001", "displayName": id,
                        "supportedGenerationMethods": ["generateContent", "countTokens"]})
                })
                .collect();
            json!({"models": models})
        }
        protocol => {
            let owner = match protocol {
                Protocol::Mistral => "mistralai",
                Protocol::DeepSeek => "deepseek",
                _ => "system",
            };
            let data: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": owner}))
                .collect();
            json!({"object": "list", "data": data})
        }
    }
}
