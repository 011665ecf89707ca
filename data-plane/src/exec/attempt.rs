//! One attempt: build the provider's request, choose a credential, send it within the plan's
//! timeouts, and turn a 2xx answer into the client's (a JSON body with the extension fields, or a
//! relayed stream). A failure before the answer starts is returned for the loop to judge.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::Full;

use super::credential;
use super::record::{Answered, RequestRecord, Target, answered};
use crate::error::{ApiError, UpstreamError};
use crate::firewall::Audit;
use crate::firewall::output::OutputScope;
use crate::providers::Protocol;
use crate::providers::{self, RequestCtx, ResponseCtx, UpstreamCall};
use crate::request::responses::ResponsesCall;
use crate::request::{ChatRequest, Operation, ids};
use crate::responses;
use crate::responses::store::Keep;
use crate::responses::stream::ResponsesStream;
use crate::routing::plan::Attempt;
use crate::snapshot::runtime::CredentialRt;
use crate::state::DataPlaneState;
use crate::telemetry::clock::unix_secs;
use crate::telemetry::trace::{AttemptTrace, ResponseFacts, content};
use crate::upstream::extensions::Extensions;
use crate::upstream::relay::{Finish, OnFinish, Relay, RelayTimeouts};
use crate::upstream::{self, UpstreamResponse, upstream_uri};

/// Why one attempt did not produce an answer.
pub(super) enum AttemptError {
    /// The adapter refused the request (e.g. a parameter this provider cannot honour).
    Refused(ApiError),
    Upstream(UpstreamError),
}

impl From<UpstreamError> for AttemptError {
    fn from(e: UpstreamError) -> Self {
        AttemptError::Upstream(e)
    }
}

/// What every attempt of one request shares.
pub(super) struct Shared<'a> {
    pub state: &'a Arc<DataPlaneState>,
    pub request: &'a ChatRequest,
    /// The `routing` object as JSON.
    pub routing: &'a str,
    pub started: Instant,
    pub output: Option<&'a OutputScope>,
    /// Attempt spans carry the answer's content (the operator opted in).
    pub captures_content: bool,
    /// The key logs bodies: the answer as the client gets it goes into the usage record.
    pub logs_bodies: bool,
    /// The key's name (a stored response's owner).
    pub key: &'a str,
}

impl Shared<'_> {
    /// Where this request's Responses answer is stored.
    fn keep(&self) -> Keep {
        Keep {
            store: self.state.responses.clone(),
            owner: self.key.to_string(),
        }
    }
}

/// Runs one attempt; `record` is the request's record as this attempt would close it.
pub(super) async fn run(
    shared: &Shared<'_>,
    attempt: &Attempt,
    ext: Extensions,
    last: bool,
    mut record: RequestRecord,
    span: AttemptTrace,
) -> Result<Response, AttemptError> {
    let Shared { state, request, .. } = *shared;
    record.accounting.provider = attempt.provider.name.clone();
    record.accounting.provider_name =
        crate::telemetry::genai::provider_name(&attempt.provider.kind);
    record.accounting.model = attempt.model.clone();
    let mode = Mode::of(request, attempt, shared);
    let built = match (request.operation, &mode) {
        (Operation::Responses, Mode::Native(call)) => {
            responses::native::build(call, &attempt.model).map(|call| (call, Vec::new()))
        }
        (Operation::Responses, Mode::Translated(call)) if call.untranslatable.is_some() => {
            Err(call
                .untranslatable
                .clone()
                .unwrap_or_else(|| ApiError::unavailable("")))
        }
        (Operation::Chat | Operation::Responses, _) => providers::build(
            attempt.provider.protocol,
            &RequestCtx {
                body: &request.body,
                model: &attempt.model,
                stream: request.stream,
                cache: &state.reasoning,
            },
        )
        .map(|call| (call, Vec::new())),
        (Operation::Embeddings, _) => {
            providers::embeddings::build(attempt.provider.protocol, &request.body, &attempt.model)
        }
    };
    let built = match &mode {
        Mode::Translated(_) => {
            built.map_err(|e| e.renaming_param(crate::request::responses::responses_param))
        }
        _ => built,
    };
    let (call, more_calls) = match built {
        Ok(calls) => calls,
        Err(e) => {
            span.refused(e.code().unwrap_or("refused"));
            return Err(AttemptError::Refused(e));
        }
    };
    let dropped = (!call.dropped.is_empty()).then(|| call.dropped.join(","));
    let shape = call.shape;
    let credential = match credential::pick(state, attempt, last).await {
        Ok(c) => c,
        Err(e) => {
            span.failed(&e);
            return Err(e.into());
        }
    };
    let target = Target::new(attempt, credential);
    let ctx = ResponseCtx {
        id: ids::prefixed_hex("chatcmpl-"),
        created: unix_secs(),
        model: attempt.model.clone(),
        include_usage: request.include_usage,
        cache: state.reasoning.clone(),
    };
    // A stream's first-token timer starts when the request is sent: a provider that is slow to
    // even answer with headers is as late as one that answers and then says nothing.
    let sent_at = Instant::now();
    let sent = send(
        attempt,
        credential,
        call,
        &ext.request_id,
        request.stream,
        &span,
    )
    .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            let e = target.failed(state, e);
            span.failed(&e);
            return Err(e.into());
        }
    };
    target.headroom(state, response.headers());
    let answer = Answer {
        shared,
        attempt,
        target,
        ext,
        record,
        sent_at,
        span,
    };
    let mut response = if request.operation == Operation::Embeddings {
        answer.embeddings(response, more_calls, credential).await?
    } else if request.stream {
        let translator = match &mode {
            Mode::Native(call) => Box::new(responses::native::NativeStream::new(
                call.clone(),
                Some(shared.keep()),
            )),
            _ => providers::stream_translator_shaped(attempt.provider.protocol, ctx, shape),
        };
        answer.stream(response, translator, &mode).await?
    } else {
        answer.json(response, &ctx, shape, &mode).await?
    };
    if let Some(v) = dropped.and_then(|d| HeaderValue::from_str(&d).ok()) {
        response
            .headers_mut()
            .insert("x-tokenrouter-dropped-params", v);
    }
    Ok(response)
}

/// What an attempt answers in: chat completions, or the Responses API translated from them, or
/// a native OpenAI provider's own Responses answer.
pub(super) enum Mode {
    Chat,
    Translated(Arc<ResponsesCall>),
    Native(Arc<ResponsesCall>),
}

impl Mode {
    fn of(request: &ChatRequest, attempt: &Attempt, shared: &Shared<'_>) -> Mode {
        let Some(call) = &request.responses else {
            return Mode::Chat;
        };
        // The firewall's output rules read chat answers, so with any in force an OpenAI provider
        // answers through chat completions too.
        if attempt.provider.protocol == Protocol::OpenAi && shared.output.is_none() {
            Mode::Native(call.clone())
        } else {
            Mode::Translated(call.clone())
        }
    }
}

/// Sends the adapter's request with the credential header; a stream must answer within its
/// first-token timeout. Provider error text is scrubbed of secrets.
async fn send(
    attempt: &Attempt,
    credential: Option<&CredentialRt>,
    call: UpstreamCall,
    request_id: &str,
    stream: bool,
    span: &AttemptTrace,
) -> Result<UpstreamResponse, UpstreamError> {
    let provider = &attempt.provider;
    let uri = match &provider.fixed_uri {
        Some(uri) if provider.protocol.fixed_path() == Some(call.path.as_str()) => uri.clone(),
        _ => upstream_uri(&provider.base_url, &call.path)
            .ok_or_else(|| UpstreamError::Connect("has an invalid URL".into()))?,
    };
    let mut request = http::Request::post(uri)
        .body(Full::new(Bytes::from(call.body)))
        .map_err(|_| UpstreamError::Connect("has an invalid URL".into()))?;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    span.inject(headers);
    for (name, value) in call.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::try_from(value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(UpstreamError::Connect(
                "could not be sent a header the adapter formed".into(),
            ));
        };
        headers.insert(name, value);
    }
    if let Some(c) = credential {
        headers.insert(c.header.0.clone(), c.header.1.clone());
    }
    let secret = credential.map(|c| c.secret.0.as_str());
    let sending = upstream::send(
        &provider.client,
        request,
        attempt.timeouts.total,
        |status, headers, body| {
            let mut error = providers::upstream_error(provider.protocol, status, headers, body);
            if let UpstreamError::Status { message, .. } = &mut error {
                *message = upstream::scrub(message, secret)
                    .chars()
                    .take(2000)
                    .collect();
            }
            error
        },
    );
    if stream {
        tokio::time::timeout(attempt.timeouts.first_token, sending)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    } else {
        sending.await
    }
}

/// A 2xx answer on its way to becoming the client's.
struct Answer<'a> {
    shared: &'a Shared<'a>,
    attempt: &'a Attempt,
    target: Target,
    ext: Extensions,
    record: RequestRecord,
    sent_at: Instant,
    span: AttemptTrace,
}

impl Answer<'_> {
    /// Reads and translates the whole answer, records it, and adds the extension fields.
    async fn json(
        self,
        response: UpstreamResponse,
        ctx: &ResponseCtx,
        shape: providers::AnswerShape,
        mode: &Mode,
    ) -> Result<Response, AttemptError> {
        let Answer {
            shared,
            attempt,
            target,
            ext,
            record,
            sent_at,
            span,
        } = self;
        let state = shared.state;
        let translated = async {
            let bytes = upstream::read_capped(response, upstream::MAX_RESPONSE_BODY).await?;
            if let Mode::Native(call) = mode {
                let answer = responses::native::read_json(call, bytes.to_vec())?;
                let facts = responses::native::facts_of(&answer.response);
                shared.keep().put(call, answer.response);
                return Ok(providers::Translated {
                    body: answer.body,
                    usage: answer.usage,
                    facts,
                });
            }
            providers::translate_shaped(attempt.provider.protocol, bytes, ctx, shape)
        }
        .await;
        let mut translated = match translated {
            Ok(t) => t,
            Err(e) => {
                let e = target.failed(state, e);
                span.failed(&e);
                return Err(e.into());
            }
        };
        let mut record = record;
        let mut acted = None;
        if let Some(scope) = shared.output {
            let mut audit = Audit::default();
            if let Some(filtered) = scope.filter_answer(&translated.body, &mut audit) {
                translated.body = filtered;
            }
            if !audit.events.is_empty() {
                record.add_firewall(&audit);
                acted = Some(record.firewall_rules());
            }
        }
        // The body log and the span see the answer as the client will (output rules applied),
        // read once for both.
        let span_content = shared.captures_content && span.is_recording();
        let mut output_messages = (shared.logs_bodies || span_content)
            .then(|| content::output_messages(&translated.body))
            .flatten();
        if shared.logs_bodies {
            let logged = if span_content {
                output_messages.clone()
            } else {
                output_messages.take()
            };
            record.accounting.response_body = logged.unwrap_or_default();
        }
        if span.is_recording() {
            // What the translator read, unless the firewall rewrote the answer.
            let mut facts = match acted {
                Some(_) => ResponseFacts::read(&translated.body),
                None => translated.facts.clone(),
            };
            facts.output_messages = output_messages;
            span.answered(facts.answer(translated.usage, false));
        } else {
            drop(span);
        }
        let cost = target.cost(translated.usage.as_ref());
        let mut extra = String::with_capacity(shared.routing.len() + 40);
        extra.push_str("\"routing\":");
        extra.push_str(shared.routing);
        if let Some(cost) = cost {
            let _ = write!(extra, ",\"cost_usd\":{cost}");
        }
        let done = Answered {
            usage: translated.usage,
            response_model: translated.facts.model,
            completed: true,
            latency: sent_at.elapsed(),
            ttft: None,
            streamed_text: 0,
        };
        answered(state, &target, record, done);
        let mut out = translated.body;
        if let Mode::Translated(call) = mode {
            let id = responses::new_id();
            let stored = responses::answer::from_chat(
                &out,
                call,
                &id,
                ctx.created,
                translated.usage.as_ref(),
            )
            .ok_or_else(|| {
                AttemptError::Upstream(UpstreamError::Malformed(
                    "answered with a completion that could not be read".into(),
                ))
            })?;
            let client = responses::answer::for_client(&stored, call.encrypted_reasoning);
            out = serde_json::to_vec(&client).unwrap_or_default();
            shared.keep().put(call, stored);
        }
        let latency_ms = shared.started.elapsed().as_millis() as u64;
        ext.splice_in_place(&mut out, latency_ms, &extra);
        let mut response = ok_response("application/json", Body::from(out));
        if let Some(v) = acted.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert("x-tokenrouter-firewall", v);
        }
        Ok(response)
    }

    /// Reads an embeddings answer (and makes the calls still to make: Gemini's later batches, in
    /// order), records it, and answers the client.
    async fn embeddings(
        self,
        response: UpstreamResponse,
        more_calls: Vec<UpstreamCall>,
        credential: Option<&CredentialRt>,
    ) -> Result<Response, AttemptError> {
        let Answer {
            shared,
            attempt,
            target,
            ext,
            record,
            sent_at,
            span,
        } = self;
        let state = shared.state;
        let read = async {
            let mut bodies =
                vec![upstream::read_capped(response, upstream::MAX_RESPONSE_BODY).await?];
            for call in more_calls {
                let next = send(attempt, credential, call, &ext.request_id, false, &span).await?;
                target.headroom(state, next.headers());
                bodies.push(upstream::read_capped(next, upstream::MAX_RESPONSE_BODY).await?);
            }
            providers::embeddings::read_answer(
                attempt.provider.protocol,
                bodies,
                &shared.request.body,
                &attempt.model,
                shared.request.features.prompt_tokens,
            )
        }
        .await;
        let answer = match read {
            Ok(a) => a,
            Err(e) => {
                let e = target.failed(state, e);
                span.failed(&e);
                return Err(e.into());
            }
        };
        if span.is_recording() {
            span.answered(answer.facts.answer(answer.usage, false));
        } else {
            drop(span);
        }
        let done = Answered {
            usage: answer.usage,
            response_model: answer.facts.model,
            completed: true,
            latency: sent_at.elapsed(),
            ttft: None,
            streamed_text: 0,
        };
        answered(state, &target, record, done);
        Ok(ok_response("application/json", Body::from(answer.body)))
    }

    /// Opens the relay (the first chunk must arrive in time) and hands the client the stream; the
    /// request is recorded when the stream ends, however it ends.
    async fn stream(
        self,
        response: UpstreamResponse,
        translator: Box<dyn providers::StreamTranslator>,
        mode: &Mode,
    ) -> Result<Response, AttemptError> {
        let state = self.shared.state;
        let (attempt, sent_at) = (self.attempt, self.sent_at);
        let timeouts = RelayTimeouts {
            first_token: attempt
                .timeouts
                .first_token
                .saturating_sub(sent_at.elapsed()),
            idle: attempt.timeouts.idle,
            client_stall: state.config.client_stall_timeout,
        };
        let ttft = Arc::new(Mutex::new(None));
        let audit = Arc::new(Mutex::new(Audit::default()));
        // Ended by the stream's end, or here if the relay never opens.
        let span = Arc::new(Mutex::new(Some(self.span)));
        let translator = match self.shared.output {
            Some(scope) => {
                scope.stream(translator, audit.clone(), self.shared.request.include_usage)
            }
            None => translator,
        };
        let translator: Box<dyn providers::StreamTranslator> = match mode {
            Mode::Translated(call) => Box::new(ResponsesStream::new(
                translator,
                call.clone(),
                Some(self.shared.keep()),
                unix_secs(),
                &attempt.model,
            )),
            _ => translator,
        };
        let on_finish: OnFinish = {
            let (state, target, ttft) = (state.clone(), self.target.clone(), ttft.clone());
            let span = span.clone();
            let mut record = self.record;
            let (logs_bodies, captures_content) =
                (self.shared.logs_bodies, self.shared.captures_content);
            Box::new(move |mut end: Finish| {
                if logs_bodies {
                    record.accounting.response_body =
                        end.facts.output_messages.clone().unwrap_or_default();
                }
                if !captures_content {
                    // Captured for the body log only: the span carries no content.
                    end.facts.output_messages = None;
                }
                if let Some(span) = span.lock().ok().and_then(|mut s| s.take()) {
                    span.answered(end.facts.answer(end.usage, !end.completed));
                }
                if let Ok(audit) = audit.lock() {
                    record.add_firewall(&audit);
                }
                let done = Answered {
                    usage: end.usage,
                    response_model: end.facts.model,
                    completed: end.completed,
                    latency: sent_at.elapsed(),
                    ttft: ttft.lock().ok().and_then(|t| *t),
                    streamed_text: end.streamed_text,
                };
                answered(&state, &target, record, done);
            })
        };
        let prices = attempt.info.as_ref().map(|i| i.prices());
        let opened = Relay::open(
            response,
            translator,
            self.ext,
            self.shared.started,
            timeouts,
            prices,
            on_finish,
        )
        .await;
        let mut relay = match opened {
            Ok(r) => r,
            Err(e) => {
                let e = self.target.failed(state, e);
                if let Some(span) = span.lock().ok().and_then(|mut s| s.take()) {
                    span.failed(&e);
                }
                return Err(e.into());
            }
        };
        if let Ok(mut t) = ttft.lock() {
            *t = Some(sent_at.elapsed());
        }
        if !matches!(mode, Mode::Chat) {
            relay.frame_events();
        }
        let recording = span
            .lock()
            .is_ok_and(|s| s.as_ref().is_some_and(AttemptTrace::is_recording));
        if recording || self.shared.logs_bodies {
            relay.track_facts(self.shared.captures_content || self.shared.logs_bodies);
        }
        let mut response = ok_response("text/event-stream", relay.into_body());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(response)
    }
}

/// A 200 answer with its content type.
fn ok_response(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
