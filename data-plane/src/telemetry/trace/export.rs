//! OTLP export: the tracer provider built from the standard `OTEL_*` variables, and the bounded
//! processor between the request path and the exporter. A span that ends is handed to a queue
//! without waiting; a full queue or a failed export drops spans and counts them, so a slow or dead
//! collector costs the traffic nothing but the counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor,
};
use tokio::sync::{mpsc, oneshot};

/// What became of the spans handed to the exporter, for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported: AtomicU64,
    /// The queue was full (the collector is slower than the traffic, or gone).
    pub dropped_queue_full: AtomicU64,
    /// The collector refused the batch or could not be reached in time.
    pub dropped_export_failed: AtomicU64,
}

impl ExportStats {
    /// Appends the Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP tokenrouter_otel_spans_exported_total Spans the OTLP collector accepted\n# TYPE tokenrouter_otel_spans_exported_total counter\ntokenrouter_otel_spans_exported_total {}",
            self.exported.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_otel_spans_dropped_total Spans dropped: queue full (collector slow or gone) or export failed\n# TYPE tokenrouter_otel_spans_dropped_total counter\ntokenrouter_otel_spans_dropped_total{{reason=\"queue_full\"}} {}\ntokenrouter_otel_spans_dropped_total{{reason=\"export_failed\"}} {}",
            self.dropped_queue_full.load(Ordering::Relaxed),
            self.dropped_export_failed.load(Ordering::Relaxed)
        );
    }
}

/// Where and how spans go: read from the environment by [`OtlpSettings::from_env`], or set
/// explicitly (tests).
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// `None`: the exporter's own reading of `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`.
    pub endpoint: Option<String>,
    /// `None`: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, else `http/protobuf`.
    pub protocol: Option<Protocol>,
    /// `OTEL_SERVICE_NAME` when set, else this.
    pub default_service: String,
    /// Spans waiting for export at most (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue: usize,
    /// Spans in one export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_batch: usize,
    /// How long a span may wait for its batch (`OTEL_BSP_SCHEDULE_DELAY`, ms, default 1000).
    pub delay: Duration,
    /// How long one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, ms, default 10000).
    pub export_timeout: Duration,
}

impl OtlpSettings {
    /// The settings the standard variables ask for, or `None` when export is off: no
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` nor `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
    /// `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`.
    pub fn from_env(default_service: &str) -> Option<OtlpSettings> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint_set = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if !endpoint_set || disabled {
            return None;
        }
        let number = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Some(OtlpSettings {
            endpoint: None,
            protocol: None,
            default_service: default_service.to_string(),
            max_queue: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize,
            max_batch: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize,
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 1000)),
            export_timeout: Duration::from_millis(number("OTEL_BSP_EXPORT_TIMEOUT", 10_000)),
        })
    }

    /// Settings for a collector at `endpoint` (for `http/protobuf`, the whole URL of the traces
    /// path), batching quickly.
    pub fn to(endpoint: &str, protocol: Protocol, default_service: &str) -> OtlpSettings {
        OtlpSettings {
            endpoint: Some(endpoint.to_string()),
            protocol: Some(protocol),
            default_service: default_service.to_string(),
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_millis(100),
            export_timeout: Duration::from_secs(5),
        }
    }
}

/// Why export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry export: {0}")]
pub struct ExportError(String);

/// A running export: the provider the planes take tracers from, and its counters.
#[derive(Debug, Clone)]
pub struct Pipeline {
    provider: SdkTracerProvider,
    pub stats: Arc<ExportStats>,
    flush: mpsc::Sender<Message>,
}

impl Pipeline {
    /// Builds the exporter and starts the export task (call inside the Tokio runtime).
    pub fn start(settings: &OtlpSettings) -> Result<Pipeline, ExportError> {
        let mut exporter = build_exporter(settings)?;
        let resource = resource(&settings.default_service);
        exporter.set_resource(&resource);
        let stats = Arc::new(ExportStats::default());
        let (tx, rx) = mpsc::channel(settings.max_queue.max(1));
        tokio::spawn(export_loop(
            exporter,
            rx,
            stats.clone(),
            settings.max_batch.max(1),
            settings.delay,
            settings.export_timeout,
        ));
        let processor = BoundedProcessor {
            queue: tx.clone(),
            stats: stats.clone(),
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        Ok(Pipeline {
            provider,
            stats,
            flush: tx,
        })
    }

    /// A tracer for one plane (its instrumentation scope).
    pub fn tracer(&self, scope: &'static str) -> SdkTracer {
        self.provider.tracer(scope)
    }

    /// Exports what is queued, waiting at most `timeout` (at shutdown).
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.flush.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

fn build_exporter(settings: &OtlpSettings) -> Result<SpanExporter, ExportError> {
    let built = match (&settings.endpoint, settings.protocol) {
        (Some(url), Some(Protocol::Grpc)) => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(url.clone())
            .with_timeout(settings.export_timeout)
            .build(),
        (Some(url), Some(protocol)) => SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(url.clone())
            .with_timeout(settings.export_timeout)
            .build(),
        // The exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, protocol, headers, timeout).
        _ => SpanExporter::builder().build(),
    };
    built.map_err(|e| ExportError(e.to_string()))
}

/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as the SDK reads them, with our default name
/// when neither names the service.
fn resource(default_service: &str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder
            .with_service_name(default_service.to_string())
            .build()
    }
}

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// Hands ended spans to the export task without waiting.
#[derive(Debug)]
struct BoundedProcessor {
    queue: mpsc::Sender<Message>,
    stats: Arc<ExportStats>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            self.stats
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Collects spans into batches (full, or `delay` after the first) and exports one at a time.
async fn export_loop(
    exporter: SpanExporter,
    mut queue: mpsc::Receiver<Message>,
    stats: Arc<ExportStats>,
    max_batch: usize,
    delay: Duration,
    timeout: Duration,
) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.recv().await {
        let mut flushed = Vec::new();
        take(first, &mut batch, &mut flushed);
        let deadline = tokio::time::Instant::now() + delay;
        while batch.len() < max_batch && flushed.is_empty() {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(m)) => take(m, &mut batch, &mut flushed),
                Ok(None) | Err(_) => break,
            }
        }
        // A flush takes everything already queued.
        if !flushed.is_empty() {
            while let Ok(m) = queue.try_recv() {
                take(m, &mut batch, &mut flushed);
            }
        }
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(max_batch));
            let n = batch.len() as u64;
            let spans = std::mem::replace(&mut batch, rest);
            match tokio::time::timeout(timeout, exporter.export(spans)).await {
                Ok(Ok(())) => stats.exported.fetch_add(n, Ordering::Relaxed),
                _ => stats.dropped_export_failed.fetch_add(n, Ordering::Relaxed),
            };
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

fn take(m: Message, batch: &mut Vec<SpanData>, flushed: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Message::Span(s) => batch.push(*s),
        Message::Flush(done) => flushed.push(done),
    }
}
