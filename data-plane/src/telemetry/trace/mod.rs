//! Traces: a SERVER span per inbound API request and a CLIENT span `chat {model}` (or
//! `embeddings {model}`) per upstream attempt, with the GenAI conventions' attributes and
//! TokenRouter's own (`tokenrouter.*`). Names, counts and timings only: never a secret, and message
//! content only when the operator opts in (see [`content`]). With export off nothing here costs
//! more than an `Option` check, and the client's `traceparent` still reaches the provider.

pub mod content;
pub mod export;
mod facts;
mod propagate;

use std::sync::Arc;

use axum::http::HeaderMap;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::error::UpstreamError;
use crate::telemetry::usage::Usage;
pub use export::{ExportStats, Pipeline};
pub use facts::ResponseFacts;

/// The data plane's tracer and its export counters, when export is on.
#[derive(Debug, Clone)]
pub struct Tracing {
    pub tracer: SdkTracer,
    pub stats: Arc<ExportStats>,
    /// Message content goes on attempt spans (after the firewall): the operator set
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
    pub capture_content: bool,
}

impl Tracing {
    /// The data plane's tracer from a running pipeline, capturing content when
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true`.
    pub fn from_pipeline(pipeline: &Pipeline) -> Tracing {
        let capture_content = std::env::var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Tracing {
            tracer: pipeline.tracer("tokenrouter-data-plane"),
            stats: pipeline.stats.clone(),
            capture_content,
        }
    }
}

/// One inbound request's trace: its SERVER span when export is on, else the client's trace
/// context, passed on as it came.
#[derive(Debug, Clone, Default)]
pub struct RequestTrace {
    span: Option<Context>,
    /// The span is sampled: attributes are worth building.
    recording: bool,
    inbound: Option<propagate::Inbound>,
    tracer: Option<SdkTracer>,
    capture_content: bool,
}

impl RequestTrace {
    /// Starts the SERVER span of a request (continuing the client's `traceparent`), or keeps the
    /// client's trace context when export is off.
    pub fn start(
        tracing: Option<&Tracing>,
        method: &str,
        path: &str,
        request_id: &str,
        headers: &HeaderMap,
    ) -> RequestTrace {
        let Some(tracing) = tracing else {
            return RequestTrace {
                inbound: propagate::Inbound::of(headers),
                ..RequestTrace::default()
            };
        };
        let parent = propagate::extract(headers);
        let route = route_of(path);
        let name = match route {
            Some(r) => format!("{method} {r}"),
            None => method.to_string(),
        };
        // Attributes are built only for a span the sampler keeps (`OTEL_TRACES_SAMPLER`): an
        // unsampled request costs its context and nothing more.
        let span = tracing
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&tracing.tracer, &parent);
        let recording = span.is_recording();
        let trace = RequestTrace {
            span: Some(parent.with_span(span)),
            recording,
            inbound: None,
            tracer: Some(tracing.tracer.clone()),
            capture_content: tracing.capture_content,
        };
        if !recording {
            return trace;
        }
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("url.path", path.to_string()),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("tokenrouter.request_id", request_id.to_string()),
        ];
        if let Some(r) = route {
            attributes.push(KeyValue::new("http.route", r));
        }
        if let Some(ua) = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new(
                "user_agent.original",
                ua.chars().take(256).collect::<String>(),
            ));
        }
        trace.set(|| attributes);
        trace
    }

    /// Whether this request has a span that is recorded (export is on, and it was sampled).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// The span's context when it is recorded.
    fn recorded(&self) -> Option<&Context> {
        self.span.as_ref().filter(|_| self.recording)
    }

    /// Whether its attempts' spans carry message content (recorded, and the operator opted in).
    pub fn captures_content(&self) -> bool {
        self.recording && self.capture_content
    }

    /// The trace this request belongs to (ours, or the client's when export is off).
    pub fn trace_id(&self) -> Option<TraceId> {
        match (&self.span, &self.inbound) {
            (Some(cx), _) => {
                let id = cx.span().span_context().trace_id();
                (id != TraceId::INVALID).then_some(id)
            }
            (None, Some(inbound)) => Some(inbound.trace_id),
            (None, None) => None,
        }
    }

    /// Sets attributes on the SERVER span (nothing when export is off).
    pub fn set(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if let Some(cx) = self.recorded() {
            cx.span().set_attributes(attributes());
        }
    }

    /// The answer's HTTP status; a 5xx marks the span as an error (the HTTP conventions).
    pub fn status(&self, status: u16) {
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(status.to_string()));
            }
        }
    }

    /// Starts the CLIENT span of one upstream attempt under this request's span.
    pub fn attempt(&self, call: AttemptCall<'_>) -> AttemptTrace {
        let (Some(parent), Some(tracer)) = (&self.span, &self.tracer) else {
            return AttemptTrace {
                span: None,
                recording: false,
                inbound: self.inbound.clone(),
                ended: false,
            };
        };
        if !self.recording {
            // Unsampled: the provider still gets the trace (its sampled flag off).
            return AttemptTrace {
                span: Some(parent.clone()),
                recording: false,
                inbound: None,
                ended: false,
            };
        }
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", call.operation),
            KeyValue::new("gen_ai.provider.name", call.provider_name),
            KeyValue::new("gen_ai.request.model", call.model.to_string()),
            KeyValue::new("tokenrouter.provider", call.provider.to_string()),
            KeyValue::new("tokenrouter.attempt", call.number as i64),
            KeyValue::new("tokenrouter.hedge", call.hedge),
        ];
        if let Some((host, port)) = call.server {
            attributes.push(KeyValue::new("server.address", host.to_string()));
            attributes.push(KeyValue::new("server.port", i64::from(*port)));
        }
        attributes.extend(call.request.iter().cloned());
        if let Some(messages) = call.input_messages {
            attributes.push(KeyValue::new("gen_ai.input.messages", messages.to_string()));
        }
        let span = tracer
            .span_builder(format!("{} {}", call.operation, call.model))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        AttemptTrace {
            span: Some(parent.with_span(span)),
            recording: true,
            inbound: None,
            ended: false,
        }
    }
}

/// What an attempt's CLIENT span is named and described by.
pub struct AttemptCall<'a> {
    /// `gen_ai.operation.name`, which also starts the span's name.
    pub operation: &'static str,
    pub provider: &'a str,
    pub provider_name: &'static str,
    /// The provider's host and port.
    pub server: &'a Option<(String, u16)>,
    pub model: &'a str,
    /// 1-based, in plan order.
    pub number: usize,
    /// Started alongside a slow attempt by the policy's hedging.
    pub hedge: bool,
    /// The request's `gen_ai.request.*` attributes.
    pub request: &'a [KeyValue],
    /// `gen_ai.input.messages`, when content is captured.
    pub input_messages: Option<&'a str>,
}

/// One attempt's CLIENT span. Dropped before it ends (a hedge that lost, a request the client
/// abandoned), it is marked cancelled.
#[derive(Debug)]
pub struct AttemptTrace {
    span: Option<Context>,
    /// Its own span, sampled (an unsampled attempt carries its request's context only).
    recording: bool,
    inbound: Option<propagate::Inbound>,
    ended: bool,
}

/// What a provider answered with, as the span reports it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Answer<'a> {
    pub usage: Option<Usage>,
    pub response_id: Option<&'a str>,
    pub response_model: Option<&'a str>,
    pub finish_reason: Option<&'a str>,
    /// `gen_ai.output.messages`, when content is captured.
    pub output_messages: Option<&'a str>,
    /// A stream that ended before its terminal event (the client went away, or the upstream).
    pub incomplete: bool,
}

impl AttemptTrace {
    /// Whether this attempt has a recorded span (export is on, and it was sampled).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    fn recorded(&self) -> Option<&Context> {
        self.span.as_ref().filter(|_| self.recording)
    }

    /// Adds `traceparent` (and `tracestate`) for the provider: this attempt's span as the parent,
    /// or the client's own context when export is off.
    pub fn inject(&self, headers: &mut HeaderMap) {
        match (&self.span, &self.inbound) {
            (Some(cx), _) => propagate::inject(cx, headers),
            (None, Some(inbound)) => inbound.pass_on(headers),
            (None, None) => {}
        }
    }

    /// The attempt failed before an answer started.
    pub fn failed(mut self, e: &UpstreamError) {
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            if let UpstreamError::Status { status, .. } = e {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(*status),
                ));
            }
            span.set_attribute(KeyValue::new("error.type", e.kind()));
            span.set_attribute(KeyValue::new("tokenrouter.attempt.outcome", "failed"));
            span.set_status(Status::error(e.kind()));
            span.end();
        }
        self.ended = true;
    }

    /// The adapter refused the request for this provider (nothing was sent).
    pub fn refused(mut self, code: &str) {
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            span.set_attribute(KeyValue::new("error.type", code.to_string()));
            span.set_attribute(KeyValue::new("tokenrouter.attempt.outcome", "refused"));
            span.set_status(Status::error(code.to_string()));
            span.end();
        }
        self.ended = true;
    }

    /// The attempt answered the request.
    pub fn answered(mut self, answer: Answer<'_>) {
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            let mut attributes = vec![
                KeyValue::new("http.response.status_code", 200),
                KeyValue::new(
                    "tokenrouter.attempt.outcome",
                    if answer.incomplete {
                        "incomplete"
                    } else {
                        "answered"
                    },
                ),
            ];
            if let Some(id) = answer.response_id {
                attributes.push(KeyValue::new("gen_ai.response.id", id.to_string()));
            }
            if let Some(model) = answer.response_model {
                attributes.push(KeyValue::new("gen_ai.response.model", model.to_string()));
            }
            if let Some(reason) = answer.finish_reason {
                attributes.push(KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    opentelemetry::Value::Array(
                        vec![opentelemetry::StringValue::from(reason.to_string())].into(),
                    ),
                ));
            }
            if let Some(messages) = answer.output_messages {
                attributes.push(KeyValue::new(
                    "gen_ai.output.messages",
                    messages.to_string(),
                ));
            }
            usage_attributes(answer.usage, &mut attributes);
            span.set_attributes(attributes);
            span.end();
        }
        self.ended = true;
    }
}

impl Drop for AttemptTrace {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Some(cx) = self.recorded() {
            let span = cx.span();
            span.set_attribute(KeyValue::new("tokenrouter.attempt.outcome", "cancelled"));
            span.add_event("cancelled", Vec::new());
            span.end();
        }
    }
}

/// The `gen_ai.usage.*` attributes of an answer's usage.
pub fn usage_attributes(usage: Option<Usage>, out: &mut Vec<KeyValue>) {
    let Some(u) = usage else { return };
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    out.push(KeyValue::new(
        "gen_ai.usage.input_tokens",
        n(u.prompt_tokens),
    ));
    out.push(KeyValue::new(
        "gen_ai.usage.output_tokens",
        n(u.completion_tokens),
    ));
    out.push(KeyValue::new(
        "gen_ai.usage.cache_read.input_tokens",
        n(u.cached_tokens),
    ));
    out.push(KeyValue::new(
        "gen_ai.usage.reasoning.output_tokens",
        n(u.reasoning_tokens),
    ));
}

/// The `gen_ai.request.*` attributes of a chat request's parameters.
pub fn request_attributes(
    body: &serde_json::Map<String, serde_json::Value>,
    max_tokens: Option<u64>,
) -> Vec<KeyValue> {
    let mut out = Vec::new();
    if let Some(n) = max_tokens {
        out.push(KeyValue::new(
            "gen_ai.request.max_tokens",
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    for (field, name) in [
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("frequency_penalty", "gen_ai.request.frequency_penalty"),
        ("presence_penalty", "gen_ai.request.presence_penalty"),
    ] {
        if let Some(v) = body.get(field).and_then(serde_json::Value::as_f64) {
            out.push(KeyValue::new(name, v));
        }
    }
    if let Some(seed) = body.get("seed").and_then(serde_json::Value::as_i64) {
        out.push(KeyValue::new("gen_ai.request.seed", seed));
    }
    if let Some(n) = body
        .get("n")
        .and_then(serde_json::Value::as_i64)
        .filter(|n| *n != 1)
    {
        out.push(KeyValue::new("gen_ai.request.choice.count", n));
    }
    out
}

/// The route template of an API path (`http.route`), when it is one of ours.
fn route_of(path: &str) -> Option<&'static str> {
    match path {
        "/v1/chat/completions" => Some("/v1/chat/completions"),
        "/v1/embeddings" => Some("/v1/embeddings"),
        "/v1/responses" => Some("/v1/responses"),
        p if p.starts_with("/v1/responses/") => Some("/v1/responses/{id}"),
        "/v1/models" => Some("/v1/models"),
        p if p.starts_with("/v1/models/") => Some("/v1/models/{id}"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;

    /// A request the sampler drops builds no attributes and records nothing, yet its trace still
    /// reaches the provider, marked unsampled.
    #[test]
    fn an_unsampled_request_only_carries_its_context() {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let tracing = Tracing {
            tracer: provider.tracer("test"),
            stats: Arc::default(),
            capture_content: true,
        };
        let trace = RequestTrace::start(
            Some(&tracing),
            "POST",
            "/v1/chat/completions",
            "req-1",
            &HeaderMap::new(),
        );
        assert!(!trace.is_recording() && !trace.captures_content());
        trace.set(|| panic!("no attributes are built for an unsampled span"));
        let attempt = trace.attempt(AttemptCall {
            operation: "chat",
            provider: "p",
            provider_name: "openai",
            server: &None,
            model: "m",
            number: 1,
            hedge: false,
            request: &[],
            input_messages: None,
        });
        assert!(!attempt.is_recording());
        let mut headers = HeaderMap::new();
        attempt.inject(&mut headers);
        let traceparent = headers["traceparent"].to_str().unwrap();
        assert!(traceparent.ends_with("-00"), "{traceparent}");
        assert!(traceparent.contains(&trace.trace_id().unwrap().to_string()));
    }
}
