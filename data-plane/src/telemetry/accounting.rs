//! Accounting for finished requests: every request (answered, refused or failed) updates the
//! Prometheus counters and becomes a usage record for the control plane.

use opentelemetry::KeyValue;
use tokenrouter_proto::v1::UsageRecord;

use crate::telemetry::clock::unix_millis;
use crate::telemetry::genai::Observation;
use crate::telemetry::metrics::{Metrics, Record};
use crate::telemetry::trace::{self, RequestTrace};
use crate::telemetry::usage::Usage;
use crate::telemetry::usage_queue::UsageReporter;

/// What is known about a request when it ends.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    pub request_id: String,
    pub key: String,
    pub requested_model: String,
    /// `gen_ai.operation.name`: `chat` or `embeddings`.
    pub operation: crate::request::Operation,
    pub stream: bool,
    pub user_id: String,
    pub metadata_json: String,
    pub routing_mode: String,
    pub provider: String,
    /// The provider's `gen_ai.provider.name` (its kind, as the GenAI conventions name it).
    pub provider_name: &'static str,
    pub model: String,
    /// The model the answer names (`gen_ai.response.model`; empty without an answer).
    pub response_model: String,
    pub status: u16,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    /// From arrival to the last byte, and the answering provider call (its whole and its first
    /// chunk), at full precision for the histograms.
    pub total: std::time::Duration,
    pub upstream: Option<std::time::Duration>,
    pub upstream_ttft: Option<std::time::Duration>,
    pub attempts: u32,
    pub completed: bool,
    /// What the firewall did: `rule:detector:action:direction:count`, comma-separated.
    pub firewall: String,
    /// Why routing chose what it chose (the `x-tokenrouter-routing` JSON).
    pub routing: String,
    /// The attempts that failed before the answer, a JSON array (empty when none did).
    pub failed_attempts: String,
    /// For keys that log bodies: the request as sent and the answer as the client got it.
    pub request_body: String,
    pub response_body: String,
    /// The request's trace; its SERVER span ends when the last holder of this is done.
    pub trace: RequestTrace,
}

impl Accounting {
    /// What is known before the body is read: which request, and whose key.
    pub fn for_request(request_id: &str, key: &str) -> Accounting {
        Accounting {
            request_id: request_id.to_string(),
            key: key.to_string(),
            ..Default::default()
        }
    }
}

/// The access log: one line per request on target `tokenrouter::access` (off unless the operator
/// turns it on: `--access-log`). Names, counts and timings only: never a secret, never content.
fn access_log(a: &Accounting) {
    // The fields below are computed (the trace id formatted) only for a line that is written.
    if !tracing::enabled!(target: "tokenrouter::access", tracing::Level::INFO) {
        return;
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let overhead_ms = a.upstream.map(|up| ms(a.total.saturating_sub(up)));
    let usage = a.usage.unwrap_or_default();
    let trace_id = a.trace.trace_id().map(|t| t.to_string());
    tracing::info!(
        target: "tokenrouter::access",
        request_id = %a.request_id,
        trace_id = trace_id.as_deref().unwrap_or(""),
        key = %a.key,
        requested_model = %a.requested_model,
        provider = %a.provider,
        model = %a.model,
        routing_mode = %a.routing_mode,
        status = a.status,
        stream = a.stream,
        completed = a.completed,
        attempts = a.attempts,
        prompt_tokens = usage.prompt_tokens,
        completion_tokens = usage.completion_tokens,
        cached_tokens = usage.cached_tokens,
        reasoning_tokens = usage.reasoning_tokens,
        cost_usd = a.cost_usd.unwrap_or(0.0),
        latency_ms = ms(a.total),
        ttft_ms = a.upstream_ttft.map(ms),
        overhead_ms,
        firewall = %a.firewall,
        "request"
    );
}

/// The SERVER span's outcome: what answered, what it cost, what the firewall did.
fn finish_span(a: &Accounting) {
    a.trace.set(|| {
        let mut attributes = vec![
            KeyValue::new("tokenrouter.key", a.key.clone()),
            KeyValue::new("tokenrouter.routing.mode", a.routing_mode.clone()),
            KeyValue::new("tokenrouter.attempts", i64::from(a.attempts)),
            KeyValue::new("tokenrouter.stream", a.stream),
            KeyValue::new("tokenrouter.completed", a.completed),
        ];
        if !a.provider.is_empty() {
            attributes.push(KeyValue::new("gen_ai.provider.name", a.provider_name));
            attributes.push(KeyValue::new("tokenrouter.provider", a.provider.clone()));
            attributes.push(KeyValue::new(
                "tokenrouter.candidate",
                format!("{}/{}", a.provider, a.model),
            ));
        }
        if let Some(cost) = a.cost_usd {
            attributes.push(KeyValue::new("tokenrouter.cost_usd", cost));
        }
        if !a.firewall.is_empty() {
            attributes.push(KeyValue::new("tokenrouter.firewall", a.firewall.clone()));
        }
        trace::usage_attributes(a.usage, &mut attributes);
        attributes
    });
    a.trace.status(a.status);
}

/// Records one finished request in the metrics and queues its usage record.
pub fn account(metrics: &Metrics, sink: &UsageReporter, a: Accounting) {
    metrics.record(Record {
        key: &a.key,
        provider: &a.provider,
        model: &a.model,
        status: a.status,
        usage: a.usage,
        latency_ms: a.latency_ms,
        completed: a.completed,
        firewall: &a.firewall,
    });
    let error_type: std::borrow::Cow<'_, str> = if a.status >= 400 {
        a.status.to_string().into()
    } else if !a.completed {
        "incomplete".into()
    } else {
        "".into()
    };
    metrics.genai.observe(Observation {
        operation: a.operation,
        provider: a.provider_name,
        model: &a.model,
        response_model: &a.response_model,
        key: &a.key,
        user: &a.user_id,
        error_type: &error_type,
        total: a.total,
        upstream: a.upstream,
        upstream_ttft: a.upstream_ttft,
        input_tokens: a.usage.map(|u| u.prompt_tokens),
        output_tokens: a.usage.map(|u| u.completion_tokens),
        cost_usd: a.cost_usd,
    });
    metrics.count_attempts(a.attempts);
    finish_span(&a);
    access_log(&a);
    if !a.firewall.is_empty() {
        // Rule, detector, action, direction and count only: never the matched text.
        tracing::info!(request_id = %a.request_id, key = %a.key, firewall = %a.firewall, "firewall acted");
    }
    let usage = a.usage.unwrap_or_default();
    let unix_ms = unix_millis();
    sink.record(UsageRecord {
        request_id: a.request_id,
        unix_ms,
        api_key: a.key,
        provider: a.provider,
        model: a.model,
        requested_model: a.requested_model,
        status: u32::from(a.status),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cached_tokens: usage.cached_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        cost_usd: a.cost_usd.unwrap_or(0.0),
        latency_ms: a.latency_ms.min(u64::from(u32::MAX)) as u32,
        ttft_ms: a.ttft_ms.unwrap_or(0).min(u64::from(u32::MAX)) as u32,
        stream: a.stream,
        completed: a.completed,
        routing_mode: a.routing_mode,
        attempts: a.attempts,
        user_id: a.user_id,
        metadata_json: a.metadata_json,
        record_id: crate::request::ids::time_ordered_hex(unix_ms),
        firewall: a.firewall,
        routing: a.routing,
        failed_attempts: a.failed_attempts,
        request_body: a.request_body,
        response_body: a.response_body,
    });
}
