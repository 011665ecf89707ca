//! W3C trace context: `traceparent`/`tracestate` read from the client and written for the
//! provider, by the SDK's propagator.

use axum::http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TraceId};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The client's trace context (an empty context when it sent none or an invalid one).
pub(super) fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `cx`'s span as the parent for the next hop.
pub(super) fn inject(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// The client's `traceparent` and `tracestate` as they came, kept when export is off so the
/// provider still sees the client's trace.
#[derive(Debug, Clone)]
pub(super) struct Inbound {
    parent: HeaderValue,
    state: Option<HeaderValue>,
    pub(super) trace_id: TraceId,
}

impl Inbound {
    /// The client's trace context headers, when they are valid ones.
    pub(super) fn of(headers: &HeaderMap) -> Option<Inbound> {
        let parent = headers.get(TRACEPARENT)?.clone();
        let trace_id = extract(headers).span().span_context().trace_id();
        (trace_id != TraceId::INVALID).then(|| Inbound {
            parent,
            state: headers.get(TRACESTATE).cloned(),
            trace_id,
        })
    }

    /// Passes the client's headers on unchanged.
    pub(super) fn pass_on(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.parent.clone());
        if let Some(state) = &self.state {
            headers.insert(TRACESTATE, state.clone());
        }
    }
}
