//! The control plane's spans (OTLP, when the binary turns export on): a SERVER span per gRPC call
//! (Admin and Discovery's unary calls; `Watch` streams live for hours and get a span per snapshot
//! pushed instead), an INTERNAL span per configuration commit, a PRODUCER span per snapshot sent.

use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{FutureExt as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

/// The tracer, set once by the binary when export is on.
#[derive(Debug, Default)]
pub struct Traces(OnceLock<SdkTracer>);

impl Traces {
    pub fn set(&self, tracer: SdkTracer) {
        let _ = self.0.set(tracer);
    }

    fn get(&self) -> Option<&SdkTracer> {
        self.0.get()
    }

    /// The tracer, when export is on.
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.0.get().cloned()
    }

    /// An INTERNAL span `name` under the current context (the gRPC call's), ended when dropped.
    pub fn internal(&self, name: &'static str) -> Option<SpanGuard> {
        let tracer = self.get()?;
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .start_with_context(tracer, &Context::current());
        Some(SpanGuard(Context::current().with_span(span)))
    }

    /// A PRODUCER span for one snapshot sent to a data plane.
    pub fn push(&self, node: &str, version: u64) -> Option<SpanGuard> {
        let tracer = self.get()?;
        let span = tracer
            .span_builder("snapshot push")
            .with_kind(SpanKind::Producer)
            .with_attributes(vec![
                KeyValue::new("tokenrouter.node_id", node.to_string()),
                KeyValue::new("tokenrouter.snapshot.version", version as i64),
            ])
            .start(tracer);
        Some(SpanGuard(Context::current_with_span(span)))
    }
}

/// A span that ends when dropped; [`SpanGuard::fail`] marks it an error first.
pub struct SpanGuard(Context);

impl SpanGuard {
    pub fn set(&self, attribute: KeyValue) {
        self.0.span().set_attribute(attribute);
    }

    pub fn fail(&self, what: &str) {
        let span = self.0.span();
        span.set_attribute(KeyValue::new("error.type", what.to_string()));
        span.set_status(Status::error(what.to_string()));
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.0.span().end();
    }
}

/// The tower layer putting a SERVER span around each gRPC call.
#[derive(Clone)]
pub struct GrpcTraceLayer {
    pub traces: Arc<Traces>,
}

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> GrpcTrace<S> {
        GrpcTrace {
            inner,
            traces: self.traces.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcTrace<S> {
    inner: S,
    traces: Arc<Traces>,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let traced = self
            .traces
            .get()
            .filter(|_| !path.ends_with("/Watch") && !path.starts_with("/grpc."));
        let Some(tracer) = traced else {
            return Box::pin(self.inner.call(request));
        };
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path.as_str(), ""));
        let span = tracer
            .span_builder(path.trim_start_matches('/').to_string())
            .with_kind(SpanKind::Server)
            .with_attributes(vec![
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_string()),
                KeyValue::new("rpc.method", method.to_string()),
            ])
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
        let future = self.inner.call(request).with_context(cx.clone());
        Box::pin(async move {
            let result = future.await;
            let span = cx.span();
            if let Ok(response) = &result {
                // A failed unary call answers trailers-only: its status is in the headers.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
                if code != 0 {
                    span.set_status(Status::error(format!("grpc-status {code}")));
                }
            }
            span.end();
            result
        })
    }
}
