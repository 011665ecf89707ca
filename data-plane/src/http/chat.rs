//! `POST /v1/chat/completions` and `POST /v1/embeddings`: parse and validate, apply the
//! firewall's input rules, resolve the model into a plan, execute it (`exec`), and answer (JSON or
//! SSE, with TokenRouter's extension fields and headers). Both operations share everything but
//! the parsing, the texts the firewall reads, and the call each attempt makes.

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

/// Both routes: the operation is the path's.
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
    let mut request = match operation {
        Operation::Chat => request::parse(&bytes)?,
        Operation::Embeddings => request::embeddings::parse_embeddings(&bytes)?,
    };
    record.describe(&request);
    // The firewall's input rules see the request before anything else does.
    let fw = &authed.runtime.firewall;
    let key = &authed.key.name;
    let ChatRequest { model, body, .. } = &mut request;
    let mut audit = Audit::default();
    let checked = match operation {
        Operation::Chat => firewall::input::check(fw, key, model, body, &mut audit),
        Operation::Embeddings => {
            let texts = request::embeddings::input_texts(body);
            firewall::input::check_texts(fw, key, model, texts, &mut audit)
        }
    };
    record.add_firewall(&audit);
    if let Err(blocked) = checked {
        let param = match operation {
            Operation::Chat => "messages",
            Operation::Embeddings => "input",
        };
        return Err(ApiError::content_filter(
            &blocked.rule,
            blocked.detector,
            param,
        ));
    }
    // Embeddings carry no text back for the output rules.
    let output = match operation {
        Operation::Chat => OutputScope::of(fw, key, &request.model),
        Operation::Embeddings => None,
    };
    if operation == Operation::Chat {
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
