//! `POST /v1/chat/completions`, `POST /v1/embeddings` and `POST /v1/responses`: parse and
//! validate, apply the firewall's input rules, resolve the model into a plan, execute it (`exec`),
//! and answer (JSON or SSE, with TokenRouter's extension fields and headers). The operations share
//! everything but the parsing, the texts the firewall reads, and the call each attempt makes. A
//! Responses request is joined to its stored earlier turns and given its chat form here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::exec::{self, Job, RequestRecord};
use crate::firewall::output::OutputScope;
use crate::firewall::{self, Audit};
use crate::http::middleware::{Authed, RequestId};
use crate::request::{self, ChatRequest, Operation};
use crate::routing::plan::RouteCtx;
use crate::routing::resolve::resolve;
use crate::state::DataPlaneState;
use crate::telemetry::trace::RequestTrace;

/// Every route: the operation is the path's.
pub async fn answer(
    State(state): State<Arc<DataPlaneState>>,
    Extension(authed): Extension<Authed>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    trace: Option<Extension<RequestTrace>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let operation = match uri.path() {
        "/v1/embeddings" => Operation::Embeddings,
        "/v1/responses" => Operation::Responses,
        _ => Operation::Chat,
    };
    let mut record = RequestRecord::new(&request_id, &authed.key.name, authed.started);
    if let Some(Extension(trace)) = trace {
        record.accounting.trace = trace;
    }
    record.accounting.operation = operation;
    // Boxed: the attempt machinery is a large future, and axum moves the handler's future several
    // times through its layers; a pointer moves for free, kilobytes of state do not.
    let handled = Box::pin(handle(
        &state,
        &authed,
        (&request_id, operation),
        &headers,
        body,
        &mut record,
    ));
    let result = handled.await;
    let acted = record.firewall_rules();
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            record.close_failed(&state, e.status().as_u16());
            e.into_response()
        }
    };
    if !acted.is_empty()
        && !response.headers().contains_key("x-tokenrouter-firewall")
        && let Ok(v) = axum::http::HeaderValue::from_str(&acted)
    {
        response.headers_mut().insert("x-tokenrouter-firewall", v);
    }
    response
}

async fn handle(
    state: &Arc<DataPlaneState>,
    authed: &Authed,
    (request_id, operation): (&str, Operation),
    headers: &HeaderMap,
    body: Body,
    record: &mut RequestRecord,
) -> Result<Response, ApiError> {
    check_content_type(headers)?;
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if request::body::timed_out(&e) {
            ApiError::request_timeout()
        } else {
            ApiError::payload_too_large(limit)
        }
    })?;
    let fw = &authed.runtime.firewall;
    let key = &authed.key.name;
    let mut audit = Audit::default();
    let (request, checked) = match operation {
        Operation::Chat => {
            let mut request = request::parse(&bytes)?;
            let ChatRequest { model, body, .. } = &mut request;
            // The firewall's input rules see the request before anything else does.
            let checked = firewall::input::check(fw, key, model, body, &mut audit);
            (request, checked)
        }
        Operation::Embeddings => {
            let mut request = request::embeddings::parse_embeddings(&bytes)?;
            let ChatRequest { model, body, .. } = &mut request;
            let texts = request::embeddings::input_texts(body);
            let checked = firewall::input::check_texts(fw, key, model, texts, &mut audit);
            (request, checked)
        }
        Operation::Responses => responses_request(state, authed, &bytes, &mut audit).await?,
    };
    record.describe(&request);
    record.add_firewall(&audit);
    if let Err(blocked) = checked {
        let param = match operation {
            Operation::Chat => "messages",
            Operation::Embeddings | Operation::Responses => "input",
        };
        return Err(ApiError::content_filter(
            &blocked.rule,
            blocked.detector,
            param,
        ));
    }
    // Embeddings carry no text back for the output rules.
    let output = match operation {
        Operation::Chat | Operation::Responses => OutputScope::of(fw, key, &request.model),
        Operation::Embeddings => None,
    };
    if operation != Operation::Embeddings {
        // With Redis: this conversation's earlier turns may have been answered by another data
        // plane.
        state.reasoning.prefetch(&request.body).await;
    }
    let plan = resolve(&RouteCtx {
        rt: &authed.runtime,
        signals: &state.signals,
        key: &authed.key,
        headers,
        request: &request,
        available: &state.availability.view(),
    })
    .map_err(|e| match operation {
        // A refusal about the chat form names the Responses API's parameter.
        Operation::Responses => e.renaming_param(request::responses::responses_param),
        _ => e,
    })?;
    let job = Job {
        state,
        key: &authed.key,
        request_id,
        request: &request,
        plan: &plan,
        output: output.as_ref(),
    };
    exec::execute(job, record).await
}

/// A Responses body, joined to the stored turns its `previous_response_id` names, through the
/// firewall's input rules (on the Responses texts, so the native body and the chat form are both
/// masked), and in its chat form.
async fn responses_request(
    state: &Arc<DataPlaneState>,
    authed: &Authed,
    bytes: &[u8],
    audit: &mut Audit,
) -> Result<(ChatRequest, Result<(), firewall::Blocked>), ApiError> {
    let mut native = request::responses::parse_responses(bytes)?;
    let previous = request::responses::previous_id(&native).map(str::to_string);
    if let Some(id) = &previous
        && let Some(stored) = state.responses.get(id, &authed.key.name).await
    {
        request::responses::join_earlier(&mut native, stored.conversation());
    }
    let model = native
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    let texts = request::responses::texts(&mut native);
    let checked = firewall::input::check_texts(
        &authed.runtime.firewall,
        &authed.key.name,
        &model,
        texts,
        audit,
    );
    // The conversation as stored with this answer: the joined history and the new input, masked.
    let input = request::responses::input_items(&native);
    let request = request::responses::into_request(native, input, previous, bytes.len())?;
    Ok((request, checked))
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
